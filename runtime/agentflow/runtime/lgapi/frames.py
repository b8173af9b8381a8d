"""A run's stream as the LangGraph API sends it: `metadata` first ({run_id, attempt}), then
one event per part in the stream modes asked for (`values`, `updates`, `messages` for
messages-tuple, `custom`, `events`; `mode|ns` for a subgraph's part), `error` when it fails;
no `end` event (the stream ends once the run's record is final).

A served LangGraph graph's parts arrive ready (`chunk.data["lg"]`); an agentflow graph's
events are translated: its state in LangChain's message shape, a token delta as an
`AIMessageChunk` tuple, its interrupt as LangGraph's `__interrupt__`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from agentflow.graph.compiled import RunResult
from agentflow.graph.state import AgentState, state_values
from agentflow.graph.stream import StreamChunk, StreamEvent
from agentflow.runtime.lgapi.convert import jsonable, to_lc_message

__all__ = ["MODE_EVENTS", "error_frame", "events_for", "frames_sink", "lg_values", "result_values"]

Append = Callable[[str, Any], object]
# LangGraph stream modes -> the agentflow events that make them
MODE_EVENTS: dict[str, frozenset[StreamEvent]] = {
    "values": frozenset({StreamEvent.VALUES}),
    "updates": frozenset({StreamEvent.UPDATES}),
    "messages-tuple": frozenset({StreamEvent.DELTA, StreamEvent.MESSAGE}),
    "custom": frozenset({StreamEvent.CUSTOM}),
    # LangChain's callback events; an agentflow graph's node and token events in their form
    "events": frozenset({StreamEvent.TRACE, StreamEvent.NODE_START, StreamEvent.NODE_END,
                         StreamEvent.DELTA}),
}  # fmt: skip
ALWAYS = frozenset({StreamEvent.METADATA, StreamEvent.INTERRUPT, StreamEvent.END})


def events_for(modes: Sequence[str]) -> frozenset[StreamEvent]:
    """The agentflow events a LangGraph stream in these modes is made of."""
    return ALWAYS.union(*(MODE_EVENTS[mode] for mode in modes if mode in MODE_EVENTS))


def lg_values(state: AgentState) -> dict[str, Any]:
    """An agentflow graph's state as LangGraph values: `messages` and the other fields."""
    values = jsonable(state_values(state))
    return {"messages": [to_lc_message(m) for m in state.context], **values}


def result_values(result: RunResult) -> dict[str, Any]:
    """What a finished run left in its thread, as LangGraph values (with `__interrupt__`
    when it paused)."""
    if result.values is not None:
        return result.values
    values = lg_values(result.state)
    if result.interrupt is not None:
        interrupt = {"value": jsonable(result.interrupt.value), "id": result.run_id}
        values["__interrupt__"] = [interrupt]
    return values


def frames_sink(append: Append, modes: Sequence[str]) -> Callable[[StreamChunk], None]:
    """Writes each chunk of a run as the LangGraph API's events, through `append`."""
    wanted = set(modes)
    streamed: set[str] = set()  # ids of messages whose tokens went out
    last_values: dict[str, Any] = {}  # an agentflow graph's, for its interrupt's `values`

    def lg_event(mode: str, data: dict[str, Any]) -> str:
        ns = data.get("ns") or []
        return "|".join([mode, *ns]) if ns else mode

    def put(chunk: StreamChunk) -> None:
        event, data = chunk.event, chunk.data
        native = "lg" in data  # a LangGraph graph's part
        if event == StreamEvent.METADATA:
            append("metadata", {"run_id": chunk.run_id, "attempt": 1})
        elif event == StreamEvent.VALUES and "values" in wanted:
            payload = data["lg"] if native else lg_values(chunk.state)
            if not native:
                last_values.clear()
                last_values.update(payload)
            append(lg_event("values", data), payload)
        elif event == StreamEvent.UPDATES and "updates" in wanted:
            if native:
                append(lg_event("updates", data), data["lg"])
            else:
                update = {"messages": [to_lc_message(m) for m in data["messages"]]}
                append("updates", {chunk.node or "": update | jsonable(data["fields"])})
        elif event == StreamEvent.TRACE and "events" in wanted:
            append("events", data["lg"])
        elif event in (StreamEvent.NODE_START, StreamEvent.NODE_END) and "events" in wanted:
            append("events", _chain_event(chunk))
        elif event == StreamEvent.DELTA and not native and "events" in wanted:
            append("events", _chain_event(chunk))
            if "messages-tuple" in wanted:
                streamed.add(str(data.get("message_id")))
                append("messages", [_delta_chunk(chunk), _message_meta(chunk)])
        elif event == StreamEvent.DELTA and "messages-tuple" in wanted:
            if native:
                append(lg_event("messages", data), data["lg"])
            else:
                streamed.add(str(data.get("message_id")))
                append("messages", [_delta_chunk(chunk), _message_meta(chunk)])
        elif event == StreamEvent.MESSAGE and "messages-tuple" in wanted:
            message = chunk.message
            if native or message is None or message.id in streamed:
                return
            append("messages", [to_lc_message(message), _message_meta(chunk)])
        elif event == StreamEvent.CUSTOM and "custom" in wanted:
            append(lg_event("custom", data), data.get("lg"))
        elif event == StreamEvent.INTERRUPT and not native:  # LangGraph streams its own
            interrupts = [_interrupt(chunk)]
            if "updates" in wanted:
                append("updates", {"__interrupt__": interrupts})
            if "values" in wanted:
                append("values", {**last_values, "__interrupt__": interrupts})

    return put


def _chain_event(chunk: StreamChunk) -> dict[str, Any]:
    """An agentflow graph's node or token event as a LangChain callback event."""
    kind = {StreamEvent.NODE_START: "on_chain_start", StreamEvent.NODE_END: "on_chain_end",
            StreamEvent.DELTA: "on_chat_model_stream"}[chunk.event]  # fmt: skip
    data = {"chunk": _delta_chunk(chunk)} if chunk.event == StreamEvent.DELTA else {}
    return {
        "event": kind,
        "name": chunk.node,
        "run_id": chunk.run_id,
        "tags": [],
        "metadata": _message_meta(chunk),
        "data": data,
        "parent_ids": [],
    }


def error_frame(code: str, message: str) -> dict[str, Any]:
    return {"error": code, "message": message}


def _interrupt(chunk: StreamChunk) -> dict[str, Any]:
    return {"value": jsonable(chunk.data.get("value")), "id": chunk.run_id}


def _delta_chunk(chunk: StreamChunk) -> dict[str, Any]:
    return {
        "content": chunk.data.get("delta", ""),
        "additional_kwargs": {},
        "response_metadata": {},
        "type": "AIMessageChunk",
        "name": None,
        "id": chunk.data.get("message_id"),
        "tool_calls": [],
        "invalid_tool_calls": [],
        "usage_metadata": None,
        "tool_call_chunks": [],
    }


def _message_meta(chunk: StreamChunk) -> dict[str, Any]:
    return {
        "langgraph_node": chunk.node,
        "thread_id": chunk.thread_id,
        "run_id": chunk.run_id,
    }
