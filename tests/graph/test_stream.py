"""astream: the events a run yields, token deltas, errors and early exit."""

import asyncio
import contextlib
import itertools
import threading
from typing import Any

import pytest

from agentflow.checkpointer import InMemoryCheckpointer
from agentflow.graph import (
    START,
    AgentState,
    CompiledGraph,
    GraphRecursionError,
    Message,
    NodeError,
    StateGraph,
    StreamChunk,
    StreamEvent,
    Usage,
    emit_delta,
    interrupt,
    streaming_requested,
)

E = StreamEvent
HI = {"messages": [{"role": "user", "content": "hi"}]}


def chain(*nodes: tuple[str, Any], **compile_kwargs: Any) -> CompiledGraph:
    g = StateGraph()
    for name, fn in nodes:
        g.add_node(name, fn)
    g.add_edge(START, nodes[0][0])
    for (a, _), (b, _) in itertools.pairwise(nodes):
        g.add_edge(a, b)
    return g.compile(**compile_kwargs)


async def collect(app: CompiledGraph, input: Any, config: Any = None) -> list[StreamChunk]:
    return [chunk async for chunk in app.astream(input, config)]


def kinds(chunks: list[StreamChunk]) -> list[tuple[StreamEvent, str | None]]:
    return [(c.event, c.node) for c in chunks]


async def test_event_order_for_a_two_node_run() -> None:
    app = chain(
        ("a", lambda s: Message.assistant("from a")),
        ("b", lambda s: [Message.assistant("b1"), Message.assistant("b2")]),
    )
    chunks = await collect(app, HI, {"thread_id": "t", "run_id": "r"})
    assert kinds(chunks) == [
        (E.METADATA, None),
        (E.NODE_START, "a"),
        (E.MESSAGE, "a"),
        (E.NODE_END, "a"),
        (E.NODE_START, "b"),
        (E.MESSAGE, "b"),
        (E.MESSAGE, "b"),
        (E.NODE_END, "b"),
        (E.STATE, None),
        (E.END, None),
    ]
    assert {(c.thread_id, c.run_id) for c in chunks} == {("t", "r")}
    assert chunks[0].data == {"thread_id": "t", "run_id": "r"}
    assert [c.message.text for c in chunks if c.message is not None] == ["from a", "b1", "b2"]
    assert [c.timestamp for c in chunks] == sorted(c.timestamp for c in chunks)


async def test_stream_state_and_end_chunks() -> None:
    def node(state: AgentState) -> Message:
        return Message.assistant("x", usage=Usage(7, 3))

    chunks = await collect(chain(("a", node)), HI)
    state_chunk, end = chunks[-2], chunks[-1]
    assert state_chunk.event is E.STATE
    assert [m.text for m in state_chunk.state.context] == ["hi", "x"]
    assert end.event is E.END
    assert end.data["status"] == "done"
    assert end.data["usage"] == {
        "prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10,
        "by_model": {"unknown": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}},
    }  # fmt: skip


async def test_node_end_reports_duration_ms() -> None:
    async def slow(state: AgentState) -> None:
        await asyncio.sleep(0.05)

    chunks = await collect(chain(("fast", lambda s: None), ("slow", slow)), HI)
    ends = {c.node: c.data["duration_ms"] for c in chunks if c.event is E.NODE_END}
    assert set(ends) == {"fast", "slow"}
    assert all(isinstance(v, float) and v >= 0 for v in ends.values())
    assert ends["slow"] >= 40


async def test_input_messages_are_not_streamed_as_message_events() -> None:
    chunks = await collect(chain(("a", lambda s: None)), HI)
    assert [c for c in chunks if c.event is E.MESSAGE] == []


async def test_chunk_to_dict_is_json_friendly() -> None:
    chunks = await collect(chain(("a", lambda s: Message.assistant("x"))), HI)
    message = next(c for c in chunks if c.event is E.MESSAGE).to_dict()
    assert message["event"] == "message"
    assert message["node"] == "a"
    assert message["message"]["content"] == "x"
    assert "data" not in chunks[1].to_dict()  # NODE_START carries no data


async def test_stream_and_invoke_produce_the_same_result() -> None:
    app = chain(("a", lambda s: Message.assistant("x")), ("b", lambda s: Message.assistant("y")))
    chunks = await collect(app, HI)
    streamed = [m.text for m in chunks[-2].state.context]
    invoked = [m.text for m in (await app.ainvoke(HI)).state.context]
    assert streamed == invoked == ["hi", "x", "y"]


# -- deltas -----------------------------------------------------------------------------------


async def test_emit_delta_from_async_node_streams_between_start_and_end() -> None:
    async def talk(state: AgentState) -> Message:
        msg_id = "m-1"
        for token in ("Hel", "lo", "!"):
            emit_delta(token, message_id=msg_id, data={"kind": "text"})
            await asyncio.sleep(0)
        emit_delta("", message_id=msg_id)  # empty text is ignored
        return Message.assistant("Hello!", id=msg_id)

    chunks = await collect(chain(("talk", talk)), HI)
    assert kinds(chunks)[1:6] == [
        (E.NODE_START, "talk"),
        (E.DELTA, "talk"),
        (E.DELTA, "talk"),
        (E.DELTA, "talk"),
        (E.MESSAGE, "talk"),
    ]
    deltas = [c for c in chunks if c.event is E.DELTA]
    assert "".join(c.data["delta"] for c in deltas) == "Hello!"
    assert {c.data["message_id"] for c in deltas} == {"m-1"}
    assert {c.data["kind"] for c in deltas} == {"text"}


async def test_emit_delta_from_sync_node_in_a_thread() -> None:
    threads: list[int] = []

    def talk(state: AgentState) -> Message:
        threads.append(threading.get_ident())
        for token in ("a", "b", "c"):
            emit_delta(token, message_id="m")
        return Message.assistant("abc")

    chunks = await collect(chain(("talk", talk), ("after", lambda s: None)), HI)
    assert threads[0] != threading.get_ident()
    events = kinds(chunks)
    start = events.index((E.NODE_START, "talk"))
    end = events.index((E.NODE_END, "talk"))
    delta_positions = [i for i, c in enumerate(chunks) if c.event is E.DELTA]
    assert len(delta_positions) == 3
    assert all(start < i < end for i in delta_positions)
    assert "".join(chunks[i].data["delta"] for i in delta_positions) == "abc"


async def test_emit_delta_is_a_no_op_without_a_stream() -> None:
    def talk(state: AgentState) -> Message:
        emit_delta("tok", message_id="m")
        return Message.assistant("tok")

    async def atalk(state: AgentState) -> None:
        emit_delta("tok", message_id="m")

    result = await chain(("talk", talk), ("atalk", atalk)).ainvoke(HI)
    assert [m.text for m in result.state.context] == ["hi", "tok"]
    emit_delta("outside any run", message_id="m")  # must not raise


async def test_streaming_requested_only_under_astream() -> None:
    seen: list[tuple[str, bool]] = []

    def sync_node(state: AgentState) -> None:
        seen.append(("sync", streaming_requested()))

    async def async_node(state: AgentState) -> None:
        seen.append(("async", streaming_requested()))

    app = chain(("s", sync_node), ("a", async_node))
    await collect(app, HI)
    assert seen == [("sync", True), ("async", True)]
    seen.clear()
    await app.ainvoke(HI)
    assert seen == [("sync", False), ("async", False)]
    assert streaming_requested() is False


# -- failures ---------------------------------------------------------------------------------


async def test_failing_node_yields_error_chunk_then_raises_node_error() -> None:
    def boom(state: AgentState) -> None:
        raise ValueError("kaput")

    app = chain(("ok", lambda s: Message.assistant("fine")), ("boom", boom))
    chunks: list[StreamChunk] = []
    with pytest.raises(NodeError, match="'boom'") as info:
        async for chunk in app.astream(HI):
            chunks.append(chunk)
    assert isinstance(info.value.__cause__, ValueError)
    assert str(info.value.__cause__) == "kaput"
    assert kinds(chunks)[-2:] == [(E.NODE_START, "boom"), (E.ERROR, "boom")]
    error = chunks[-1]
    assert error.data["error_class"] == "NodeError"
    assert "kaput" in error.data["message"]
    assert (E.END, None) not in kinds(chunks)


async def test_recursion_error_is_streamed_as_error_chunk() -> None:
    g = StateGraph()
    g.add_node("loop", lambda s: None)
    g.set_entry_point("loop")
    g.add_conditional_edges("loop", lambda s: "loop")
    chunks: list[StreamChunk] = []
    with pytest.raises(GraphRecursionError):
        async for chunk in g.compile().astream(HI, {"recursion_limit": 2}):
            chunks.append(chunk)
    assert chunks[-1].event is E.ERROR
    assert chunks[-1].data["error_class"] == "GraphRecursionError"
    assert [c.node for c in chunks if c.event is E.NODE_END] == ["loop", "loop"]


# -- interrupts -------------------------------------------------------------------------------


async def test_interrupt_is_streamed_then_end() -> None:
    def ask(state: AgentState) -> None:
        interrupt({"question": "ok?"})

    chunks = await collect(chain(("ask", ask)), HI)
    assert kinds(chunks) == [
        (E.METADATA, None),
        (E.NODE_START, "ask"),
        (E.INTERRUPT, "ask"),
        (E.END, None),
    ]
    assert chunks[2].data["value"] == {"question": "ok?"}
    assert chunks[2].data["when"] == "during"
    assert chunks[3].data["status"] == "interrupted"


async def test_interrupt_before_is_streamed_without_running_the_node() -> None:
    calls: list[str] = []
    app = chain(
        ("a", lambda s: calls.append("a")),
        ("b", lambda s: calls.append("b")),
        checkpointer=InMemoryCheckpointer(),
        interrupt_before=["b"],
    )
    chunks = await collect(app, HI, {"thread_id": "t"})
    assert calls == ["a"]
    assert kinds(chunks)[-2:] == [(E.INTERRUPT, "b"), (E.END, None)]
    assert chunks[-2].data["when"] == "before"


# -- leaving early ----------------------------------------------------------------------------


def blocking_graph(state: dict[str, Any]) -> CompiledGraph:
    """a -> b -> c where b blocks until cancelled (the first time only)."""

    async def b(s: AgentState) -> Message:
        state["b_calls"] += 1
        if state["b_calls"] == 1:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                state["cancelled"] = True
                raise
        return Message.assistant("b")

    def c(s: AgentState) -> Message:
        state["c_calls"] += 1
        return Message.assistant("c")

    return chain(
        ("a", lambda s: Message.assistant("a")),
        ("b", b),
        ("c", c),
        checkpointer=InMemoryCheckpointer(),
    )


async def test_leaving_the_stream_early_cancels_the_run() -> None:
    flags: dict[str, Any] = {"b_calls": 0, "c_calls": 0, "cancelled": False}
    app = blocking_graph(flags)
    cfg = {"thread_id": "early"}
    async with contextlib.aclosing(app.astream(HI, cfg)) as stream:
        async for chunk in stream:
            if chunk.event is E.NODE_START and chunk.node == "b":
                break
    assert flags["cancelled"] is True
    assert flags["c_calls"] == 0

    # the completed step is checkpointed; continuing runs b and c
    snapshot = await app.aget_snapshot(cfg)
    assert snapshot is not None
    assert snapshot.next == ["b"]
    assert [m.text for m in snapshot.state.context] == ["hi", "a"]
    result = await app.ainvoke(None, cfg)
    assert result.status == "done"
    assert [m.text for m in result.state.context] == ["hi", "a", "b", "c"]
    assert flags == {"b_calls": 2, "c_calls": 1, "cancelled": True}


async def test_plain_break_out_of_astream_cancels_the_run() -> None:
    flags: dict[str, Any] = {"b_calls": 0, "c_calls": 0, "cancelled": False}
    app = blocking_graph(flags)
    async for chunk in app.astream(HI, {"thread_id": "brk"}):
        if chunk.event is E.NODE_START and chunk.node == "b":
            break
    # the abandoned generator is closed by the event loop soon after
    for _ in range(200):
        if flags["cancelled"]:
            break
        await asyncio.sleep(0.01)
    assert flags["cancelled"] is True
    await asyncio.sleep(0.05)
    assert flags["c_calls"] == 0
