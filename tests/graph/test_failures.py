"""Failing nodes, resuming after a failure, and the recursion limit."""

import itertools
import operator
from typing import Annotated, Any

import pytest

from agentflow.checkpointer import Checkpointer
from agentflow.graph import (
    END,
    START,
    AgentState,
    Command,
    CompiledGraph,
    GraphError,
    GraphRecursionError,
    InvalidInputError,
    Message,
    NodeError,
    StateGraph,
)

HI = {"messages": [{"role": "user", "content": "hi"}]}


class Counter(AgentState):
    count: Annotated[int, operator.add] = 0


def texts(state: AgentState) -> list[str]:
    return [m.text for m in state.context]


def chain(*nodes: tuple[str, Any], checkpointer: Checkpointer | None = None) -> CompiledGraph:
    g = StateGraph(Counter)
    for name, fn in nodes:
        g.add_node(name, fn)
    g.add_edge(START, nodes[0][0])
    for (a, _), (b, _) in itertools.pairwise(nodes):
        g.add_edge(a, b)
    return g.compile(checkpointer)


# -- node errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_failing_node_raises_node_error_naming_the_node(kind: str) -> None:
    original = KeyError("missing-key")

    def sync_boom(state: AgentState) -> None:
        raise original

    async def async_boom(state: AgentState) -> None:
        raise original

    app = chain(("fetch", sync_boom if kind == "sync" else async_boom))
    with pytest.raises(NodeError, match=r"'fetch'.*KeyError.*missing-key") as info:
        await app.ainvoke(HI)
    assert info.value.node == "fetch"
    assert info.value.__cause__ is original
    assert info.value.error is original
    assert isinstance(info.value, GraphError)


async def test_nodes_after_a_failure_do_not_run() -> None:
    calls: list[str] = []

    def boom(state: AgentState) -> None:
        calls.append("boom")
        raise RuntimeError("x")

    app = chain(("boom", boom), ("later", lambda s: calls.append("later")))
    with pytest.raises(NodeError):
        await app.ainvoke(HI)
    assert calls == ["boom"]


async def test_failed_run_keeps_last_completed_step_and_resumes_at_failed_node(
    checkpointer: Checkpointer,
) -> None:
    calls: list[str] = []

    def first(state: Counter) -> dict[str, Any]:
        calls.append("first")
        return {"messages": [Message.assistant("first")], "count": 1}

    def flaky(state: Counter) -> dict[str, Any]:
        calls.append("flaky")
        if calls.count("flaky") == 1:
            raise ConnectionError("model unavailable")
        return {"messages": [Message.assistant("flaky ok")], "count": 10}

    def last(state: Counter) -> Message:
        calls.append("last")
        return Message.assistant("last")

    app = chain(("first", first), ("flaky", flaky), ("last", last), checkpointer=checkpointer)
    cfg = {"thread_id": "crash"}
    with pytest.raises(NodeError, match="'flaky'"):
        await app.ainvoke(HI, cfg)

    snapshot = await app.aget_snapshot(cfg)
    assert snapshot is not None
    assert snapshot.status == "error"
    assert snapshot.next == ["flaky"]
    assert texts(snapshot.state) == ["hi", "first"]
    assert snapshot.state.count == 1

    result = await app.ainvoke(None, cfg)
    assert result.status == "done"
    assert calls == ["first", "flaky", "flaky", "last"]
    assert texts(result.state) == ["hi", "first", "flaky ok", "last"]
    assert result.state.count == 11
    assert [m.text for m in result.messages] == ["flaky ok", "last"]
    stored = await checkpointer.get_messages("crash")
    assert [m.text for m in stored] == ["hi", "first", "flaky ok", "last"]


async def test_error_checkpoint_is_recorded_in_history(checkpointer: Checkpointer) -> None:
    def boom(state: AgentState) -> None:
        raise ValueError("bad")

    app = chain(("ok", lambda s: None), ("boom", boom), checkpointer=checkpointer)
    with pytest.raises(NodeError):
        await app.ainvoke(HI, {"thread_id": "h"})
    history = await checkpointer.list_history("h", limit=100)
    assert [(c.source, c.node, c.status) for c in reversed(history)] == [
        ("input", None, "running"),
        ("node", "ok", "running"),
        ("error", "boom", "error"),
    ]


async def test_failed_goto_step_does_not_commit_its_update(checkpointer: Checkpointer) -> None:
    """A step that fails must leave the state as it was before the step: resuming re-runs the
    node, so a committed update would be applied twice (the reducer adds 1 again)."""
    attempts: list[int] = []

    def step(state: Counter) -> Command:
        attempts.append(1)
        target = "nowhere" if len(attempts) == 1 else END
        return Command(goto=target, update={"count": 1})

    app = chain(("step", step), checkpointer=checkpointer)
    cfg = {"thread_id": "goto"}
    with pytest.raises(GraphError, match="'nowhere'"):
        await app.ainvoke(HI, cfg)
    state = await app.aget_state(cfg)
    assert state is not None
    result = await app.ainvoke(None, cfg)
    assert len(attempts) == 2
    # (state after the failed step, state after resuming)
    assert (state.count, result.state.count) == (0, 1)


async def test_bad_update_is_recorded_as_error_and_resumable(checkpointer: Checkpointer) -> None:
    attempts: list[int] = []

    def node(state: Counter) -> dict[str, Any]:
        attempts.append(1)
        return {"bogus": 1} if len(attempts) == 1 else {"count": 1}

    app = chain(("node", node), checkpointer=checkpointer)
    cfg = {"thread_id": "bad-update"}
    with pytest.raises(InvalidInputError):
        await app.ainvoke(HI, cfg)
    snapshot = await app.aget_snapshot(cfg)
    assert snapshot is not None
    assert (snapshot.status, snapshot.next, snapshot.state.count) == ("error", ["node"], 0)
    result = await app.ainvoke(None, cfg)
    assert (result.status, result.state.count) == ("done", 1)


# -- recursion limit --------------------------------------------------------------------------


def looping(calls: list[int], stop_after: int | None = None) -> CompiledGraph:
    def work(state: AgentState) -> None:
        calls.append(1)

    def router(state: AgentState) -> str:
        return "again" if stop_after is None or len(calls) < stop_after else "done"

    g = StateGraph()
    g.add_node("work", work)
    g.set_entry_point("work")
    g.add_conditional_edges("work", router, {"again": "work", "done": END})
    return g.compile()


async def test_default_recursion_limit_is_25() -> None:
    calls: list[int] = []
    with pytest.raises(GraphRecursionError, match="25") as info:
        await looping(calls).ainvoke(HI)
    assert len(calls) == 25
    assert "'work'" in str(info.value)


async def test_recursion_limit_from_config() -> None:
    calls: list[int] = []
    with pytest.raises(GraphRecursionError, match="recursion_limit=4"):
        await looping(calls).ainvoke(HI, {"recursion_limit": 4})
    assert len(calls) == 4


async def test_recursion_limit_from_configurable() -> None:
    calls: list[int] = []
    with pytest.raises(GraphRecursionError, match="3"):
        await looping(calls).ainvoke(HI, {"configurable": {"recursion_limit": 3}})
    assert len(calls) == 3


async def test_run_needing_exactly_the_limit_succeeds() -> None:
    calls: list[int] = []
    result = await looping(calls, stop_after=5).ainvoke(HI, {"recursion_limit": 5})
    assert result.status == "done"
    assert len(calls) == 5
    calls.clear()
    with pytest.raises(GraphRecursionError):
        await looping(calls, stop_after=6).ainvoke(HI, {"recursion_limit": 5})


async def test_recursion_error_is_a_graph_error() -> None:
    assert issubclass(GraphRecursionError, GraphError)
    with pytest.raises(GraphError):
        await looping([]).ainvoke(HI, {"recursion_limit": 1})


@pytest.mark.parametrize("limit", [0, -1, 2.5, "10", True, None, [5]])
async def test_invalid_recursion_limit_is_invalid_input(limit: Any) -> None:
    calls: list[int] = []
    with pytest.raises(InvalidInputError, match="recursion_limit"):
        await looping(calls).ainvoke(HI, {"recursion_limit": limit})
    assert calls == []


async def test_recursion_limit_counts_steps_of_one_call(checkpointer: Checkpointer) -> None:
    """Each call gets its own budget: a thread can run many turns of a 3-step graph with a
    limit of 3."""
    g = StateGraph()
    for name in ("a", "b", "c"):
        g.add_node(name, lambda s: None)
    g.set_entry_point("a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    app = g.compile(checkpointer)
    cfg = {"thread_id": "budget", "recursion_limit": 3}
    for _ in range(3):
        assert (await app.ainvoke(HI, cfg)).status == "done"
