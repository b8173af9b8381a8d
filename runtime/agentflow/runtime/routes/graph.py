"""Running the graph: info, invoke, stream (SSE) and stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from agentflow.graph.compiled import RunResult
from agentflow.runtime import idempotency
from agentflow.runtime.api_types import RunRequestBody, StopRequest
from agentflow.runtime.endpoints import Call
from agentflow.runtime.errors import require_owner
from agentflow.runtime.publisher import (
    ApiJSONResponse,
    EventStreamResponse,
    run_body,
    sse_frame,
    stream_path,
)
from agentflow.runtime.run_log import follow
from agentflow.runtime.runs import ActiveRun, Submitted, run_error
from agentflow.runtime.schemas import parse_run_request
from agentflow.runtime.state import AppRuntime, request_id

REPLAYED = {"Idempotent-Replayed": "true"}


async def graph_info(call: Call[None, None]) -> dict[str, Any]:
    return call.rt.graph.get_graph()


async def _submit(call: Call[RunRequestBody, None], *, stream: bool) -> Submitted:
    """Start the run a request asks for (through its Idempotency-Key, if it sends one)."""
    key = idempotency.request_key(call.request.headers)
    return await call.rt.runs.submit(
        parse_run_request(call.body, call.rt.run_rules),
        user_id=call.user_id,
        request_id=request_id(call.request),
        key=key,
        request_hash=idempotency.body_hash(call.body) if key is not None else "",
        stream=stream,
    )


async def invoke(call: Call[RunRequestBody, None]) -> Response:
    submitted = await _submit(call, stream=False)
    if submitted.run is None:
        return ApiJSONResponse(submitted.replay, headers=REPLAYED)
    result = await _wait_logged(call.request, submitted.run, call.rt)
    return ApiJSONResponse(submitted.recorded or run_body(result, submitted.input_count))


async def _wait_logged(request: Request, active: ActiveRun, rt: AppRuntime) -> RunResult:
    _log_run(request, active)
    try:
        return await _wait(active, rt)
    finally:
        request.scope["state"]["log"].update(active.log_fields())


async def _wait(active: ActiveRun, rt: AppRuntime) -> RunResult:
    """Wait for the run; a client that goes away does not cancel it (shielded)."""
    assert active.task is not None
    try:
        return await asyncio.shield(active.task)
    except asyncio.CancelledError:
        if active.task.done() and active.task.cancelled():
            raise run_error(
                asyncio.CancelledError(),
                production=rt.settings.production,
                cancel_reason=active.cancel_reason,
            ) from None
        raise
    except Exception as exc:
        raise run_error(exc, production=rt.settings.production) from None


def _log_run(request: Request, active: ActiveRun) -> None:
    request.scope["state"]["log"].update(thread_id=active.thread_id, run_id=active.run_id)


async def stream(call: Call[RunRequestBody, None]) -> Response:
    submitted = await _submit(call, stream=True)
    active = submitted.run
    if active is None:
        assert submitted.replay is not None
        return EventStreamResponse(replay_frames(submitted.replay), headers=REPLAYED)
    _log_run(call.request, active)
    assert active.log is not None
    frames = follow(active.log, 0, call.rt.settings.heartbeat_interval)
    return EventStreamResponse(logged(frames, active, call.request.scope["state"]["log"]))


async def logged(
    frames: AsyncIterator[bytes], active: ActiveRun, log_fields: dict[str, Any]
) -> AsyncIterator[bytes]:
    """The frames; once the run is over, its outcome goes into the request's log line. If
    the client leaves, this generator stops but the run goes on and is persisted."""
    async for chunk in frames:
        yield chunk
    log_fields.update(active.log_fields())


async def replay_frames(body: dict[str, Any]) -> AsyncIterator[bytes]:
    """A finished run's recorded response as the SSE events its stream sent: metadata,
    its messages, the interrupt if it paused, then end."""
    ids = {"thread_id": body["thread_id"], "run_id": body["run_id"]}
    metadata = {**ids, "stream_url": stream_path(body["thread_id"], body["run_id"])}
    events: list[tuple[str, dict[str, Any]]] = [("metadata", metadata)]
    events += [("message", {**ids, "node": None, "message": m}) for m in body["messages"]]
    if body.get("interrupt"):
        events.append(("interrupt", {**ids, **body["interrupt"]}))
    events.append(("end", {**ids, "status": body["status"], "usage": body["usage"]}))
    yield b"".join(sse_frame(name, data, i) for i, (name, data) in enumerate(events, 1))


async def stop(call: Call[StopRequest, None]) -> dict[str, Any]:
    rt, thread_id = call.rt, call.body.thread_id
    info = await rt.checkpointer.get_thread(thread_id)
    running = rt.runs.active.get(thread_id)
    require_owner(
        info.user_id if info is not None else running.user_id if running else None, call.user_id
    )
    stopped = await rt.runs.request_stop(thread_id)
    return {"thread_id": thread_id, "stopped": stopped}
