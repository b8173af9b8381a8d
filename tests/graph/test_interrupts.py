"""interrupt(), resuming with an answer, and interrupt_before / interrupt_after."""

import itertools
from typing import Any

import pytest

from agentflow.checkpointer import Checkpointer, InMemoryCheckpointer
from agentflow.graph import (
    START,
    AgentState,
    Command,
    CompiledGraph,
    Interrupt,
    InvalidInputError,
    Message,
    StateGraph,
    interrupt,
)


def texts(state: AgentState) -> list[str]:
    return [m.text for m in state.context]


def user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def chain(
    *nodes: tuple[str, Any], checkpointer: Checkpointer | None, **kwargs: Any
) -> CompiledGraph:
    g = StateGraph()
    for name, fn in nodes:
        g.add_node(name, fn)
    g.add_edge(START, nodes[0][0])
    for (a, _), (b, _) in itertools.pairwise(nodes):
        g.add_edge(a, b)
    return g.compile(checkpointer, **kwargs)


@pytest.mark.parametrize("kind", ["async", "sync"])
@pytest.mark.parametrize("how", ["dict", "command"])
async def test_interrupt_pauses_and_resume_continues_the_same_node(
    checkpointer: Checkpointer, kind: str, how: str
) -> None:
    calls: list[str] = []

    def sync_approve(state: AgentState) -> Message:
        calls.append("approve")
        answer = interrupt({"question": "send the email?"})
        return Message.assistant(f"answer was {answer}")

    async def async_approve(state: AgentState) -> Message:
        return sync_approve(state)

    app = chain(
        ("draft", lambda s: Message.assistant("draft")),
        ("approve", sync_approve if kind == "sync" else async_approve),
        ("send", lambda s: Message.assistant("sent")),
        checkpointer=checkpointer,
    )
    cfg = {"thread_id": f"hitl-{kind}-{how}"}
    paused = await app.ainvoke(user("email bob"), cfg)
    assert paused.status == "interrupted"
    assert isinstance(paused.interrupt, Interrupt)
    assert paused.interrupt.value == {"question": "send the email?"}
    assert paused.interrupt.node == "approve"
    assert paused.next == ["approve"]
    assert texts(paused.state) == ["email bob", "draft"]

    snapshot = await app.aget_snapshot(cfg)
    assert snapshot is not None
    assert snapshot.status == "interrupted"
    assert snapshot.next == ["approve"]
    assert snapshot.interrupt is not None
    assert snapshot.interrupt.value == {"question": "send the email?"}

    resume: Any = {"resume": "yes"} if how == "dict" else Command(resume="yes")
    done = await app.ainvoke(resume, cfg)
    assert done.status == "done"
    assert done.interrupt is None
    assert texts(done.state) == ["email bob", "draft", "answer was yes", "sent"]
    assert [m.text for m in done.messages] == ["answer was yes", "sent"]
    assert calls == ["approve", "approve"]  # the node runs again from its start

    snapshot = await app.aget_snapshot(cfg)
    assert snapshot is not None
    assert (snapshot.status, snapshot.next, snapshot.interrupt) == ("done", [], None)


async def test_two_interrupts_in_one_node_are_answered_in_order(
    checkpointer: Checkpointer,
) -> None:
    def form(state: AgentState) -> Message:
        name = interrupt("name?")
        age = interrupt("age?")
        return Message.assistant(f"{name} is {age}")

    app = chain(("form", form), checkpointer=checkpointer)
    cfg = {"thread_id": "form"}
    first = await app.ainvoke(user("sign me up"), cfg)
    assert (first.status, first.interrupt and first.interrupt.value) == ("interrupted", "name?")
    second = await app.ainvoke({"resume": "Ada"}, cfg)
    assert (second.status, second.interrupt and second.interrupt.value) == ("interrupted", "age?")
    third = await app.ainvoke({"resume": 36}, cfg)
    assert third.status == "done"
    assert texts(third.state) == ["sign me up", "Ada is 36"]


async def test_resume_value_can_be_any_json_value(checkpointer: Checkpointer) -> None:
    got: list[Any] = []

    def node(state: AgentState) -> None:
        got.append(interrupt("?"))

    app = chain(("node", node), checkpointer=checkpointer)
    await app.ainvoke(user("x"), {"thread_id": "j"})
    await app.ainvoke({"resume": {"ok": True, "items": [1, 2]}}, {"thread_id": "j"})
    assert got == [{"ok": True, "items": [1, 2]}]


async def test_interrupt_cannot_be_swallowed_by_except_exception(
    checkpointer: Checkpointer,
) -> None:
    def careless(state: AgentState) -> Message:
        try:
            answer = interrupt("continue?")
        except Exception:  # a node's own error handling must not eat the pause
            answer = "swallowed"
        return Message.assistant(str(answer))

    app = chain(("careless", careless), checkpointer=checkpointer)
    result = await app.ainvoke(user("x"), {"thread_id": "c"})
    assert result.status == "interrupted"
    result = await app.ainvoke({"resume": "go"}, {"thread_id": "c"})
    assert texts(result.state) == ["x", "go"]


@pytest.mark.parametrize("resume", [{"resume": "x"}, Command(resume="x")], ids=["dict", "command"])
async def test_resume_without_pending_interrupt_is_invalid_input(
    checkpointer: Checkpointer, resume: Any
) -> None:
    calls: list[int] = []
    app = chain(("node", lambda s: calls.append(1)), checkpointer=checkpointer)
    with pytest.raises(InvalidInputError, match="resume"):
        await app.ainvoke(resume, {"thread_id": "fresh"})
    await app.ainvoke(user("hi"), {"thread_id": "finished"})
    with pytest.raises(InvalidInputError, match="resume"):
        await app.ainvoke(resume, {"thread_id": "finished"})
    assert calls == [1]


async def test_resume_without_checkpointer_is_invalid_input() -> None:
    app = chain(("node", lambda s: interrupt("?")), checkpointer=None)
    paused = await app.ainvoke(user("x"), {"thread_id": "t"})
    assert paused.status == "interrupted"
    with pytest.raises(InvalidInputError):
        await app.ainvoke({"resume": 1}, {"thread_id": "t"})


async def test_interrupt_before_pauses_before_the_node(checkpointer: Checkpointer) -> None:
    calls: list[str] = []

    def node(name: str) -> Any:
        def fn(state: AgentState) -> Message:
            calls.append(name)
            return Message.assistant(name)

        return fn

    app = chain(
        ("plan", node("plan")),
        ("act", node("act")),
        ("report", node("report")),
        checkpointer=checkpointer,
        interrupt_before=["act"],
    )
    cfg = {"thread_id": "before"}
    paused = await app.ainvoke(user("go"), cfg)
    assert paused.status == "interrupted"
    assert calls == ["plan"]
    assert paused.next == ["act"]
    assert paused.interrupt is not None
    assert (paused.interrupt.node, paused.interrupt.when) == ("act", "before")
    assert texts(paused.state) == ["go", "plan"]

    snapshot = await app.aget_snapshot(cfg)
    assert snapshot is not None
    assert (snapshot.status, snapshot.next) == ("interrupted", ["act"])

    done = await app.ainvoke(None, cfg)
    assert done.status == "done"
    assert calls == ["plan", "act", "report"]
    assert texts(done.state) == ["go", "plan", "act", "report"]


async def test_interrupt_before_the_entry_node(checkpointer: Checkpointer) -> None:
    calls: list[int] = []
    app = chain(
        ("only", lambda s: calls.append(1)), checkpointer=checkpointer, interrupt_before=["only"]
    )
    paused = await app.ainvoke(user("x"), {"thread_id": "e"})
    assert (paused.status, paused.next, calls) == ("interrupted", ["only"], [])
    done = await app.ainvoke({"resume": None}, {"thread_id": "e"})
    assert (done.status, calls) == ("done", [1])


async def test_interrupt_after_pauses_after_the_node(checkpointer: Checkpointer) -> None:
    calls: list[str] = []

    def node(name: str) -> Any:
        def fn(state: AgentState) -> Message:
            calls.append(name)
            return Message.assistant(name)

        return fn

    app = chain(
        ("plan", node("plan")),
        ("act", node("act")),
        checkpointer=checkpointer,
        interrupt_after=["plan"],
    )
    cfg = {"thread_id": "after"}
    paused = await app.ainvoke(user("go"), cfg)
    assert paused.status == "interrupted"
    assert calls == ["plan"]
    assert paused.next == ["act"]
    assert paused.interrupt is not None
    assert (paused.interrupt.node, paused.interrupt.when) == ("plan", "after")
    assert texts(paused.state) == ["go", "plan"]
    assert [m.text for m in paused.messages] == ["go", "plan"]

    done = await app.ainvoke(None, cfg)
    assert done.status == "done"
    assert calls == ["plan", "act"]
    assert texts(done.state) == ["go", "plan", "act"]


async def test_interrupt_before_pauses_on_every_visit_of_a_looping_node(
    checkpointer: Checkpointer,
) -> None:
    visits: list[int] = []

    def work(state: AgentState) -> None:
        visits.append(1)

    g = StateGraph()
    g.add_node("work", work)
    g.set_entry_point("work")
    g.add_conditional_edges("work", lambda s: "work" if len(visits) < 3 else "__end__")
    app = g.compile(checkpointer, interrupt_before=["work"])
    cfg = {"thread_id": "loop"}
    statuses = [(await app.ainvoke(user("go"), cfg)).status]
    while statuses[-1] == "interrupted":
        statuses.append((await app.ainvoke(None, cfg)).status)
        assert len(statuses) < 10
    # paused before visits 1, 2 and 3, then done
    assert statuses == ["interrupted"] * 3 + ["done"]
    assert len(visits) == 3


async def test_new_messages_on_a_paused_thread_start_a_fresh_run(
    checkpointer: Checkpointer,
) -> None:
    calls: list[str] = []
    answers: list[Any] = []

    def intake(state: AgentState) -> Message:
        calls.append("intake")
        return Message.assistant(f"intake {len(state.context)}")

    def confirm(state: AgentState) -> None:
        calls.append("confirm")
        answers.append(interrupt("confirm?"))

    app = chain(("intake", intake), ("confirm", confirm), checkpointer=checkpointer)
    cfg = {"thread_id": "restart"}
    first = await app.ainvoke(user("one"), cfg)
    assert first.status == "interrupted"

    second = await app.ainvoke(user("two"), cfg)
    assert second.status == "interrupted"
    assert calls == ["intake", "confirm", "intake", "confirm"]
    assert answers == []
    # the conversation continues: the new run sees the earlier messages
    assert texts(second.state) == ["one", "intake 1", "two", "intake 3"]
    assert [m.text for m in second.messages] == ["two", "intake 3"]

    third = await app.ainvoke({"resume": "ok"}, cfg)
    assert third.status == "done"
    assert answers == ["ok"]


async def test_interrupt_value_survives_a_new_checkpointer_instance(tmp_path: Any) -> None:
    """With SQLite, a pending interrupt can be answered by another process/instance."""
    from agentflow.checkpointer import SqliteCheckpointer

    def ask(state: AgentState) -> Message:
        return Message.assistant(f"got {interrupt({'need': 'token'})}")

    g = StateGraph()
    g.add_node("ask", ask)
    g.set_entry_point("ask")
    graph = g.compile()
    path = tmp_path / "hitl.db"
    async with SqliteCheckpointer(path) as cp:
        paused = await graph.with_checkpointer(cp).ainvoke(user("x"), {"thread_id": "p"})
        assert paused.status == "interrupted"
    async with SqliteCheckpointer(path) as cp:
        app = graph.with_checkpointer(cp)
        snapshot = await app.aget_snapshot({"thread_id": "p"})
        assert snapshot is not None and snapshot.interrupt is not None
        assert snapshot.interrupt.value == {"need": "token"}
        done = await app.ainvoke({"resume": "abc"}, {"thread_id": "p"})
    assert texts(done.state) == ["x", "got abc"]


async def test_memory_checkpointer_is_per_instance() -> None:
    g = StateGraph()
    g.add_node("ask", lambda s: interrupt("?"))
    g.set_entry_point("ask")
    graph = g.compile()
    paused = await graph.with_checkpointer(InMemoryCheckpointer()).ainvoke(
        user("x"), {"thread_id": "m"}
    )
    assert paused.status == "interrupted"
    with pytest.raises(InvalidInputError):
        await graph.with_checkpointer(InMemoryCheckpointer()).ainvoke(
            {"resume": 1}, {"thread_id": "m"}
        )
