"""Encoding what the server sends: JSON bodies and Server-Sent Events frames for run streams.

Text a graph produces may hold lone UTF-16 surrogates (a model's reply cut inside an emoji's
escape pair). They have no UTF-8 form, so such a value is written with ASCII escapes
instead (still valid JSON, the same string for the client): a stream or a body is never cut
by the text in it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import msgspec
from starlette.responses import JSONResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from agentflow.graph.compiled import RunResult
from agentflow.graph.state import state_values
from agentflow.graph.stream import StreamChunk, StreamEvent

HEARTBEAT = b": heartbeat\n\n"

_EVENT_NAMES = {
    StreamEvent.METADATA: "metadata",
    StreamEvent.MESSAGE: "message",
    StreamEvent.DELTA: "delta",
    StreamEvent.NODE_START: "node",
    StreamEvent.NODE_END: "node",
    StreamEvent.STATE: "state",
    StreamEvent.INTERRUPT: "interrupt",
    StreamEvent.ERROR: "error",
    StreamEvent.END: "end",
    StreamEvent.UPDATES: "updates",
    StreamEvent.VALUES: "values",
    StreamEvent.CUSTOM: "custom",
    StreamEvent.TRACE: "trace",
}


class EventStreamResponse(StreamingResponse):
    """An SSE response that writes its frames and nothing else: no task listening for the
    client to leave (Starlette's response starts one per stream on ASGI servers before spec
    2.4). A run outlives its client by design, so a stream whose client left ends with its
    run; the server drops what is written to a closed connection."""

    media_type = "text/event-stream"
    # No caching, and no buffering by a proxy (nginx): each frame goes out as it is written.
    HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

    def __init__(
        self,
        content: Any,
        headers: dict[str, str] | None = None,
        *,
        on_disconnect: Callable[[], object] | None = None,
    ) -> None:
        super().__init__(content, headers=self.HEADERS | (headers or {}))
        # Called if the client leaves before the stream ends (a run that is to be cancelled
        # then listens for it; others do not).
        self.on_disconnect = on_disconnect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.on_disconnect is None:
            await self.stream_response(send)
            return
        listener = asyncio.create_task(self._listen(receive, self.on_disconnect))
        try:
            await self.stream_response(send)
        finally:
            listener.cancel()

    @staticmethod
    async def _listen(receive: Receive, on_disconnect: Callable[[], object]) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        on_disconnect()


_ENCODER = msgspec.json.Encoder(enc_hook=str)  # a value JSON has no form for: its str()


def json_bytes(data: Any) -> bytes:
    """Compact UTF-8 JSON of plain data or api_types; ASCII escapes for a value holding a
    lone surrogate."""
    try:
        return _ENCODER.encode(data)
    except UnicodeEncodeError:
        plain = msgspec.to_builtins(data, enc_hook=str)
        return json.dumps(plain, separators=(",", ":"), default=str).encode()


class ApiJSONResponse(JSONResponse):
    """A JSON response that any text a graph produced can be written in."""

    def render(self, content: Any) -> bytes:
        return json_bytes(content)


def sse_frame(event: str, data: Any, event_id: int | str | None = None) -> bytes:
    """One SSE event. JSON never contains a raw newline, so `data` is a single line."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: ".encode() + json_bytes(data) + b"\n\n"


def chunk_payload(chunk: StreamChunk) -> tuple[str, dict[str, Any]]:
    """The SSE event name and JSON payload for a graph stream chunk."""
    name = _EVENT_NAMES[chunk.event]
    data: dict[str, Any] = {"thread_id": chunk.thread_id, "run_id": chunk.run_id}
    if chunk.event in (StreamEvent.NODE_START, StreamEvent.NODE_END):
        data["node"] = chunk.node
        data["status"] = "start" if chunk.event == StreamEvent.NODE_START else "end"
        data.update(chunk.data)
    elif chunk.event == StreamEvent.MESSAGE:
        assert chunk.message is not None
        data["node"] = chunk.node
        data["message"] = chunk.message.to_dict()
    elif chunk.event == StreamEvent.STATE:
        data["values"] = state_values(chunk.state) if chunk.state is not None else {}
    elif chunk.event == StreamEvent.UPDATES:
        data["node"] = chunk.node
        update = {"messages": [m.to_dict() for m in chunk.data["messages"]]}
        data["update"] = update | dict(chunk.data["fields"])
    elif chunk.event == StreamEvent.VALUES:
        data["values"] = state_values(chunk.state)
        data["messages"] = [m.to_dict() for m in chunk.state.context]
    else:
        if chunk.node is not None:
            data["node"] = chunk.node
        data.update(chunk.data)
        if chunk.event == StreamEvent.METADATA:
            data["stream_url"] = stream_path(chunk.thread_id, chunk.run_id)
    return name, data


def run_path(thread_id: str, run_id: str) -> str:
    """A run as a resource (GET it; .../join, .../stream, .../cancel)."""
    return f"/v1/threads/{thread_id}/runs/{run_id}"


def stream_path(thread_id: str, run_id: str) -> str:
    """Where a client reconnects to a run's stream (with Last-Event-ID), on any worker."""
    return run_path(thread_id, run_id) + "/stream"


def run_body(result: RunResult, input_count: int) -> dict[str, Any]:
    """The JSON response of a finished (or paused) run: what it added after its input."""
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
