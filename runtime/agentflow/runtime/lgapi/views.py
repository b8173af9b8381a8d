"""The LangGraph API's resources as it shows them: assistants (one per served graph, its id
the uuid5 of the graph id, as LangGraph makes it), threads, runs, thread states."""

from __future__ import annotations

import datetime
from typing import Any

from agentflow.graph.storage import RunRecord, ThreadInfo
from agentflow.runtime.errors import ApiError
from agentflow.runtime.lgapi.convert import jsonable
from agentflow.runtime.lgapi.ids import assistant_id
from agentflow.runtime.loader import ServedGraph
from agentflow.runtime.state import AppRuntime

__all__ = [
    "assistant_view", "graph_named", "iso", "run_view", "thread_graph", "thread_view",
]  # fmt: skip

# agentflow run statuses -> LangGraph's
RUN_STATUS = {"pending": "pending", "running": "running", "success": "success",
              "interrupted": "success", "error": "error", "timeout": "timeout",
              "cancelled": "interrupted"}  # fmt: skip  # a paused run succeeded (LangGraph)


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).isoformat()


def graph_named(rt: AppRuntime, assistant: str) -> tuple[str, ServedGraph]:
    """The served graph an assistant id (or a graph id) names; 404 otherwise."""
    for name, graph in rt.graphs.items():
        if assistant in (name, assistant_id(name)):
            return name, graph
    raise ApiError(
        404, "assistant_not_found",
        f"no assistant {assistant!r}: this server's assistants are its graphs "
        f"({', '.join(rt.graphs)}), by graph id or by the uuid5 LangGraph gives each",
    )  # fmt: skip


def thread_graph(rt: AppRuntime, info: ThreadInfo) -> tuple[str, ServedGraph] | None:
    """The graph a LangGraph API run put on the thread (its metadata's `graph_id`); None
    before the first such run."""
    graph_id = info.metadata.get("graph_id")
    if not isinstance(graph_id, str) or graph_id not in rt.graphs:
        return None
    return graph_id, rt.graphs[graph_id]


def assistant_view(rt: AppRuntime, name: str) -> dict[str, Any]:
    """The graph's default assistant. It was made with the configuration that names the
    graph: its time is agentflow.json's, the same on every worker."""
    path = rt.settings.config_path
    created = iso(path.stat().st_mtime if path is not None else rt.started_at)
    return {
        "assistant_id": assistant_id(name),
        "graph_id": name,
        "config": {},
        "context": {},
        "metadata": {"created_by": "system"},
        "name": name,
        "created_at": created,
        "updated_at": created,
        "version": 1,
        "description": None,
    }


def thread_view(
    info: ThreadInfo,
    *,
    status: str = "idle",
    values: Any = None,
    interrupts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The thread; `interrupts` and `error` once it ran (LangGraph adds them with the first
    run's state)."""
    view = {
        "thread_id": info.thread_id,
        "created_at": iso(info.created_at),
        "updated_at": iso(info.updated_at),
        "state_updated_at": iso(info.updated_at),
        "metadata": info.metadata,
        "status": status,
        "config": {},
        "values": values,
    }
    if "graph_id" in info.metadata:
        view |= {"interrupts": interrupts or {}, "error": None}
    return view


def run_view(record: RunRecord) -> dict[str, Any]:
    request = record.request
    graph_id = request.get("graph") or ""
    lg = request.get("langgraph") or {}
    return {
        "run_id": record.run_id,
        "thread_id": record.thread_id,
        "assistant_id": assistant_id(graph_id),
        "metadata": {
            **(request.get("metadata") or {}),
            "graph_id": graph_id,
            "assistant_id": assistant_id(graph_id),
        },
        "status": RUN_STATUS.get(record.status, record.status),
        "kwargs": jsonable(
            {
                "input": lg.get("input"),
                "command": lg.get("command"),
                "config": {"configurable": lg.get("configurable") or {}},
                "context": {},
                "stream_mode": request.get("stream_mode") or ["values"],
                "subgraphs": bool(lg.get("subgraphs")),
            }
        ),
        "multitask_strategy": record.multitask_strategy,
        "created_at": iso(record.created_at),
        "updated_at": iso(record.ended_at or record.started_at or record.created_at),
        "langsmith_session_name": None,
    }
