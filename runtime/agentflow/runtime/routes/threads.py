"""Threads of the calling user: list, get, delete, state, messages, history.

Path ids, cursors and `before` pass the one text validator (schemas.check_text) before they
reach storage; limits and offsets are bounded integers."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from agentflow.graph.storage import InvalidCursorError, ThreadInfo
from agentflow.runtime.errors import validation_error
from agentflow.runtime.publisher import ApiJSONResponse
from agentflow.runtime.schemas import MAX_INT32, path_text, query_int, query_text
from agentflow.runtime.state import current_user, owned_thread


def thread_body(info: ThreadInfo, running: set[str]) -> dict[str, Any]:
    body = info.to_dict()
    body.pop("user_id", None)
    body["running"] = info.thread_id in running  # on any worker
    return body


async def list_threads(request: Request) -> JSONResponse:
    rt, user_id = await current_user(request)
    limit = query_int(request, "limit", 20, low=1, high=100)
    cursor = query_text(request, "cursor")
    try:
        page = await rt.checkpointer.list_threads(user_id, limit=limit, cursor=cursor)
    except InvalidCursorError:
        raise validation_error(
            [{"loc": ["query", "cursor"], "msg": "invalid cursor; use next_cursor as given"}]
        ) from None
    running = await rt.runs.running([t.thread_id for t in page.items])
    return ApiJSONResponse(
        {
            "threads": [thread_body(t, running) for t in page.items],
            "next_cursor": page.next_cursor,
        }
    )


async def get_thread(request: Request) -> JSONResponse:
    rt, user_id = await current_user(request)
    info = await owned_thread(rt, path_text(request, "thread_id"), user_id)
    return ApiJSONResponse(thread_body(info, await rt.runs.running([info.thread_id])))


async def delete_thread(request: Request) -> JSONResponse:
    rt, user_id = await current_user(request)
    thread_id = path_text(request, "thread_id")
    await owned_thread(rt, thread_id, user_id)
    await rt.runs.delete_thread(thread_id)  # 409 while a run is in progress on any worker
    return ApiJSONResponse({"thread_id": thread_id, "deleted": True})


async def thread_state(request: Request) -> JSONResponse:
    rt, user_id = await current_user(request)
    thread_id = path_text(request, "thread_id")
    await owned_thread(rt, thread_id, user_id)
    checkpoint = await rt.checkpointer.get_checkpoint(thread_id)
    if checkpoint is None:
        return ApiJSONResponse(
            {"thread_id": thread_id, "checkpoint_id": None, "status": "idle", "step": 0,
             "values": {}, "message_count": 0, "next": [], "interrupt": None}
        )  # fmt: skip
    return ApiJSONResponse(
        {
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
    )


async def thread_messages(request: Request) -> JSONResponse:
    rt, user_id = await current_user(request)
    thread_id = path_text(request, "thread_id")
    info = await owned_thread(rt, thread_id, user_id)
    offset = query_int(request, "offset", 0, low=0, high=MAX_INT32)
    limit = query_int(request, "limit", 50, low=1, high=500)
    messages = []
    if offset < info.message_count:  # past the end there is nothing to read
        messages = await rt.checkpointer.get_messages(thread_id, offset=offset, limit=limit)
    end = offset + len(messages)
    return ApiJSONResponse(
        {
            "messages": [m.to_dict() for m in messages],
            "next_offset": end if end < info.message_count else None,
            "total": info.message_count,
        }
    )


async def thread_history(request: Request) -> JSONResponse:
    rt, user_id = await current_user(request)
    thread_id = path_text(request, "thread_id")
    await owned_thread(rt, thread_id, user_id)
    limit = query_int(request, "limit", 20, low=1, high=100)
    before = query_text(request, "before")
    checkpoints = await rt.checkpointer.list_history(thread_id, limit=limit + 1, before=before)
    more = len(checkpoints) > limit
    checkpoints = checkpoints[:limit]
    items = []
    for checkpoint in checkpoints:
        data = checkpoint.to_dict()
        data.pop("thread_id", None)
        items.append(data)
    return ApiJSONResponse(
        {
            "checkpoints": items,
            "next_cursor": checkpoints[-1].checkpoint_id if more and checkpoints else None,
        }
    )
