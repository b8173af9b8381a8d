"""Liveness, readiness and metrics: no auth, no body."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import JSONResponse, Response

from agentflow.graph.compiled import CompiledGraph
from agentflow.runtime.endpoints import Call
from agentflow.runtime.metrics import CONTENT_TYPE
from agentflow.runtime.resources import memory_check, model_provider_check, models_check
from agentflow.utils import mask_secrets

PING = b'{"status":"ok"}'
HEALTH_TIMEOUT = 2.0


async def ping(call: Call[None, None]) -> Response:
    return Response(PING, media_type="application/json")


async def health(call: Call[None, None]) -> JSONResponse:
    rt = call.rt
    checks: dict[str, Any] = {"graph": {"status": "ok", "name": rt.graph.name}}
    if rt.graph_error is not None:
        checks["config" if rt.config_invalid else "graph"] = {
            "status": "error",
            "error": rt.graph_error,
        }
    if rt.config_invalid:
        checks["graph"] = {"status": "error", "error": "not loaded: agentflow.json is invalid"}
    try:
        await asyncio.wait_for(rt.checkpointer.ping(), HEALTH_TIMEOUT)
        checks["checkpointer"] = {"status": "ok", "kind": rt.settings.checkpointer.kind}
    except Exception as exc:
        check: dict[str, Any] = {"status": "error", "kind": rt.settings.checkpointer.kind}
        if not rt.settings.production:
            check["error"] = mask_secrets(f"{type(exc).__name__}: {exc}")
        checks["checkpointer"] = check
    checks["redis"] = rt.runs.coordinator.health()
    checks["model_provider"] = model_provider_check()
    if rt.graph_error is None and isinstance(rt.graph, CompiledGraph):
        checks["models"] = models_check(rt.graph, production=rt.settings.production)
    checks["memory"] = memory_check()
    healthy = all(c["status"] in ("ok", "not_configured", "degraded") for c in checks.values())
    if not rt.runs.accepting:
        healthy = False
        checks["server"] = {"status": "draining"}
    degraded = any(c["status"] == "degraded" for c in checks.values())
    status = "unavailable" if not healthy else "degraded" if degraded else "ok"
    body = {"status": status, "checks": checks}
    return JSONResponse(body, status_code=200 if healthy else 503)


async def metrics(call: Call[None, None]) -> Response:
    return Response(call.rt.metrics.render(), media_type=CONTENT_TYPE)
