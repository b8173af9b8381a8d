"""Thread state with a checkpointer: continuing conversations, snapshots, history, storage."""

import dataclasses
import operator
from pathlib import Path
from typing import Annotated, Any

import pytest

from agentflow.checkpointer import (
    Checkpointer,
    CheckpointerError,
    InMemoryCheckpointer,
    SqliteCheckpointer,
)
from agentflow.graph import (
    START,
    AgentState,
    CompiledGraph,
    GraphError,
    InvalidInputError,
    Message,
    StateGraph,
    StateSnapshot,
)


class Memo(AgentState):
    turns: Annotated[int, operator.add] = 0
    last_topic: str = ""
    topics: Annotated[list[str], operator.add] = dataclasses.field(default_factory=list)


def texts(state: AgentState) -> list[str]:
    return [m.text for m in state.context]


def user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def echo(state: Memo) -> dict[str, Any]:
    said = state.context[-1].text
    return {
        "messages": [Message.assistant(f"echo {said} ({len(state.context)})")],
        "turns": 1,
        "last_topic": said,
        "topics": [said],
    }


def echo_graph(checkpointer: Checkpointer | None = None) -> CompiledGraph:
    g = StateGraph(Memo)
    g.add_node("echo", echo)
    g.set_entry_point("echo")
    return g.compile(checkpointer)


def three_steps(checkpointer: Checkpointer | None = None) -> CompiledGraph:
    g = StateGraph()
    for name in ("a", "b", "c"):
        g.add_node(name, lambda s, config: Message.assistant(config["node"]))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    return g.compile(checkpointer)


async def test_second_call_continues_the_conversation(checkpointer: Checkpointer) -> None:
    app = echo_graph(checkpointer)
    cfg = {"thread_id": "chat"}
    first = await app.ainvoke(user("hello"), cfg)
    second = await app.ainvoke(user("again"), cfg)
    assert texts(first.state) == ["hello", "echo hello (1)"]
    assert texts(second.state) == ["hello", "echo hello (1)", "again", "echo again (3)"]
    assert [m.text for m in second.messages] == ["again", "echo again (3)"]
    assert second.thread_id == first.thread_id == "chat"
    assert second.run_id != first.run_id


async def test_extra_fields_persist_and_reducers_accumulate_across_runs(
    checkpointer: Checkpointer,
) -> None:
    app = echo_graph(checkpointer)
    cfg = {"thread_id": "fields"}
    for word in ("cats", "dogs", "fish"):
        result = await app.ainvoke(user(word), cfg)
    state = result.state
    assert isinstance(state, Memo)
    assert state.turns == 3
    assert state.last_topic == "fish"
    assert state.topics == ["cats", "dogs", "fish"]


async def test_threads_are_isolated(checkpointer: Checkpointer) -> None:
    app = echo_graph(checkpointer)
    await app.ainvoke(user("for a"), {"thread_id": "a"})
    await app.ainvoke(user("for a again"), {"thread_id": "a"})
    b = await app.ainvoke(user("for b"), {"thread_id": "b"})
    assert texts(b.state) == ["for b", "echo for b (1)"]
    assert b.state.turns == 1


async def test_aget_state_returns_the_state_object(checkpointer: Checkpointer) -> None:
    app = echo_graph(checkpointer)
    cfg = {"thread_id": "s"}
    await app.ainvoke({**user("hello"), "state": {"last_topic": "preset"}}, cfg)
    state = await app.aget_state(cfg)
    assert isinstance(state, Memo)
    assert texts(state) == ["hello", "echo hello (1)"]
    assert all(isinstance(m, Message) for m in state.context)
    assert (state.turns, state.last_topic, state.topics) == (1, "hello", ["hello"])


async def test_aget_state_of_unknown_thread_is_none(checkpointer: Checkpointer) -> None:
    app = echo_graph(checkpointer)
    assert await app.aget_state({"thread_id": "never-used"}) is None
    assert await app.aget_snapshot({"thread_id": "never-used"}) is None


async def test_aget_state_needs_a_checkpointer_and_a_thread_id() -> None:
    with pytest.raises(GraphError, match="checkpointer"):
        await echo_graph().aget_state({"thread_id": "x"})
    with pytest.raises(InvalidInputError, match="thread_id"):
        await echo_graph(InMemoryCheckpointer()).aget_state({})


async def test_snapshot_after_a_finished_run(checkpointer: Checkpointer) -> None:
    app = three_steps(checkpointer)
    cfg = {"thread_id": "snap"}
    result = await app.ainvoke(user("go"), cfg)
    snapshot = await app.aget_snapshot(cfg)
    assert isinstance(snapshot, StateSnapshot)
    assert snapshot.status == "done"
    assert snapshot.next == []
    assert snapshot.interrupt is None
    assert snapshot.thread_id == "snap"
    assert snapshot.run_id == result.run_id
    assert texts(snapshot.state) == ["go", "a", "b", "c"]


async def test_snapshot_of_an_earlier_checkpoint(checkpointer: Checkpointer) -> None:
    app = three_steps(checkpointer)
    cfg = {"thread_id": "old"}
    await app.ainvoke(user("go"), cfg)
    history = await checkpointer.list_history("old", limit=100)
    after_a = next(c for c in history if c.node == "a")
    snapshot = await app.aget_snapshot(cfg, after_a.checkpoint_id)
    assert snapshot is not None
    assert texts(snapshot.state) == ["go", "a"]
    assert snapshot.next == ["b"]
    assert snapshot.status == "running"


async def test_a_checkpoint_is_written_after_every_node_step(checkpointer: Checkpointer) -> None:
    app = three_steps(checkpointer)
    cfg = {"thread_id": "hist"}
    await app.ainvoke(user("one"), cfg)
    history = list(reversed(await checkpointer.list_history("hist", limit=100)))
    assert [(c.source, c.node) for c in history] == [
        ("input", None),
        ("node", "a"),
        ("node", "b"),
        ("node", "c"),
    ]
    assert [c.next for c in history] == [["a"], ["b"], ["c"], []]
    assert [c.status for c in history] == ["running", "running", "running", "done"]
    assert [c.message_count for c in history] == [1, 2, 3, 4]
    assert [c.step for c in history] == sorted({c.step for c in history})

    await app.ainvoke(user("two"), cfg)
    assert len(await checkpointer.list_history("hist", limit=100)) == 8


async def test_only_new_messages_are_stored_so_storage_is_linear(
    checkpointer: Checkpointer,
) -> None:
    app = three_steps(checkpointer)
    cfg = {"thread_id": "linear"}
    for turn in range(50):
        result = await app.ainvoke(user(f"turn {turn}"), cfg)
    stored = await checkpointer.get_messages("linear")
    conversation = result.state.context
    assert len(conversation) == 50 * 4
    assert len(stored) == len(conversation)
    assert [m.id for m in stored] == [m.id for m in conversation]
    assert [m.text for m in stored[-4:]] == ["turn 49", "a", "b", "c"]
    # checkpoints hold the message count, never the messages themselves
    latest = (await checkpointer.list_history("linear", limit=1))[0]
    assert latest.message_count == 200
    assert "context" not in latest.values
    thread = await checkpointer.get_thread("linear")
    assert thread is not None and thread.message_count == 200


async def test_messages_are_stored_with_the_run_user(checkpointer: Checkpointer) -> None:
    app = echo_graph(checkpointer)
    await app.ainvoke(user("mine"), {"thread_id": "owned", "user_id": "alice"})
    thread = await checkpointer.get_thread("owned")
    assert thread is not None
    assert thread.user_id == "alice"
    assert thread.title == "mine"
    page = await checkpointer.list_threads("alice")
    assert [t.thread_id for t in page.items] == ["owned"]


async def test_stored_messages_round_trip_with_content_blocks_and_usage(
    checkpointer: Checkpointer,
) -> None:
    from agentflow.graph import ToolCall, Usage

    def node(state: AgentState) -> list[Message]:
        call = ToolCall(name="lookup", arguments={"q": "x"})
        return [
            Message.assistant("", tool_calls=[call], usage=Usage(5, 1)),
            Message.tool("found", tool_call_id=call.id),
        ]

    g = StateGraph()
    g.add_node("node", node)
    g.set_entry_point("node")
    app = g.compile(checkpointer)
    blocks = [{"type": "text", "text": "see"}, {"type": "image", "url": "u"}]
    result = await app.ainvoke(
        {"messages": [{"role": "user", "content": blocks}]}, {"thread_id": "rt"}
    )
    state = await app.aget_state({"thread_id": "rt"})
    assert state is not None
    assert state.context == result.state.context
    assert state.context[0].content == blocks
    assert state.context[1].tool_calls[0].name == "lookup"
    assert state.context[1].usage == Usage(5, 1)
    assert state.context[2].tool_call_id == state.context[1].tool_calls[0].id


async def test_non_json_state_value_fails_the_run_clearly(checkpointer: Checkpointer) -> None:
    app = echo_graph(checkpointer)
    with pytest.raises(CheckpointerError, match="JSON"):
        await app.ainvoke({**user("x"), "state": {"last_topic": object()}}, {"thread_id": "j"})


async def test_sqlite_state_survives_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "durable.db"
    graph = echo_graph()
    async with SqliteCheckpointer(path) as cp:
        await graph.with_checkpointer(cp).ainvoke(user("before restart"), {"thread_id": "d"})
    async with SqliteCheckpointer(path) as cp:
        result = await graph.with_checkpointer(cp).ainvoke(user("after"), {"thread_id": "d"})
    assert texts(result.state) == [
        "before restart",
        "echo before restart (1)",
        "after",
        "echo after (3)",
    ]
    assert result.state.turns == 2


# -- graph objects ----------------------------------------------------------------------------


async def test_with_checkpointer_returns_a_bound_copy() -> None:
    base = echo_graph()
    cp = InMemoryCheckpointer()
    bound = base.with_checkpointer(cp)
    assert bound is not base
    assert bound.checkpointer is cp
    assert base.checkpointer is None
    await bound.ainvoke(user("hi"), {"thread_id": "w"})
    state = await bound.aget_state({"thread_id": "w"})
    assert state is not None and texts(state) == ["hi", "echo hi (1)"]
    with pytest.raises(GraphError, match="checkpointer"):
        await base.aget_state({"thread_id": "w"})
    unbound = bound.with_checkpointer(None)
    assert unbound.checkpointer is None and bound.checkpointer is cp


async def test_with_checkpointer_can_swap_storage() -> None:
    cp1, cp2 = InMemoryCheckpointer(), InMemoryCheckpointer()
    first = echo_graph(cp1)
    second = first.with_checkpointer(cp2)
    await first.ainvoke(user("one"), {"thread_id": "t"})
    result = await second.ainvoke(user("two"), {"thread_id": "t"})
    assert texts(result.state) == ["two", "echo two (1)"]
    assert first.checkpointer is cp1
    assert len(await cp1.get_messages("t")) == 2
    assert len(await cp2.get_messages("t")) == 2


async def test_two_graphs_do_not_share_state() -> None:
    chat = echo_graph(InMemoryCheckpointer())
    steps = three_steps(InMemoryCheckpointer())
    cfg = {"thread_id": "same-id"}
    await chat.ainvoke(user("for chat"), cfg)
    result = await steps.ainvoke(user("for steps"), cfg)
    assert texts(result.state) == ["for steps", "a", "b", "c"]
    chat_state = await chat.aget_state(cfg)
    assert chat_state is not None and texts(chat_state) == ["for chat", "echo for chat (1)"]


async def test_graphs_from_one_builder_share_only_what_they_are_given() -> None:
    shared = InMemoryCheckpointer()
    one, two = echo_graph(shared), echo_graph(shared)
    await one.ainvoke(user("first"), {"thread_id": "t"})
    result = await two.ainvoke(user("second"), {"thread_id": "t"})
    # same checkpointer and thread: same conversation
    assert texts(result.state)[:2] == ["first", "echo first (1)"]
    # other checkpointer: nothing shared
    fresh = await echo_graph(InMemoryCheckpointer()).ainvoke(user("x"), {"thread_id": "t"})
    assert texts(fresh.state) == ["x", "echo x (1)"]


def test_sync_invoke_with_a_checkpointer_keeps_the_thread() -> None:
    app = echo_graph(InMemoryCheckpointer())
    app.invoke(user("one"), {"thread_id": "sync"})
    result = app.invoke(user("two"), {"thread_id": "sync"})
    assert texts(result.state) == ["one", "echo one (1)", "two", "echo two (3)"]
