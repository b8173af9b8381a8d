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
    HEARTBEAT,
    ApiJSONResponse,
    EventStreamResponse,
    StreamBuffer,
    chunk_payload,
    run_body,
    sse_frame,
)
from agentflow.runtime.runs import SERVER_SHUTDOWN, ActiveRun, Submitted, run_error, time_limit
from agentflow.runtime.schemas import parse_run_request
from agentflow.runtime.state import AppRuntime, request_id

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
REPLAYED = {"Idempotent-Replayed": "true"}


async def graph_info(call: Call[None, None]) -> dict[str, Any]:
    return call.rt.graph.get_graph()


async def _submit(call: Call[RunRequestBody, None], buffer: StreamBuffer | None) -> Submitted:
    """Start the run a request asks for (through its Idempotency-Key, if it sends one)."""
    key = idempotency.request_key(call.request.headers)
    return await call.rt.runs.submit(
        parse_run_request(call.body, call.rt.run_rules),
        user_id=call.user_id,
        request_id=request_id(call.request),
        key=key,
        request_hash=idempotency.body_hash(call.body) if key is not None else "",
        sink=buffer.put if buffer is not None else None,
    )


async def invoke(call: Call[RunRequestBody, None]) -> Response:
    submitted = await _submit(call, None)
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
    buffer = StreamBuffer()
    submitted = await _submit(call, buffer)
    active = submitted.run
    if active is None:
        assert submitted.replay is not None
        return EventStreamResponse(replay_frames(submitted.replay), headers=SSE_HEADERS | REPLAYED)
    _log_run(call.request, active)
    assert active.task is not None
    active.task.add_done_callback(lambda _: buffer.close())
    events = _events(active, buffer, call.rt, call.request.scope["state"]["log"])
    return EventStreamResponse(events, headers=SSE_HEADERS)


async def replay_frames(body: dict[str, Any]) -> AsyncIterator[bytes]:
    """A finished run's recorded response as the SSE events its stream sent: metadata,
    its messages, the interrupt if it paused, then end."""
    ids = {"thread_id": body["thread_id"], "run_id": body["run_id"]}
    events: list[tuple[str, dict[str, Any]]] = [("metadata", ids)]
    events += [("message", {**ids, "node": None, "message": m}) for m in body["messages"]]
    if body.get("interrupt"):
        events.append(("interrupt", {**ids, **body["interrupt"]}))
    events.append(("end", {**ids, "status": body["status"], "usage": body["usage"]}))
    yield b"".join(sse_frame(name, data, i) for i, (name, data) in enumerate(events, 1))


async def _events(
    active: ActiveRun,
    buffer: StreamBuffer,
    rt: AppRuntime,
    log_fields: dict[str, Any],
) -> AsyncIterator[bytes]:
    """SSE frames of one run: its events, heartbeats while quiet, then `end`. If the client
    leaves, this generator stops but the run goes on and is persisted."""
    task = active.task
    assert task is not None
    event_id = 0
    heartbeat = rt.settings.heartbeat_interval
    while True:
        if not buffer.ready:  # a timer only while waiting, none per event
            try:
                async with time_limit(heartbeat):
                    await buffer.wait()
            except TimeoutError:
                yield HEARTBEAT
                continue
        frames = []  # what arrived together goes out in one write
        for chunk in buffer.drain():
            event_id += 1
            frames.append(sse_frame(*chunk_payload(chunk), event_id))
        if frames:
            yield b"".join(frames)
        if buffer.closed:
            break
    log_fields.update(active.log_fields())
    if task.cancelled() or task.exception() is not None:
        exc: BaseException = (
            asyncio.CancelledError() if task.cancelled() else task.exception()  # type: ignore[assignment]
        )
        error = run_error(
            exc, production=rt.settings.production, cancel_reason=active.cancel_reason
        )
        ids = {"thread_id": active.thread_id, "run_id": active.run_id}
        event_id += 1
        yield sse_frame(
            "error",
            {**ids, "code": error.code, "message": error.message, "request_id": active.request_id,
             "resumable": error.code == SERVER_SHUTDOWN},
            event_id,
        )  # fmt: skip
        event_id += 1
        status = "cancelled" if task.cancelled() else "error"
        yield sse_frame("end", {**ids, "status": status}, event_id)


async def stop(call: Call[StopRequest, None]) -> dict[str, Any]:
    rt, thread_id = call.rt, call.body.thread_id
    info = await rt.checkpointer.get_thread(thread_id)
    running = rt.runs.active.get(thread_id)
    require_owner(
        info.user_id if info is not None else running.user_id if running else None, call.user_id
    )
    stopped = await rt.runs.request_stop(thread_id)
    return {"thread_id": thread_id, "stopped": stopped}
