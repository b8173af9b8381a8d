"""A LangGraph run survives its worker's death: two `agentflow api` processes on one Postgres
schema with Redis serve a LangGraph graph through the langgraph-sdk protocol; a run started
on A, A SIGKILLed mid-run, B takes the run over from its last checkpoint (LangGraph resumes
its pending task), driven by the real langgraph-sdk client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.client import SyncLangGraphClient
from langgraph_sdk.schema import StreamPart

from tests.faults.conftest import Cluster, Server, deadline_loop

# `one` answers at once; `two` waits for the marker file GO (30 s at most), then answers.
# Each node appends its process id to a file named after it, before it does anything else:
# the test reads which worker ran which node how many times.
LGGRAPH = """
import asyncio
import os
from pathlib import Path

from langchain_core.messages import AIMessage
from langgraph.graph import END, START, MessagesState, StateGraph

CALLS = Path({calls!r})
GO = Path({go!r})


def called(node: str) -> None:
    with (CALLS / node).open("a") as f:
        f.write(f"{{os.getpid()}}\\n")


def asked(state: MessagesState) -> str:
    return str(state["messages"][0].content)


async def one(state: MessagesState) -> dict:
    called("one")
    return {{"messages": [AIMessage(content="one: " + asked(state))]}}


async def two(state: MessagesState) -> dict:
    called("two")
    for _ in range(300):
        if GO.exists():
            break
        await asyncio.sleep(0.1)
    return {{"messages": [AIMessage(content="two: " + asked(state))]}}


builder = StateGraph(MessagesState)
builder.add_node("one", one)
builder.add_node("two", two)
builder.add_edge(START, "one")
builder.add_edge("one", "two")
builder.add_edge("two", END)
agent = builder.compile()
"""

SDK_TIMEOUT = 30.0  # every client call; join waits for the lease, the sweep and `two`


class Calls:
    """The files the graph's nodes write: which process ran `one` and `two`, and when to let
    `two` finish."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "calls"
        self.dir.mkdir()
        self.go = root / "go"

    def of(self, node: str) -> list[int]:
        path = self.dir / node
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def release(self) -> None:
        self.go.touch()


@pytest.fixture
def calls(tmp_path: Path) -> Calls:
    return Calls(tmp_path)


@pytest.fixture
def pair(cluster: Cluster, shared_redis: str, calls: Calls) -> Iterator[tuple[Server, Server]]:
    cluster.graphs = {"agent": "lggraph:agent"}
    cluster.files = {"lggraph.py": LGGRAPH.format(calls=str(calls.dir), go=str(calls.go))}
    a, b = cluster.start(2, redis_url=shared_redis)
    yield a, b


@pytest.fixture
def clients(
    pair: tuple[Server, Server],
) -> Iterator[tuple[SyncLangGraphClient, SyncLangGraphClient]]:
    """langgraph-sdk's sync client on A and on B."""
    a, b = (get_sync_client(url=s.url, api_key=None, timeout=SDK_TIMEOUT) for s in pair)
    with a, b:
        yield a, b


def say(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def contents(values: dict[str, Any]) -> list[str]:
    return [str(m["content"]) for m in values["messages"]]


def show(parts: list[StreamPart]) -> list[str]:
    """Each event as `id event summary`: its run id, updated node or message texts."""
    shown = []
    for part in parts:
        data = part.data
        if part.event == "values":
            summary: Any = contents(data)
        elif part.event == "updates":
            summary = list(data)
        else:
            summary = data
        shown.append(f"{part.id} {part.event} {summary}")
    return shown


def wait_two_running(b: SyncLangGraphClient, thread: str, a: Server, calls: Calls) -> None:
    """Until B sees `one`'s step stored (the next node is `two`) and `two` is running on A."""
    state: dict[str, Any] = {}
    for _ in deadline_loop(15):
        state = dict(b.threads.get_state(thread))
        if state["next"] == ["two"] and calls.of("two") == [a.proc.pid]:
            return
    raise AssertionError(f"`two` never started on A: state {state}, two ran in {calls.of('two')}")


def check_finished(
    on_b: SyncLangGraphClient, thread: str, run_id: str, a: Server, b: Server, calls: Calls
) -> None:
    """The run succeeded, `one` ran once (on A), `two` on A then on B, and no checkpoint of
    the thread holds the input twice."""
    assert on_b.runs.get(thread, run_id)["status"] == "success"
    assert calls.of("one") == [a.proc.pid]
    assert calls.of("two") == [a.proc.pid, b.proc.pid]
    history = on_b.threads.get_history(thread, limit=100)
    assert history
    for n, state in enumerate(history):  # newest first
        values = state["values"]
        assert isinstance(values, dict), state
        if n == 0:
            assert contents(values) == ["go", "one: go", "two: go"]
        messages = values.get("messages", [])
        ids = [m["id"] for m in messages]
        assert len(ids) == len(set(ids)), state
        assert [m["content"] for m in messages].count("go") <= 1, state
    inputs = [s for s in history if (s["metadata"] or {}).get("source") == "input"]
    assert len(inputs) == 1, [s["metadata"] for s in history]
    assert "took over run" in b.output()


def test_a_killed_workers_langgraph_run_is_finished_by_the_other(
    pair: tuple[Server, Server],
    clients: tuple[SyncLangGraphClient, SyncLangGraphClient],
    calls: Calls,
) -> None:
    a, b = pair
    on_a, on_b = clients
    thread = on_a.threads.create()["thread_id"]
    run = on_a.runs.create(thread, "agent", input=say("go"))
    wait_two_running(on_b, thread, a, calls)
    a.kill()
    calls.release()
    values = on_b.runs.join(thread, run["run_id"])
    assert isinstance(values, dict) and contents(values) == ["go", "one: go", "two: go"], values
    check_finished(on_b, thread, run["run_id"], a, b, calls)


def test_a_stream_from_a_killed_worker_continues_on_the_other(
    pair: tuple[Server, Server],
    clients: tuple[SyncLangGraphClient, SyncLangGraphClient],
    calls: Calls,
) -> None:
    a, b = pair
    on_a, on_b = clients
    thread = on_a.threads.create()["thread_id"]
    first: list[StreamPart] = []
    parts = on_a.runs.stream(thread, "agent", input=say("go"), stream_mode=["values", "updates"])
    for part in parts:
        first.append(part)
        if part.event == "updates" and "one" in part.data:
            break
    assert first[0].event == "metadata", show(first)
    run_id = first[0].data["run_id"]
    wait_two_running(on_b, thread, a, calls)
    a.kill()  # with the client still connected: A never sees it leave
    parts.close()  # type: ignore[attr-defined]  # the SDK's generator
    calls.release()
    last = first[-1].id
    assert last is not None
    rest = list(on_b.runs.join_stream(thread, run_id, last_event_id=last))
    whole = list(on_b.runs.join_stream(thread, run_id))
    ids = [int(part.id or 0) for part in whole]
    assert ids == sorted(set(ids)), ids  # in order, no duplicate
    # A stores its events in batches: those it sent but had not stored died with it. B's
    # attempt is numbered from the next block of ids, so the client, resuming after the last
    # id it saw, gets every event of B's attempt and none under an id it already has.
    seen = {int(part.id or 0) for part in first}
    assert [int(part.id or 0) for part in rest] == [i for i in ids if i > int(last)], show(rest)
    assert not seen & {int(part.id or 0) for part in rest}
    assert rest[0].event == "metadata" and int(rest[0].id or 0) > max(seen), show(rest)
    updates = [next(iter(p.data)) for p in rest if p.event == "updates"]
    assert updates == ["two"], show(rest)
    assert whole[-1].event == "values" and contents(whole[-1].data) == ["go", "one: go", "two: go"]
    check_finished(on_b, thread, run_id, a, b, calls)
