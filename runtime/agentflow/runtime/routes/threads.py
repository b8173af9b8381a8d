"""Threads of the calling user: list, search, get, update metadata, delete, state, messages,
history.

Each handler gets its path, query and user checked by its row of the route table
(routes/__init__.py); storage sees no unchecked client text."""

from __future__ import annotations

from typing import Any

from agentflow.graph.compiled import CompiledGraph
from agentflow.graph.storage import InvalidCursorError, ThreadInfo, ThreadQuery
from agentflow.runtime.api_types import (
    HistoryQuery,
    MessageQuery,
    ThreadListQuery,
    ThreadPatch,
    ThreadSearch,
)
from agentflow.runtime.endpoints import Call
from agentflow.runtime.errors import not_found, validation_error
from agentflow.runtime.lgapi.views import thread_graph as lgapi_thread_graph
from agentflow.runtime.loader import ServedGraph
from agentflow.runtime.state import AppRuntime, owned_thread


def thread_body(info: ThreadInfo, running: set[str]) -> dict[str, Any]:
    body = info.to_dict()
    body.pop("user_id", None)
    body["running"] = info.thread_id in running  # on any worker
    return body


async def list_threads(call: Call[None, ThreadListQuery]) -> dict[str, Any]:
    rt, query = call.rt, call.query
    try:
        page = await rt.checkpointer.list_threads(
            call.user_id, limit=query.limit, cursor=query.cursor or None
        )
    except InvalidCursorError:
        raise validation_error(
            [{"loc": ["query", "cursor"], "msg": "invalid cursor; use next_cursor as given"}]
        ) from None
    running = await rt.runs.running([t.thread_id for t in page.items])
    return {
        "threads": [thread_body(t, running) for t in page.items],
        "next_cursor": page.next_cursor,
    }


async def search_threads(call: Call[ThreadSearch, None]) -> dict[str, Any]:
    body = call.body
    query = ThreadQuery(
        metadata=body.metadata or {},
        status=body.status,
        created_after=body.created_after,
        created_before=body.created_before,
        updated_after=body.updated_after,
        updated_before=body.updated_before,
        sort_by=body.sort_by,
        sort_order=body.sort_order,
        limit=int(body.limit),
        cursor=body.cursor or None,
    )
    try:
        page = await call.rt.checkpointer.search_threads(call.user_id, query)
    except InvalidCursorError:
        raise validation_error(
            [{"loc": ["body", "cursor"], "msg": "invalid cursor; use next_cursor as given"}]
        ) from None
    running = await call.rt.runs.running([t.thread_id for t in page.items])
    return {
        "threads": [thread_body(t, running) for t in page.items],
        "next_cursor": page.next_cursor,
    }


async def get_thread(call: Call[None, None]) -> dict[str, Any]:
    info = await owned_thread(call.rt, call.path["thread_id"], call.user_id)
    return thread_body(info, await call.rt.runs.running([info.thread_id]))


async def update_thread(call: Call[ThreadPatch, None]) -> dict[str, Any]:
    thread_id = call.path["thread_id"]
    await owned_thread(call.rt, thread_id, call.user_id)
    info = await call.rt.checkpointer.update_thread_metadata(thread_id, call.body.metadata)
    if info is None:  # deleted meanwhile
        raise not_found("thread")
    return thread_body(info, await call.rt.runs.running([thread_id]))


async def delete_thread(call: Call[None, None]) -> dict[str, Any]:
    thread_id = call.path["thread_id"]
    await owned_thread(call.rt, thread_id, call.user_id)
    await call.rt.runs.delete_thread(thread_id)  # 409 while a run is in progress on any worker
    return {"thread_id": thread_id, "deleted": True}


def thread_graph(rt: AppRuntime, info: ThreadInfo) -> ServedGraph:
    """The graph whose steps the thread holds: the one its metadata names (a LangGraph API
    run's), else the default graph."""
    found = lgapi_thread_graph(rt, info)
    return found[1] if found else rt.graph


async def thread_state(call: Call[None, None]) -> dict[str, Any]:
    thread_id = call.path["thread_id"]
    info = await owned_thread(call.rt, thread_id, call.user_id)
    graph = thread_graph(call.rt, info)
    if not isinstance(graph, CompiledGraph):  # a LangGraph graph keeps its own checkpoints
        state = await graph.thread_state(thread_id)
        return state or {"thread_id": thread_id, "checkpoint_id": None, "status": "idle",
                         "step": 0, "values": {}, "message_count": 0, "next": [],
                         "interrupt": None}  # fmt: skip
    checkpoint = await call.rt.checkpointer.get_checkpoint(thread_id)
    if checkpoint is None:
        return {"thread_id": thread_id, "checkpoint_id": None, "status": "idle", "step": 0,
                "values": {}, "message_count": 0, "next": [], "interrupt": None}  # fmt: skip
    return {
        "thread_id": thread_id,
        "checkpoint_id": checkpoint.checkpoint_id,
        "status": checkpoint.status,
        "step": checkpoint.step,
        "values": checkpoint.values,
        "message_count": checkpoint.message_count,
        "next": checkpoint.next,
        "interrupt": checkpoint.interrupt.to_dict() if checkpoint.interrupt else None,
        "created_at": checkpoint.created_at,
    }


async def thread_messages(call: Call[None, MessageQuery]) -> dict[str, Any]:
    thread_id, offset, limit = call.path["thread_id"], call.query.offset, call.query.limit
    info = await owned_thread(call.rt, thread_id, call.user_id)
    graph, total = thread_graph(call.rt, info), info.message_count
    messages = []
    if not isinstance(graph, CompiledGraph):  # a LangGraph graph keeps its own checkpoints
        everything = await graph.messages(thread_id)
        total, messages = len(everything), everything[offset : offset + limit]
    elif offset < total:  # past the end there is nothing to read
        messages = await call.rt.checkpointer.get_messages(thread_id, offset=offset, limit=limit)
    end = offset + len(messages)
    return {
        "messages": [m.to_dict() for m in messages],
        "next_offset": end if end < total else None,
        "total": total,
    }


async def thread_history(call: Call[None, HistoryQuery]) -> dict[str, Any]:
    thread_id, limit = call.path["thread_id"], call.query.limit
    await owned_thread(call.rt, thread_id, call.user_id)
    checkpoints = await call.rt.checkpointer.list_history(
        thread_id, limit=limit + 1, before=call.query.before or None
    )
    more = len(checkpoints) > limit
    checkpoints = checkpoints[:limit]
    items = []
    for checkpoint in checkpoints:
        data = checkpoint.to_dict()
        data.pop("thread_id", None)
        items.append(data)
    return {
        "checkpoints": items,
        "next_cursor": checkpoints[-1].checkpoint_id if more and checkpoints else None,
    }
