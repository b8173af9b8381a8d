"""`/ok` and `/info` as the LangGraph API answers them."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from agentflow.runtime.endpoints import Call


async def ok(call: Call[None, None]) -> dict[str, Any]:
    return {"ok": True, "services": {}}


async def info(call: Call[None, None]) -> dict[str, Any]:
    try:
        langgraph: str | None = version("langgraph")
    except PackageNotFoundError:
        langgraph = None
    from agentflow import __version__

    return {
        "version": __version__,
        "langgraph_py_version": langgraph,
        "flags": {
            "assistants": True,
            "crons": False,
            "langsmith": False,
            "langsmith_tracing_replicas": False,
            "langsmith_tracing_session_on_runs": False,
        },
        "host": {
            "kind": "agentflow",
            "project_id": None,
            "host_revision_id": None,
            "revision_id": None,
            "tenant_id": None,
        },
    }
