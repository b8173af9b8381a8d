"""Running the graph: info, invoke, stream (SSE) and stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from agentflow.graph.compiled import RunResult
from agentflow.graph.messages import Message
from agentflow.graph.storage import IdempotencyRecord
from agentflow.graph.stream import StreamChunk, StreamEvent
from agentflow.runtime import idempotency
from agentflow.runtime.errors import require_owner
from agentflow.runtime.publisher import (
    HEARTBEAT,
    ApiJSONResponse,
    EventStreamResponse,
    StreamBuffer,
    chunk_payload,
    sse_frame,
)
from agentflow.runtime.runs import (
    SERVER_SHUTDOWN,
    ActiveRun,
    EventSink,
    run_body,
    run_error,
    time_limit,
)
from agentflow.runtime.schemas import parse_run_request, parse_stop_request, read_json
from agentflow.runtime.state import AppRuntime, current_user, request_id, require_graph

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
REPLAYED = {"Idempotent-Replayed": "true"}


async def graph_info(request: Request) -> JSONResponse:
    rt, _ = await current_user(request)
    require_graph(rt)
    return JSONResponse(rt.graph.get_graph())


async def invoke(request: Request) -> Response:
    rt, user_id = await current_user(request)
    require_graph(rt)
    body = await read_json(request, rt.settings.max_body_bytes)
    run_request = parse_run_request(body, rt.run_rules)
    key = idempotency.request_key(request.headers)
    if key is None:
        active = await rt.runs.start(run_request, user_id=user_id, request_id=request_id(request))
        result = await _wait_logged(request, active, rt)
        return ApiJSONResponse(run_body(result, len(run_request.messages)))
    claimed = await idempotency.claim(rt, user_id, key, body, run_request)
    if isinstance(claimed, IdempotencyRecord):
        return ApiJSONResponse(claimed.body, status_code=claimed.status, headers=REPLAYED)
    active, outcome = await _start_claimed(request, rt, user_id, claimed)
    await _wait_logged(request, active, rt)
    return ApiJSONResponse(outcome)


async def _start_claimed(
    request: Request,
    rt: AppRuntime,
    user_id: str,
    claimed: idempotency.Claim,
    sink: EventSink | None = None,
) -> tuple[ActiveRun, dict[str, Any]]:
    """Start the run that owns an Idempotency-Key; the dict receives its response body
    once it finished (recorded for retries before the run lets its thread go)."""
    outcome: dict[str, Any] = {}

    async def finish(result: RunResult | None) -> None:
        body = await idempotency.settle(rt, claimed, result)
        outcome.update(body or {})

    try:
        active = await rt.runs.start(
            claimed.request,
            user_id=user_id,
            request_id=request_id(request),
            sink=sink,
            run_id=claimed.run_id,
            on_finish=finish,
        )
    except BaseException:
        await idempotency.release(rt, claimed)
        raise
    return active, outcome


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


async def stream(request: Request) -> Response:
    rt, user_id = await current_user(request)
    require_graph(rt)
    body = await read_json(request, rt.settings.max_body_bytes)
    run_request = parse_run_request(body, rt.run_rules)
    key = idempotency.request_key(request.headers)
    buffer = StreamBuffer()
    if key is None:
        active = await rt.runs.start(
            run_request, user_id=user_id, request_id=request_id(request), sink=buffer.put
        )
    else:
        claimed = await idempotency.claim(rt, user_id, key, body, run_request)
        if isinstance(claimed, IdempotencyRecord):
            return EventStreamResponse(replay_frames(claimed.body), headers=SSE_HEADERS | REPLAYED)
        sink = _with_earlier(buffer.put, claimed.earlier)
        active, _ = await _start_claimed(request, rt, user_id, claimed, sink=sink)
    _log_run(request, active)
    assert active.task is not None
    active.task.add_done_callback(lambda _: buffer.close())
    events = _events(active, buffer, rt, request.scope["state"]["log"])
    return EventStreamResponse(events, headers=SSE_HEADERS)


def _with_earlier(sink: EventSink, earlier: list[Message]) -> EventSink:
    """A resumed run's stream: after its metadata, what its earlier attempt said."""
    if not earlier:
        return sink

    def put(chunk: StreamChunk) -> None:
        sink(chunk)
        if chunk.event == StreamEvent.METADATA:
            for message in earlier:
                sink(StreamChunk(StreamEvent.MESSAGE, chunk.thread_id, chunk.run_id,
                                 message=message))  # fmt: skip

    return put


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


async def stop(request: Request) -> JSONResponse:
    rt, user_id = await current_user(request)
    thread_id = parse_stop_request(await read_json(request, rt.settings.max_body_bytes))
    info = await rt.checkpointer.get_thread(thread_id)
    running = rt.runs.active.get(thread_id)
    require_owner(
        info.user_id if info is not None else running.user_id if running else None, user_id
    )
    stopped = await rt.runs.request_stop(thread_id)
    return JSONResponse({"thread_id": thread_id, "stopped": stopped})
