"""`/threads/...` of the LangGraph API on agentflow's threads: create (`if_exists`), get,
patch, delete, search, count, state (read, write, at a checkpoint) and history. A thread
belongs to its user; its graph is the one its metadata names (`graph_id`), as LangGraph
records it on the first run."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from starlette.responses import Response

from agentflow.graph.compiled import CompiledGraph
from agentflow.graph.storage import ThreadInfo, ThreadQuery
from agentflow.runtime.api_types import THREAD_ID
from agentflow.runtime.endpoints import Call
from agentflow.runtime.errors import ApiError, validation_error
from agentflow.runtime.lgapi import state as lg_state
from agentflow.runtime.lgapi.ids import assistant_id
from agentflow.runtime.lgapi.types import (
    HistoryBody,
    LangGraphHistoryQuery,
    LangGraphThreadPatch,
    LangGraphThreadSearch,
    StateQuery,
    StateUpdate,
    ThreadCreate,
)
from agentflow.runtime.lgapi.views import graph_named, thread_graph, thread_view
from agentflow.runtime.loader import ServedGraph
from agentflow.runtime.publisher import ApiJSONResponse
from agentflow.runtime.state import AppRuntime, owned_thread

PAGE = 100  # threads read per storage page while skipping an offset


async def view(rt: AppRuntime, info: ThreadInfo, busy: set[str] | None = None) -> dict[str, Any]:
    """The thread with its status and current values."""
    running = busy if busy is not None else await rt.runs.running([info.thread_id])
    found = thread_graph(rt, info)
    state = await lg_state.state_of(found[1], info.thread_id) if found else None
    status = "busy" if info.thread_id in running else "idle"
    interrupts: dict[str, Any] = {}
    if state is not None and state["interrupts"] and status == "idle":
        status = "interrupted"
        interrupts = {task["id"]: task["interrupts"] for task in state["tasks"]}
    values = state["values"] if state is not None and state["checkpoint"] else None
    return thread_view(info, status=status, values=values, interrupts=interrupts)


async def create(call: Call[ThreadCreate, None]) -> dict[str, Any]:
    body, rt = call.body, call.rt
    thread_id = body.thread_id or str(uuid.uuid4())
    if not THREAD_ID.match(thread_id):
        rule = "expected a thread id (letters, digits, '.', '_', ':', '-'; at most 128)"
        raise validation_error([{"loc": ["body", "thread_id"], "msg": rule}])
    existing = await rt.checkpointer.get_thread(thread_id)
    if existing is not None:
        if body.if_exists == "do_nothing" and existing.user_id == call.user_id:
            return await view(rt, existing)
        raise ApiError(409, "thread_exists", f"thread {thread_id} already exists")
    metadata = dict(body.metadata or {})
    if body.graph_id is not None:
        graph_id, _ = graph_named(rt, body.graph_id)
        metadata |= {"graph_id": graph_id, "assistant_id": assistant_id(graph_id)}
    info = await rt.checkpointer.create_thread(thread_id, call.user_id, metadata=metadata)
    return thread_view(info)


async def get(call: Call[None, None]) -> dict[str, Any]:
    return await view(call.rt, await owned_thread(call.rt, call.path["thread_id"], call.user_id))


async def patch(call: Call[LangGraphThreadPatch, None]) -> dict[str, Any]:
    info = await owned_thread(call.rt, call.path["thread_id"], call.user_id)
    updated = await call.rt.checkpointer.update_thread_metadata(
        info.thread_id, dict(call.body.metadata or {})
    )
    return await view(call.rt, updated or info)


async def delete(call: Call[None, None]) -> Response:
    info = await owned_thread(call.rt, call.path["thread_id"], call.user_id)
    await delete_thread(call.rt, info)
    return Response(status_code=204)


async def delete_thread(rt: AppRuntime, info: ThreadInfo) -> None:
    """Delete the thread and, for a LangGraph graph, its checkpoints (409 while it runs)."""
    found = thread_graph(rt, info)
    await rt.runs.delete_thread(info.thread_id)
    if found is not None and not isinstance(found[1], CompiledGraph):
        await found[1].delete_thread(info.thread_id)


async def _search(rt: AppRuntime, user_id: str, body: LangGraphThreadSearch) -> list[ThreadInfo]:
    """Every thread of the user that matches (metadata containment), in the order asked."""
    query = ThreadQuery(
        metadata=body.metadata or {},
        sort_by="created_at" if body.sort_by == "created_at" else "updated_at",
        sort_order=body.sort_order or "desc",
        limit=PAGE,
    )
    found: list[ThreadInfo] = []
    while True:
        page = await rt.checkpointer.search_threads(user_id, query)
        found += page.items
        if page.next_cursor is None:
            return found
        query = dataclasses.replace(query, cursor=page.next_cursor)


async def search(call: Call[LangGraphThreadSearch, None]) -> Response:
    rt, body = call.rt, call.body
    found = await _search(rt, call.user_id, body)
    busy = await rt.runs.running([t.thread_id for t in found])
    views = []
    for info in found:
        if body.status == "busy" and info.thread_id not in busy:
            continue
        views.append(await view(rt, info, busy))
    if body.status is not None:
        views = [v for v in views if v["status"] == body.status]
    start = int(body.offset)
    page = views[start : start + int(body.limit)]
    return ApiJSONResponse(page, headers={"X-Pagination-Total": str(len(views))})


async def count(call: Call[LangGraphThreadSearch, None]) -> int:
    rt, body = call.rt, call.body
    found = await _search(rt, call.user_id, body)
    if body.status is None:
        return len(found)
    busy = await rt.runs.running([t.thread_id for t in found])
    return sum([(await view(rt, info, busy))["status"] == body.status for info in found])


async def _graph_of(call: Call[Any, Any]) -> tuple[ThreadInfo, ServedGraph | None]:
    info = await owned_thread(call.rt, call.path["thread_id"], call.user_id)
    found = thread_graph(call.rt, info)
    return info, found[1] if found else None


async def get_state(call: Call[None, StateQuery]) -> dict[str, Any]:
    info, graph = await _graph_of(call)
    checkpoint_id = call.path.get("checkpoint_id")
    if graph is None:
        if checkpoint_id is not None:
            raise ApiError(404, "checkpoint_not_found", "no such checkpoint on this thread")
        return dict(lg_state.EMPTY_STATE)
    return await lg_state.state_of(
        graph, info.thread_id, checkpoint_id, subgraphs=call.query.subgraphs
    )


async def post_state(call: Call[StateUpdate, None]) -> dict[str, Any]:
    info, graph = await _graph_of(call)
    if graph is None:
        name = next(iter(call.rt.graphs))  # LangGraph writes to the default graph too
        graph = call.rt.graphs[name]
        await call.rt.checkpointer.update_thread_metadata(
            info.thread_id, {"graph_id": name, "assistant_id": assistant_id(name)}
        )
    body = call.body
    checkpoint_id = body.checkpoint_id or (body.checkpoint or {}).get("checkpoint_id")
    async with call.rt.runs.holding(info.thread_id):  # 409 while a run is in progress
        return await lg_state.update_state(
            graph, info.thread_id, body.values, user_id=call.user_id, as_node=body.as_node,
            checkpoint_id=checkpoint_id,
        )  # fmt: skip


async def _history(
    call: Call[Any, Any], limit: int, before: str | None, metadata: dict[str, Any] | None,
    checkpoint_id: str | None,
) -> list[dict[str, Any]]:  # fmt: skip
    info, graph = await _graph_of(call)
    if graph is None:
        return []
    return await lg_state.history(
        graph, info.thread_id, limit=limit, before=before, metadata=metadata,
        checkpoint_id=checkpoint_id,
    )  # fmt: skip


async def post_history(call: Call[HistoryBody, None]) -> list[dict[str, Any]]:
    body = call.body
    before = body.before.get("checkpoint_id") if isinstance(body.before, dict) else body.before
    checkpoint_id = (body.checkpoint or {}).get("checkpoint_id")
    return await _history(call, int(body.limit), before, body.metadata, checkpoint_id)


async def get_history(call: Call[None, LangGraphHistoryQuery]) -> list[dict[str, Any]]:
    return await _history(call, call.query.limit, call.query.before, None, None)
