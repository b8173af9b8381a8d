"""Stream events a run produces, and the hook nodes use to emit token deltas."""

from __future__ import annotations

import asyncio
import contextvars
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentflow.graph.messages import Message


class StreamEvent(str, enum.Enum):
    METADATA = "metadata"
    NODE_START = "node_start"
    NODE_END = "node_end"
    MESSAGE = "message"
    DELTA = "delta"
    STATE = "state"
    INTERRUPT = "interrupt"
    ERROR = "error"
    END = "end"
    # Only when asked for by name (`events=`): what each node returned, the state after it.
    UPDATES = "updates"
    VALUES = "values"
    # Served LangGraph graphs only: what nodes write to the stream writer, and LangChain's
    # callback events of the run (the LangGraph API's `custom` and `events` modes).
    CUSTOM = "custom"
    TRACE = "trace"


OPT_IN = frozenset({StreamEvent.UPDATES, StreamEvent.VALUES, StreamEvent.CUSTOM, StreamEvent.TRACE})


@dataclass(slots=True)
class StreamChunk:
    """One event of a run, as yielded by `CompiledGraph.astream`."""

    event: StreamEvent
    thread_id: str
    run_id: str
    node: str | None = None
    message: Message | None = None
    state: Any = None
    data: dict[str, Any] = field(default_factory=dict)
    timestamp: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "event": self.event.value,
            "thread_id": self.thread_id,
            "run_id": self.run_id,
            "timestamp": self.timestamp,
        }
        if self.node is not None:
            out["node"] = self.node
        if self.message is not None:
            out["message"] = self.message.to_dict()
        if self.event == StreamEvent.STATE and self.state is not None:
            from agentflow.graph.state import state_values

            out["values"] = state_values(self.state)
        if self.data:
            out["data"] = self.data
        return out


Emitter = Callable[[StreamChunk], None]


@dataclass(slots=True)
class Listener:
    emit: Emitter
    loop: asyncio.AbstractEventLoop
    thread_id: str
    run_id: str
    node: str


_listener: contextvars.ContextVar[Listener | None] = contextvars.ContextVar(
    "agentflow_stream_listener", default=None
)


def streaming_requested() -> bool:
    """True inside a node of a run whose caller consumes a stream (so models should stream)."""
    return _listener.get() is not None


def emit_delta(text: str, *, message_id: str, data: dict[str, Any] | None = None) -> None:
    """Send a token delta to the stream consumer of the current run; a no-op without one.

    Safe to call from a sync node running in a worker thread.
    """
    listener = _listener.get()
    if listener is None or not text:
        return
    chunk = StreamChunk(
        event=StreamEvent.DELTA,
        thread_id=listener.thread_id,
        run_id=listener.run_id,
        node=listener.node,
        data={"delta": text, "message_id": message_id, **(data or {})},
    )
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is listener.loop:
        listener.emit(chunk)
    else:
        listener.loop.call_soon_threadsafe(listener.emit, chunk)


def set_listener(listener: Listener | None) -> contextvars.Token[Listener | None]:
    return _listener.set(listener)


def reset_listener(token: contextvars.Token[Listener | None]) -> None:
    _listener.reset(token)
