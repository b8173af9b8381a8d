"""Runs as resources: start one in the background and leave, list and read them, join one,
follow its stream from any worker (resuming after `Last-Event-ID`), cancel it."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from agentflow.runtime.api_types import MAX_INT32, RunCreate, RunListQuery
from agentflow.runtime.background import run_protocol, run_view
from agentflow.runtime.endpoints import Call
from agentflow.runtime.errors import ApiError, not_found, require_owner, validation_error
from agentflow.runtime.publisher import ApiJSONResponse, EventStreamResponse, run_path
from agentflow.runtime.run_log import follow, follow_stored
from agentflow.runtime.schemas import parse_run_request
from agentflow.runtime.state import request_id

LAST_EVENT_ID = "Last-Event-ID"


async def create_run(call: Call[RunCreate, None]) -> Response:
    thread_id = call.path["thread_id"]
    request = parse_run_request(call.body, call.rt.run_rules, thread_id=thread_id)
    record = await call.rt.background.submit(
        request,
        user_id=call.user_id,
        request_id=request_id(call.request),
        strategy=call.body.multitask_strategy,
    )
    headers = {"Location": run_path(thread_id, record.run_id)}
    return ApiJSONResponse(run_view(record), status_code=202, headers=headers)


async def list_runs(call: Call[None, RunListQuery]) -> dict[str, Any]:
    thread_id, limit = call.path["thread_id"], call.query.limit
    info = await call.rt.checkpointer.get_thread(thread_id)
    records = await call.rt.checkpointer.list_runs(
        thread_id, limit=limit + 1, before=call.query.before or None
    )
    mine = [r for r in records if r.user_id == call.user_id and run_protocol(r) == "agentflow"]
    if info is not None:
        require_owner(info.user_id, call.user_id)
    elif not mine:  # no such thread (a new thread's first run may precede its first step)
        raise not_found("thread")
    more = len(mine) > limit
    mine = mine[:limit]
    return {
        "runs": [run_view(r) for r in mine],
        "next_cursor": mine[-1].run_id if more else None,
    }


async def get_run(call: Call[None, None]) -> dict[str, Any]:
    record = await call.rt.background.get(call.path["thread_id"], call.path["run_id"], call.user_id)
    return run_view(record)


async def join_run(call: Call[None, None]) -> dict[str, Any]:
    record = await call.rt.background.get(call.path["thread_id"], call.path["run_id"], call.user_id)
    return await call.rt.background.join(record)


async def cancel_run(call: Call[None, None]) -> Response:
    record = await call.rt.background.get(call.path["thread_id"], call.path["run_id"], call.user_id)
    record = await call.rt.background.cancel(record)
    return ApiJSONResponse(run_view(record), status_code=202)


async def stream_run(call: Call[None, None]) -> Response:
    """The run's events after `Last-Event-ID` (all of them without it), live, from this
    worker's log or, for a run on another worker, from the shared store."""
    rt = call.rt
    record = await rt.background.get(call.path["thread_id"], call.path["run_id"], call.user_id)
    after = last_event_id(call.request.headers.get(LAST_EVENT_ID))
    heartbeat = rt.settings.heartbeat_interval
    log = rt.runs.logs.get(record.run_id) or await rt.background.wait_for_log(record)
    if log is not None:
        frames = follow(log, after, heartbeat)
    elif rt.runs.shared is not None:
        frames = follow_stored(rt.runs.shared, record.thread_id, record.run_id, after, heartbeat)
    else:
        raise ApiError(
            404, "stream_expired",
            "this run's events are no longer kept (RUN_STREAM_RETENTION); GET the run for "
            "its result",
        )  # fmt: skip
    return EventStreamResponse(frames)


def last_event_id(value: str | None) -> int:
    """The id after which to resume; an id beyond any event's resumes after the last."""
    if value is None or value == "":
        return 0
    if not value.isascii() or not value.isdigit() or len(value) > 10:
        raise validation_error(
            [{"loc": ["header", LAST_EVENT_ID], "msg": "expected the id of an event received"}]
        )
    return min(int(value), MAX_INT32)  # ids are 32-bit in storage
