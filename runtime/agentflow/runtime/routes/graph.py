"""Running the graph: info, invoke, stream (SSE) and stop."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from agentflow.checkpointer.base import IdempotencyRecord
from agentflow.graph.compiled import RunResult
from agentflow.runtime.errors import ApiError
from agentflow.runtime.publisher import (
    HEARTBEAT,
    EventStreamResponse,
    StreamBuffer,
    chunk_payload,
    sse_frame,
)
from agentflow.runtime.runs import ActiveRun, run_error, time_limit
from agentflow.runtime.schemas import parse_run_request, parse_stop_request, read_json
from agentflow.runtime.state import AppRuntime, current_user, request_id, require_graph

IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def graph_info(request: Request) -> JSONResponse:
    rt, _ = await current_user(request)
    require_graph(rt)
    return JSONResponse(rt.graph.get_graph())


def run_response(result: RunResult, input_count: int) -> dict[str, Any]:
    from agentflow.graph.state import state_values

    return {
        "thread_id": result.thread_id,
        "run_id": result.run_id,
        "status": result.status,
        "messages": [m.to_dict() for m in result.messages[input_count:]],
        "state": state_values(result.state),
        "usage": result.usage_report(),
        "interrupt": result.interrupt.to_dict() if result.interrupt else None,
        "next": result.next,
    }


async def invoke(request: Request) -> Response:
    rt, user_id = await current_user(request)
    require_graph(rt)
    body = await read_json(request, rt.settings.max_body_bytes)
    run_request = parse_run_request(body)
    key = request.headers.get("idempotency-key")
    body_hash = ""
    if key is not None:
        if not IDEMPOTENCY_KEY.match(key):
            raise ApiError(
                400, "invalid_idempotency_key", "Idempotency-Key must be 1-255 visible characters"
            )
        body_hash = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        stored = await rt.checkpointer.get_idempotent(user_id, key)
        if stored is not None:
            if stored.request_hash != body_hash:
                raise ApiError(
                    422,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used with a different request body; "
                    "use a new key for a new request",
                )
            return JSONResponse(
                stored.body, status_code=stored.status, headers={"Idempotent-Replayed": "true"}
            )
        if (user_id, key) in rt.inflight_keys:
            raise ApiError(
                409, "idempotency_in_progress", "a request with this Idempotency-Key is running"
            )
        rt.inflight_keys.add((user_id, key))
    try:
        active = await rt.runs.start(run_request, user_id=user_id, request_id=request_id(request))
        _log_run(request, active)
        try:
            result = await _wait(active, rt)
        finally:
            request.scope["state"]["log"].update(active.log_fields())
        response = run_response(result, len(run_request.messages))
        if key is not None:
            record = IdempotencyRecord(
                key=key,
                user_id=user_id,
                request_hash=body_hash,
                status=200,
                body=response,
                expires_at=time.time() + rt.settings.idempotency_ttl,
            )
            await rt.checkpointer.put_idempotent(record)
        return JSONResponse(response)
    finally:
        if key is not None:
            rt.inflight_keys.discard((user_id, key))


async def _wait(active: ActiveRun, rt: AppRuntime) -> RunResult:
    """Wait for the run; a client that goes away does not cancel it (shielded)."""
    assert active.task is not None
    try:
        return await asyncio.shield(active.task)
    except asyncio.CancelledError:
        if active.task.done() and active.task.cancelled():
            raise run_error(asyncio.CancelledError(), production=rt.settings.production) from None
        raise
    except Exception as exc:
        raise run_error(exc, production=rt.settings.production) from None


def _log_run(request: Request, active: ActiveRun) -> None:
    request.scope["state"]["log"].update(thread_id=active.thread_id, run_id=active.run_id)


async def stream(request: Request) -> Response:
    rt, user_id = await current_user(request)
    require_graph(rt)
    body = await read_json(request, rt.settings.max_body_bytes)
    run_request = parse_run_request(body)
    buffer = StreamBuffer()
    active = await rt.runs.start(
        run_request, user_id=user_id, request_id=request_id(request), sink=buffer.put
    )
    _log_run(request, active)
    assert active.task is not None
    active.task.add_done_callback(lambda _: buffer.close())
    events = _events(active, buffer, rt, request.scope["state"]["log"])
    return EventStreamResponse(events, headers=SSE_HEADERS)


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
        error = run_error(exc, production=rt.settings.production)
        ids = {"thread_id": active.thread_id, "run_id": active.run_id}
        event_id += 1
        yield sse_frame(
            "error",
            {**ids, "code": error.code, "message": error.message, "request_id": active.request_id},
            event_id,
        )
        event_id += 1
        status = "cancelled" if task.cancelled() else "error"
        yield sse_frame("end", {**ids, "status": status}, event_id)


async def stop(request: Request) -> JSONResponse:
    rt, user_id = await current_user(request)
    thread_id = parse_stop_request(await read_json(request, rt.settings.max_body_bytes))
    info = await rt.checkpointer.get_thread(thread_id)
    running = rt.runs.active.get(thread_id)
    owner = info.user_id if info is not None else running.user_id if running else None
    if owner != user_id:
        raise ApiError(404, "thread_not_found", "thread not found")
    stopped = await rt.runs.request_stop(thread_id)
    return JSONResponse({"thread_id": thread_id, "stopped": stopped})
