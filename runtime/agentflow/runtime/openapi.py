"""The OpenAPI 3.1 document, generated from the same endpoint table the app routes."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from agentflow import __version__
from agentflow.runtime import schemas
from agentflow.runtime.settings import Settings

Handler = Callable[[Request], Awaitable[Response]]

COMMON_ERRORS = {
    "401": "missing, invalid or expired credentials",
    "404": "not found (also another user's thread)",
    "413": "the body is larger than MAX_BODY_BYTES",
    "422": "the body failed validation; details list the field paths",
}


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    auth: bool = True
    request: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    media_type: str = "application/json"
    errors: Sequence[str] = ()
    query: Sequence[tuple[str, str, str]] = ()  # name, JSON type, description
    headers: Sequence[tuple[str, str]] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def build_document(endpoints: Sequence[Endpoint], settings: Settings) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        operation: dict[str, Any] = {
            "operationId": _operation_id(endpoint),
            "summary": endpoint.summary,
            "tags": [endpoint.tag],
            "responses": _responses(endpoint),
        }
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"{(\w+)}", endpoint.path)
        ]
        parameters += [
            {"name": name, "in": "query", "required": False, "schema": {"type": kind},
             "description": text}
            for name, kind, text in endpoint.query
        ]  # fmt: skip
        parameters += [
            {"name": name, "in": "header", "required": False, "schema": {"type": "string"},
             "description": text}
            for name, text in endpoint.headers
        ]  # fmt: skip
        if parameters:
            operation["parameters"] = parameters
        if endpoint.request is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": endpoint.request}},
            }
        if endpoint.auth and settings.auth is not None:
            operation["security"] = [{"bearer": []}]
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": f"{settings.project_dir.name} agent API",
            "version": __version__,
            "description": "Served by agentflow. Errors share one shape: "
            '{"error": {"code", "message", "request_id"}}.',
        },
        "paths": paths,
        "components": {"schemas": {"Error": schemas.ERROR, "Message": schemas.MESSAGE}},
    }
    if settings.auth is not None:
        document["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        }
    return document


def _responses(endpoint: Endpoint) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "OK"}
    if endpoint.response is not None:
        ok["content"] = {endpoint.media_type: {"schema": endpoint.response}}
    responses: dict[str, Any] = {"200": ok}
    error_content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    codes = list(endpoint.errors)
    if endpoint.auth:
        codes.append("401")
    for code in sorted(set(codes)):
        responses[code] = {
            "description": COMMON_ERRORS.get(code, "error"),
            "content": error_content,
        }
    return responses


def _operation_id(endpoint: Endpoint) -> str:
    words = re.sub(r"[{}]", "", endpoint.path).strip("/").replace("/", "_")
    return f"{endpoint.method.lower()}_{words or 'root'}"
