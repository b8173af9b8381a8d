"""Pure-ASGI middleware: request ids, security headers, metrics, one summary log line per
request, a tracing span per request (continuing the caller's ``traceparent``) and a
last-resort 500 in the one error shape (never a traceback).

A client that disconnects before its request body arrived is not a server error: the request
is counted and logged with status 499 (nginx's "client closed request"; nobody receives it),
at INFO and without a traceback."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentflow import tracing
from agentflow.graph.messages import new_id
from agentflow.runtime.errors import error_body
from agentflow.runtime.metrics import Metrics
from agentflow.utils import mask_secrets

logger = logging.getLogger("agentflow.runtime.access")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
API_CSP = "default-src 'none'; frame-ancestors 'none'"
QUIET_PATHS = frozenset({"/ping", "/health", "/metrics"})
CLIENT_CLOSED = 499
# scope["state"] key: raw (name, value) headers a route or its limiter asks the middleware to add
RESPONSE_HEADERS = "response_headers"


class RequestMiddleware:
    def __init__(
        self, app: ASGIApp, *, metrics: Metrics, production: bool, docs_paths: set[str]
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.production = production
        self.docs_paths = docs_paths
        self.tracing = tracing.enabled()  # decided once, at startup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self.tracing or scope["path"] in QUIET_PATHS:
            await self._handle(scope, receive, send)
            return
        method = scope["method"]
        attributes = {
            "http.request.method": method,
            "url.path": scope["path"],
            "url.scheme": scope.get("scheme", "http"),
            "user_agent.original": _header(scope, b"user-agent"),
        }
        with tracing.span(f"{method} {scope['path']}", attributes, server=True,
                          headers=scope["headers"]):  # fmt: skip
            await self._handle(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and REQUEST_ID.match(incoming) else new_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        log_fields: dict[str, Any] = {}
        state["log"] = log_fields
        started = time.perf_counter()
        status = 500
        response_started = False
        path: str = scope["path"]

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
                extra = state.get(RESPONSE_HEADERS)  # raw RateLimit-* (ratelimit.py)
                if extra:
                    headers.raw.extend(extra)
                if self.production:
                    for name, value in SECURITY_HEADERS.items():
                        headers.setdefault(name, value)
                    if path not in self.docs_paths:
                        headers.setdefault("Content-Security-Policy", API_CSP)
            await send(message)

        error_class = None
        try:
            await self.app(scope, receive, send_with_headers)
        except ClientDisconnect:
            error_class = "ClientDisconnect"
            if not response_started:  # nobody to answer: counted and logged only
                status = CLIENT_CLOSED
                log_fields["outcome"] = "client_closed"
        except Exception as exc:
            error_class = type(exc).__name__
            logger.error(
                "unhandled %s on %s %s: %s", error_class, scope["method"], path,
                mask_secrets(str(exc)),
                extra={"request_id": request_id, "error_class": error_class},
                exc_info=not self.production,
            )  # fmt: skip
            if not response_started:
                await _send_500(send_with_headers, request_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.observe_request(method, template, str(status), elapsed)
            if self.tracing and tracing.recording():
                tracing.set_attributes(
                    {
                        "agentflow.request_id": request_id,
                        "http.response.status_code": status,
                        "http.route": template if route is not None else None,
                    }
                )
                if route is not None:
                    tracing.update_name(f"{method} {template}")
                if status >= 500:
                    tracing.mark_error(error_class or str(status))
            if path not in QUIET_PATHS or status >= 500:
                fields = {
                    "request_id": request_id,
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    **log_fields,
                }
                if error_class:
                    fields["error_class"] = error_class
                logger.info("%s %s %d", method, path, status, extra=fields)


async def _send_500(send: Send, request_id: str) -> None:
    body = json.dumps(
        error_body("internal_error", "the server hit an unexpected error", request_id)
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
