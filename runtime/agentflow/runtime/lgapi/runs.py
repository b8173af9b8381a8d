"""`/threads/{thread_id}/runs/...` and stateless `/runs/...` of the LangGraph API, on
agentflow's run service: every run is a stored run (so `multitask_strategy`, join, cancel
and resumable streams work as for `/v1` runs, across workers), its stream in LangGraph's
events (frames.py). Headers as langgraph-sdk reads them: `Content-Location` names the run,
`Location` where to reconnect."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import msgspec
from starlette.responses import Response

from agentflow.graph.compiled import CompiledGraph
from agentflow.graph.storage import RunRecord
from agentflow.runtime.api_types import RunRequestBody
from agentflow.runtime.background import run_protocol
from agentflow.runtime.endpoints import Call
from agentflow.runtime.errors import ApiError, not_found, require_owner, validation_error
from agentflow.runtime.lgapi.convert import from_lc_message
from agentflow.runtime.lgapi.ids import assistant_id
from agentflow.runtime.lgapi.threads import delete_thread
from agentflow.runtime.lgapi.types import (
    CancelQuery,
    JoinStreamQuery,
    LangGraphRunListQuery,
    RunBody,
)
from agentflow.runtime.lgapi.views import graph_named, run_view
from agentflow.runtime.publisher import ApiJSONResponse, EventStreamResponse
from agentflow.runtime.routes.runs import LAST_EVENT_ID, last_event_id
from agentflow.runtime.run_log import follow, follow_stored
from agentflow.runtime.schemas import RunRequest, RunRules, parse_run_request
from agentflow.runtime.state import AppRuntime, request_id

CLEANUP_TRIES = 100
# What a request leaves behind to do: a stateless run's thread to delete, a run to cancel.
_TASKS: set[asyncio.Task[None]] = set()


def _spawn(work: Coroutine[Any, Any, None]) -> None:
    task = asyncio.ensure_future(work)
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


def _headers(record: RunRecord, then: str, *, stateless: bool = False) -> dict[str, str]:
    """Where the run is (`Content-Location`: langgraph-sdk's `on_run_created` reads it) and
    where to follow it (`Location`). A stateless stream names the run alone, as LangGraph
    does (its thread is not the client's)."""
    path = (
        f"/runs/{record.run_id}"
        if stateless
        else f"/threads/{record.thread_id}/runs/{record.run_id}"
    )
    return {"Content-Location": path, "Location": f"{path}/{then}"}


def _modes(body: RunBody) -> tuple[str, ...]:
    modes = [body.stream_mode] if isinstance(body.stream_mode, str) else body.stream_mode
    return tuple(dict.fromkeys(modes)) or ("values",)


def _run_request(rt: AppRuntime, body: RunBody, name: str, thread_id: str) -> RunRequest:
    """The run service's request for a LangGraph client's run on the graph `name`."""
    graph = rt.graphs[name]
    modes = _modes(body)
    configurable = dict((body.config or {}).get("configurable") or {})
    limit = (body.config or {}).get("recursion_limit")
    if isinstance(graph, CompiledGraph):  # agentflow's input: messages, state fields, resume
        if body.interrupt_before or body.interrupt_after:  # the graph's kind, not the body
            raise ApiError(
                409, "not_supported",
                f"{name!r} is an agentflow graph: it pauses where it was compiled to "
                "(StateGraph.compile(interrupt_before=...)), not per run",
            )  # fmt: skip
        data = dict(body.input) if isinstance(body.input, dict) else {}
        try:
            messages = [from_lc_message(m) for m in data.pop("messages", None) or []]
        except ValueError as exc:
            loc = ["body", "input", "messages"]
            raise validation_error([{"loc": loc, "msg": str(exc)}]) from None
        fields: dict[str, Any] = {"messages": messages, "metadata": body.metadata or {}}
        fields |= {"state": data} if data else {}
        fields |= {"config": {"recursion_limit": limit}} if limit is not None else {}
        if body.command is not None and "resume" in body.command:
            fields["resume"] = body.command["resume"]
        try:
            decoded = msgspec.convert(fields, RunRequestBody)
        except msgspec.ValidationError as exc:
            raise validation_error([{"loc": ["body", "input"], "msg": str(exc)}]) from None
        try:
            request = parse_run_request(
                decoded, RunRules.of(rt.settings, graph), thread_id=thread_id
            )
        except ApiError as exc:  # its places are in `input` (messages, state fields)
            details = [
                {**d, "loc": ["body", "input", *d["loc"][1 + (d["loc"][1] == "state") :]]}
                for d in exc.details or ()
            ]
            raise validation_error(details) from None
    else:
        checkpoint_id = body.checkpoint_id or (body.checkpoint or {}).get("checkpoint_id")
        request = RunRequest(thread_id=thread_id, metadata=body.metadata or {})
        request.recursion_limit = int(limit) if isinstance(limit, int) else None
        request.langgraph = {
            "input": body.input, "command": body.command, "configurable": configurable,
            "checkpoint_id": checkpoint_id, "subgraphs": body.stream_subgraphs,
            "metadata": body.metadata or {},
            "interrupt_before": _nodes(body.interrupt_before),
            "interrupt_after": _nodes(body.interrupt_after),
        }  # fmt: skip
    request.graph, request.protocol, request.stream_mode = name, "langgraph", modes
    return request


def _nodes(value: Any) -> list[str] | None:
    """interrupt_before/after: "*" (every node) or node names."""
    return [value] if isinstance(value, str) else value


async def _submit(call: Call[RunBody, Any], thread_id: str | None) -> RunRecord:
    """Store the run (creating a stateless run's thread, or the thread `if_not_exists`
    allows) and start it, or queue it as `multitask_strategy` says."""
    rt, body = call.rt, call.body
    name, _ = graph_named(rt, body.assistant_id)
    graph_meta = {"graph_id": name, "assistant_id": assistant_id(name)}
    if thread_id is None:
        thread_id = str(uuid.uuid4())
        await rt.checkpointer.create_thread(thread_id, call.user_id, metadata=graph_meta)
    else:
        info = await rt.checkpointer.get_thread(thread_id)
        if info is None and body.if_not_exists != "create":
            raise ApiError(
                404, "thread_not_found",
                "thread not found; create it first, or send if_not_exists=\"create\"",
            )  # fmt: skip
        if info is None:
            await rt.checkpointer.create_thread(thread_id, call.user_id, metadata=graph_meta)
        else:
            require_owner(info.user_id, call.user_id)
            if info.metadata.get("graph_id") != name:
                await rt.checkpointer.update_thread_metadata(thread_id, graph_meta)
    request = _run_request(rt, body, name, thread_id)
    return await rt.background.submit(
        request, user_id=call.user_id, request_id=request_id(call.request),
        strategy=body.multitask_strategy, run_id=str(uuid.uuid4()),
    )  # fmt: skip


async def _cleanup(rt: AppRuntime, record: RunRecord, body: RunBody, stateless: bool) -> None:
    """A stateless run's thread is deleted once the run ends, unless on_completion=keep."""
    if not stateless or body.on_completion == "keep":
        return
    info = await rt.checkpointer.get_thread(record.thread_id)
    for _ in range(CLEANUP_TRIES):  # the run lets the thread go right after its record ends
        if info is None or info.thread_id not in rt.runs.active:
            break
        await asyncio.sleep(0.05)
    if info is not None:
        with contextlib.suppress(ApiError):
            await delete_thread(rt, info)


async def _frames(rt: AppRuntime, record: RunRecord, after: int) -> AsyncIterator[bytes]:
    heartbeat = rt.settings.heartbeat_interval
    log = rt.runs.logs.get(record.run_id) or await rt.background.wait_for_log(record)
    if log is not None:
        return follow(log, after, heartbeat)
    if rt.runs.shared is not None:
        return follow_stored(rt.runs.shared, record.thread_id, record.run_id, after, heartbeat)
    raise ApiError(
        404, "stream_expired",
        "this run's events are no longer kept (RUN_STREAM_RETENTION); GET the run for its "
        "result",
    )  # fmt: skip


async def _stream(call: Call[RunBody, Any], thread_id: str | None) -> Response:
    rt, body = call.rt, call.body
    record = await _submit(call, thread_id)
    frames = await _frames(rt, record, 0)

    async def watched() -> AsyncIterator[bytes]:
        try:
            async for frame in frames:
                yield frame
            await _settled(rt, record)
        finally:
            if thread_id is None:
                _spawn(_end_stateless(rt, record, body))

    async def cancel() -> None:  # on_disconnect="cancel": the client left, the run stops
        with contextlib.suppress(ApiError):
            current = await rt.checkpointer.get_run(record.run_id)
            await rt.background.cancel(current or record)

    headers = _headers(record, "stream", stateless=thread_id is None)
    leaving = (lambda: _spawn(cancel())) if body.on_disconnect == "cancel" else None
    return EventStreamResponse(watched(), headers=headers, on_disconnect=leaving)


async def _settled(rt: AppRuntime, record: RunRecord) -> None:
    """Until the run's record is final: a stream ends only then, so a client that asks
    for the run right after (langgraph-sdk does, to tell an end from a cut) finds it over."""
    with contextlib.suppress(ApiError):
        await rt.background.join(record)


async def _end_stateless(rt: AppRuntime, record: RunRecord, body: RunBody) -> None:
    with contextlib.suppress(Exception):
        await rt.background.join(record)
    await _cleanup(rt, record, body, True)


async def _values(rt: AppRuntime, record: RunRecord) -> Any:
    """The run's outcome as LangGraph's join answers it: the thread's values."""
    result = await rt.background.join(record)
    return result.get("values", result)


async def _wait(call: Call[RunBody, Any], thread_id: str | None) -> Response:
    record = await _submit(call, thread_id)
    try:
        values = await _values(call.rt, record)
    finally:
        await _cleanup(call.rt, record, call.body, thread_id is None)
    return ApiJSONResponse(values, headers=_headers(record, "join"))


async def _create(call: Call[RunBody, Any], thread_id: str | None) -> Response:
    record = await _submit(call, thread_id)
    if thread_id is None:
        _spawn(_end_stateless(call.rt, record, call.body))
    accepted = run_view(record) | {"status": "pending"}  # as submitted, like LangGraph's
    return ApiJSONResponse(accepted, headers=_headers(record, "join"))


async def stream(call: Call[RunBody, None]) -> Response:
    return await _stream(call, call.path["thread_id"])


async def stream_stateless(call: Call[RunBody, None]) -> Response:
    return await _stream(call, None)


async def wait(call: Call[RunBody, None]) -> Response:
    return await _wait(call, call.path["thread_id"])


async def wait_stateless(call: Call[RunBody, None]) -> Response:
    return await _wait(call, None)


async def create(call: Call[RunBody, None]) -> Response:
    return await _create(call, call.path["thread_id"])


async def create_stateless(call: Call[RunBody, None]) -> Response:
    return await _create(call, None)


async def _record(call: Call[Any, Any]) -> RunRecord:
    return await call.rt.background.get(
        call.path["thread_id"], call.path["run_id"], call.user_id, protocol="langgraph"
    )


async def list_runs(call: Call[None, LangGraphRunListQuery]) -> list[dict[str, Any]]:
    rt, query, thread_id = call.rt, call.query, call.path["thread_id"]
    info = await rt.checkpointer.get_thread(thread_id)
    if info is None:
        raise not_found("thread")
    require_owner(info.user_id, call.user_id)
    records = await rt.checkpointer.list_runs(thread_id, limit=query.offset + query.limit)
    mine = (r for r in records if r.user_id == call.user_id and run_protocol(r) == "langgraph")
    views = [run_view(r) for r in mine]
    if query.status is not None:
        views = [v for v in views if v["status"] == query.status]
    return views[query.offset : query.offset + query.limit]


async def get_run(call: Call[None, None]) -> dict[str, Any]:
    return run_view(await _record(call))


async def join(call: Call[None, None]) -> Any:
    return await _values(call.rt, await _record(call))


async def join_stream(call: Call[None, JoinStreamQuery]) -> Response:
    record = await _record(call)
    after = last_event_id(call.request.headers.get(LAST_EVENT_ID))
    frames = await _frames(call.rt, record, after)

    async def settled() -> AsyncIterator[bytes]:
        async for frame in frames:
            yield frame
        await _settled(call.rt, record)

    return EventStreamResponse(settled(), headers=_headers(record, "stream"))


async def cancel(call: Call[None, CancelQuery]) -> Response:
    rt = call.rt
    record = await rt.background.cancel(await _record(call))
    if not call.query.wait:
        return ApiJSONResponse(None, status_code=202)
    await _settled(rt, record)  # then what LangGraph answers: what streamed after (nothing)
    return ApiJSONResponse({}, status_code=202)
