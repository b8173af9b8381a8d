"""LangGraphSaver: real LangGraph StateGraphs compiled with the saver, on SQLite and on the
real Postgres (a fresh schema per test, dropped afterwards), plus LangGraph's own
checkpointer conformance suite (langgraph-checkpoint-conformance)."""

from __future__ import annotations

import asyncio
import functools
import itertools
import operator
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypedDict, TypeVar

import asyncpg
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from agentflow.checkpointer import (
    CheckpointerError,
    InMemoryCheckpointer,
    LangGraphSaver,
    SqliteCheckpointer,
    open_checkpointer,
)

from .conftest import PG_DSN, drop_schema, pg_spec, require_postgres

LIMIT = 60.0  # seconds any one test may take
F = TypeVar("F", bound=Callable[..., Awaitable[None]])


def bounded(test: F) -> F:
    """The test fails, instead of hanging, when it runs longer than LIMIT."""

    @functools.wraps(test)
    async def run(*args: Any, **kwargs: Any) -> None:
        await asyncio.wait_for(test(*args, **kwargs), LIMIT)

    return run  # type: ignore[return-value]


@pytest.fixture(params=["sqlite", "postgres"])
async def store_spec(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:{tmp_path / 'state.db'}"
        return
    require_postgres()
    spec = pg_spec(tmp_path)
    yield spec
    await drop_schema(spec)


@pytest.fixture
async def saver(store_spec: str) -> AsyncIterator[LangGraphSaver]:
    store = open_checkpointer(store_spec)
    saver = LangGraphSaver.for_store(store)
    await saver.setup()
    try:
        yield saver
    finally:
        await store.close()


def thread(thread_id: str, **configurable: Any) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, **configurable}}


class Notes(TypedDict):
    notes: Annotated[list[str], operator.add]


def echo_graph(saver: LangGraphSaver) -> Any:
    """START -> echo -> END; echo appends "seen:<last note>"."""

    def echo(state: Notes) -> dict[str, Any]:
        return {"notes": [f"seen:{state['notes'][-1]}"]}

    builder = StateGraph(Notes)
    builder.add_node("echo", echo)
    builder.add_edge(START, "echo")
    builder.add_edge("echo", END)
    return builder.compile(checkpointer=saver)


@bounded
async def test_state_carries_over_turns_per_thread(saver: LangGraphSaver) -> None:
    graph = echo_graph(saver)
    await graph.ainvoke({"notes": ["a"]}, thread("t1"))
    await graph.ainvoke({"notes": ["x"]}, thread("t2"))
    second = await graph.ainvoke({"notes": ["b"]}, thread("t1"))
    assert second["notes"] == ["a", "seen:a", "b", "seen:b"]
    state = await graph.aget_state(thread("t2"))
    assert state.values["notes"] == ["x", "seen:x"]
    assert state.next == ()


@bounded
async def test_state_survives_reopening_the_store(store_spec: str) -> None:
    for turn in ("a", "b"):
        store = open_checkpointer(store_spec)
        saver = LangGraphSaver.for_store(store)
        await saver.setup()
        try:
            await echo_graph(saver).ainvoke({"notes": [turn]}, thread("t"))
        finally:
            await store.close()
    store = open_checkpointer(store_spec)
    try:
        state = await echo_graph(LangGraphSaver.for_store(store)).aget_state(thread("t"))
        assert state.values["notes"] == ["a", "seen:a", "b", "seen:b"]
    finally:
        await store.close()


class Approval(TypedDict):
    request: str
    answer: str


def approval_graph(saver: LangGraphSaver) -> Any:
    def ask(state: Approval) -> dict[str, Any]:
        answer = interrupt({"question": f"approve {state['request']}?"})
        return {"answer": f"{state['request']}: {answer}"}

    builder = StateGraph(Approval)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    return builder.compile(checkpointer=saver)


@bounded
async def test_interrupt_then_resume_with_command(saver: LangGraphSaver) -> None:
    graph = approval_graph(saver)
    paused = await graph.ainvoke({"request": "deploy"}, thread("t"))
    assert [i.value for i in paused["__interrupt__"]] == [{"question": "approve deploy?"}]
    state = await graph.aget_state(thread("t"))
    assert state.next == ("ask",)
    assert [i.value for i in state.interrupts] == [{"question": "approve deploy?"}]
    # a saver that lost the interrupt write would run the graph again from the start
    done = await graph.ainvoke(Command(resume="yes"), thread("t"))
    assert done == {"request": "deploy", "answer": "deploy: yes"}
    assert (await graph.aget_state(thread("t"))).next == ()


class Fanout(TypedDict):
    results: Annotated[list[str], operator.add]


@bounded
async def test_pending_writes_of_a_failed_parallel_step_are_kept_not_rerun(
    saver: LangGraphSaver,
) -> None:
    calls = {"steady": 0, "flaky": 0}
    steady_done = threading.Event()  # flaky fails only after steady's write is in

    def steady(state: Fanout) -> dict[str, Any]:
        calls["steady"] += 1
        steady_done.set()
        return {"results": ["steady"]}

    def flaky(state: Fanout) -> dict[str, Any]:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            steady_done.wait(5)
            time.sleep(0.05)  # steady's return is handed back to the step
            raise RuntimeError("flaky failed once")
        return {"results": ["flaky"]}

    builder = StateGraph(Fanout)
    builder.add_node("steady", steady)
    builder.add_node("flaky", flaky)
    builder.add_edge(START, "steady")
    builder.add_edge(START, "flaky")
    builder.add_edge("steady", END)
    builder.add_edge("flaky", END)
    graph = builder.compile(checkpointer=saver)

    with pytest.raises(RuntimeError, match="flaky failed once"):
        await graph.ainvoke({"results": []}, thread("t"))
    stored = await saver.aget_tuple(thread("t", checkpoint_ns=""))
    assert stored is not None and stored.pending_writes is not None
    assert ("results", ["steady"]) in [(c, v) for _, c, v in stored.pending_writes]
    assert any(c == "__error__" for _, c, _ in stored.pending_writes)

    resumed = await graph.ainvoke(None, thread("t"))
    assert sorted(resumed["results"]) == ["flaky", "steady"]
    assert calls == {"steady": 1, "flaky": 2}


@bounded
async def test_history_is_newest_first_with_limit_and_before(saver: LangGraphSaver) -> None:
    graph = echo_graph(saver)
    for note in ("a", "b", "c"):
        await graph.ainvoke({"notes": [note]}, thread("t"))
    history = [s async for s in graph.aget_state_history(thread("t"))]
    steps = [s.metadata["step"] for s in history]
    assert steps == sorted(steps, reverse=True) and len(steps) == 9  # 3 turns x (-1|n, n+1)
    ids = [s.config["configurable"]["checkpoint_id"] for s in history]
    assert ids == sorted(ids, reverse=True)
    assert history[0].values["notes"][-1] == "seen:c"
    for newer, older in itertools.pairwise(history):  # each names its parent
        assert newer.parent_config is not None
        assert (
            newer.parent_config["configurable"]["checkpoint_id"]
            == (older.config["configurable"]["checkpoint_id"])
        )

    limited = [s async for s in graph.aget_state_history(thread("t"), limit=2)]
    assert [s.config for s in limited] == [s.config for s in history[:2]]
    before = [s async for s in graph.aget_state_history(thread("t"), before=history[3].config)]
    assert [s.config for s in before] == [s.config for s in history[4:]]
    inputs = [t async for t in saver.alist(thread("t"), filter={"source": "input"})]
    assert [t.metadata["step"] for t in inputs] == [5, 2, -1]
    assert all(t.metadata["source"] == "input" for t in inputs)


@bounded
async def test_time_travel_from_an_earlier_checkpoint_forks(saver: LangGraphSaver) -> None:
    graph = echo_graph(saver)
    await graph.ainvoke({"notes": ["a"]}, thread("t"))
    after_first = (await graph.aget_state(thread("t"))).config
    await graph.ainvoke({"notes": ["b"]}, thread("t"))

    forked = await graph.ainvoke({"notes": ["z"]}, after_first)
    assert forked["notes"] == ["a", "seen:a", "z", "seen:z"]
    latest = await graph.aget_state(thread("t"))
    assert latest.values["notes"] == ["a", "seen:a", "z", "seen:z"]
    # the abandoned branch is still there, and the checkpoint travelled to has two
    # children: the input of "b" and the input of "z"
    history = [s async for s in graph.aget_state_history(thread("t"))]
    assert any(s.values.get("notes") == ["a", "seen:a", "b", "seen:b"] for s in history)
    origin = after_first["configurable"]["checkpoint_id"]
    children = [
        s
        for s in history
        if s.parent_config and s.parent_config["configurable"]["checkpoint_id"] == origin
    ]
    assert [c.metadata["source"] for c in children] == ["input", "input"]
    grandchildren = {
        tuple(s.values["notes"])
        for s in history
        for c in children
        if s.parent_config and s.parent_config["configurable"] == c.config["configurable"]
    }
    assert grandchildren == {("a", "seen:a", "b"), ("a", "seen:a", "z")}
    # replaying the old branch's state by id still reads it as it was
    old = await graph.aget_state(after_first)
    assert old.values["notes"] == ["a", "seen:a"]


def nested_graph(saver: LangGraphSaver) -> Any:
    def ask(state: Approval) -> dict[str, Any]:
        return {"answer": str(interrupt("inner question"))}

    inner = StateGraph(Approval)
    inner.add_node("ask", ask)
    inner.add_edge(START, "ask")
    inner.add_edge("ask", END)

    outer = StateGraph(Approval)
    outer.add_node("inner", inner.compile())
    outer.add_edge(START, "inner")
    outer.add_edge("inner", END)
    return outer.compile(checkpointer=saver)


@bounded
async def test_subgraph_state_lives_in_its_checkpoint_ns(saver: LangGraphSaver) -> None:
    graph = nested_graph(saver)
    await graph.ainvoke({"request": "r"}, thread("t"))
    state = await graph.aget_state(thread("t"), subgraphs=True)
    assert state.next == ("inner",)
    (task,) = state.tasks
    assert task.state is not None and not isinstance(task.state, dict)
    sub = task.state
    ns = sub.config["configurable"]["checkpoint_ns"]
    assert ns.startswith("inner:")
    assert sub.values == {"request": "r"} and sub.next == ("ask",)
    stored_ns = {t.config["configurable"]["checkpoint_ns"] async for t in saver.alist(thread("t"))}
    assert stored_ns == {"", ns}
    in_ns = [t async for t in saver.alist(thread("t", checkpoint_ns=ns))]
    assert in_ns and all(t.config["configurable"]["checkpoint_ns"] == ns for t in in_ns)

    done = await graph.ainvoke(Command(resume="inner answer"), thread("t"))
    assert done == {"request": "r", "answer": "inner answer"}


@bounded
async def test_delete_thread_removes_only_that_thread(saver: LangGraphSaver) -> None:
    graph = nested_graph(saver)
    await graph.ainvoke({"request": "r"}, thread("gone"))
    await graph.ainvoke({"request": "r"}, thread("kept"))
    await saver.adelete_thread("gone")
    assert [t async for t in saver.alist(thread("gone"))] == []
    assert (await graph.aget_state(thread("gone"))).values == {}
    assert (await graph.aget_state(thread("kept"))).next == ("inner",)
    await asyncio.to_thread(saver.delete_thread, "kept")
    assert await saver.aget_tuple(thread("kept")) is None


@bounded
async def test_sync_graph_api_from_a_worker_thread(saver: LangGraphSaver) -> None:
    graph = approval_graph(saver)

    def drive() -> tuple[Any, Any, int]:
        graph.invoke({"request": "deploy"}, thread("t"))
        assert graph.get_state(thread("t")).next == ("ask",)
        done = graph.invoke(Command(resume="ok"), thread("t"))
        history = list(graph.get_state_history(thread("t")))
        return done, graph.get_state(thread("t")).values, len(history)

    done, values, checkpoints = await asyncio.to_thread(drive)
    assert done == values == {"request": "deploy", "answer": "deploy: ok"}
    assert checkpoints == 3  # input, before ask (interrupted), after ask
    # what the sync API wrote, the async API reads
    assert (await graph.aget_state(thread("t"))).values == values


@bounded
async def test_sync_call_on_the_event_loop_thread_is_refused_on_postgres(
    tmp_path: Path,
) -> None:
    require_postgres()
    spec = pg_spec(tmp_path)
    store = open_checkpointer(spec)
    try:
        saver = LangGraphSaver.for_store(store)
        await saver.setup()
        with pytest.raises(CheckpointerError, match=r"asyncio\.to_thread"):
            saver.get_tuple(thread("t"))
    finally:
        await store.close()
        await drop_schema(spec)


def test_sync_calls_before_setup_say_what_to_do(tmp_path: Path) -> None:
    saver = LangGraphSaver.for_store(SqliteCheckpointer(tmp_path / "s.db"))
    with pytest.raises(CheckpointerError, match=r"setup\(\)"):
        saver.get_tuple(thread("t"))


def test_for_store_refuses_a_store_without_tables() -> None:
    with pytest.raises(CheckpointerError, match="SqliteCheckpointer or a PgCheckpointer"):
        LangGraphSaver.for_store(InMemoryCheckpointer())


def test_without_langgraph_the_error_names_the_extra(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['langgraph'] = None\n"  # as if the extra were not installed
        "import agentflow.checkpointer\n"  # the rest of agentflow loads without it
        "for load in (lambda: agentflow.checkpointer.LangGraphSaver,\n"
        "             lambda: __import__('agentflow.checkpointer.langgraph')):\n"
        "    try:\n"
        "        load()\n"
        "    except ImportError as exc:\n"
        "        print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
        check=True,
    )
    lines = out.stdout.splitlines()
    assert len(lines) == 2
    assert all('pip install "agentflow-runner[langgraph]"' in line for line in lines)


@bounded
async def test_values_are_stored_once_per_channel_version(
    saver: LangGraphSaver, store_spec: str
) -> None:
    graph = echo_graph(saver)
    for note in ("a", "b"):
        await graph.ainvoke({"notes": [note]}, thread("t"))
    checkpoints = len([t async for t in saver.alist(thread("t"))])
    if store_spec.startswith("sqlite"):
        store = saver.tables.store
        assert isinstance(store, SqliteCheckpointer)
        blobs = await store.call(lambda c: c.execute("SELECT count(*) FROM lg_blobs").fetchone()[0])
    else:
        schema = store_spec.split("agentflow_schema=", 1)[1]
        conn = await asyncpg.connect(PG_DSN)
        try:
            blobs = await conn.fetchval(f'SELECT count(*) FROM "{schema}".lg_blobs')
        finally:
            await conn.close()
    # notes changes at 4 of the 6 checkpoints (input, echo, input, echo), plus the
    # branch channels; never one copy of every value per checkpoint
    assert checkpoints == 6
    assert 0 < blobs < checkpoints * 2


@bounded
async def test_langgraph_conformance_suite(store_spec: str, tmp_path: Path) -> None:
    schemas: list[str] = []

    async def fresh_saver() -> AsyncIterator[LangGraphSaver]:
        # a fresh file or schema for each capability suite
        if store_spec.startswith("sqlite"):
            store: Any = SqliteCheckpointer(tmp_path / f"conformance-{len(schemas)}.db")
            schemas.append("")
        else:
            spec = f"{store_spec}_{len(schemas)}"
            schemas.append(spec)
            store = open_checkpointer(spec)
        saver = LangGraphSaver.for_store(store)
        await saver.setup()
        try:
            yield saver
        finally:
            await store.close()

    name = f"LangGraphSaver[{store_spec.split(':')[0]}]"
    try:
        report = await validate(checkpointer_test(name=name)(fresh_saver))
    finally:
        for spec in schemas:
            if spec:
                await drop_schema(spec)
    failures = {cap: r.failures for cap, r in report.results.items() if r.failures}
    assert failures == {}
    assert report.passed_all_base(), report.to_dict()
