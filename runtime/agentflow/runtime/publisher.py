"""Server-Sent Events framing for run streams."""

from __future__ import annotations

import json
from typing import Any

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
}


def sse_frame(event: str, data: Any, event_id: int | str | None = None) -> bytes:
    """One SSE event. JSON never contains a raw newline, so `data` is a single line."""
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {payload}\n\n".encode()


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
    else:
        if chunk.node is not None:
            data["node"] = chunk.node
        data.update(chunk.data)
    return name, data
