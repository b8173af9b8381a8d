"""Runs as resources across workers: two `agentflow api` processes on one Postgres schema
with Redis, over real HTTP. Start on one and join on the other; reconnect to a stream on the
other worker with no gap and no duplicate; cancel from the other worker; each multitask
strategy across workers; SIGKILL the worker mid-run and see the other finish it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.faults import conftest
from tests.faults.conftest import Cluster, Server, deadline_loop, new_thread
from tests.runtime.conftest import sse

# Two steps: `one` answers at once (or streams the words after "stream "), `two` sleeps
# as long as "sleep N" says, then answers: a crash during `two` leaves `one` done.
GRAPH = """
import asyncio
from agentflow.graph import END, START, Message, StateGraph, emit_delta

def asked(state):
    return next(m.text for m in reversed(state.context) if m.role == "user")

async def one(state):
    text = asked(state)
    if text.startswith("stream "):
        reply = Message.assistant(text[len("stream "):])
        for word in reply.text.split():
            emit_delta(word + " ", message_id=reply.id)
            await asyncio.sleep(0.05)
        return reply
    return Message.assistant("one: " + text)

async def two(state):
    text = asked(state)
    if text.startswith("sleep "):
        await asyncio.sleep(float(text.split()[1]))
    return Message.assistant("two: " + text)

graph = StateGraph()
graph.add_node("one", one)
graph.add_node("two", two)
graph.add_edge(START, "one")
graph.add_edge("one", "two")
graph.add_edge("two", END)
app = graph.compile()
"""


@pytest.fixture
def pair(
    cluster: Cluster, shared_redis: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Server, Server]]:
    monkeypatch.setattr(conftest, "GRAPH", GRAPH)
    a, b = cluster.start(2, redis_url=shared_redis)
    yield a, b


def runs(thread: str) -> str:
    return f"/v1/threads/{thread}/runs"


def start(server: Server, thread: str, text: str, **extra: Any) -> dict[str, Any]:
    body = {"messages": [{"role": "user", "content": text}], **extra}
    response = server.request("POST", runs(thread), json=body)
    assert response.status_code == 202, response.text
    run: dict[str, Any] = response.json()
    return run


def run_of(server: Server, thread: str, run_id: str) -> dict[str, Any]:
    response = server.request("GET", f"{runs(thread)}/{run_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_status(server: Server, thread: str, run_id: str, *statuses: str) -> dict[str, Any]:
    run: dict[str, Any] = {}
    for _ in deadline_loop(20):
        run = run_of(server, thread, run_id)
        if run["status"] in statuses:
            return run
    raise AssertionError(f"run {run_id} is {run.get('status')}, not {statuses}: {run}")


def texts(server: Server, thread: str) -> list[str]:
    return [m["content"] for m in server.messages(thread)]


def wait_stored(server: Server, thread: str, text: str) -> None:
    """Until the thread holds a message `text` (the thread exists from its first step)."""
    for _ in deadline_loop(10):
        response = server.request("GET", f"/v1/threads/{thread}/messages")
        if response.status_code == 200 and text in [
            m["content"] for m in response.json()["messages"]
        ]:
            return
    raise AssertionError(f"{text!r} was never stored on thread {thread}")


def test_start_on_one_worker_and_join_on_the_other(pair: tuple[Server, Server]) -> None:
    a, b = pair
    thread = new_thread()
    run = start(a, thread, "sleep 1")
    assert run_of(b, thread, run["run_id"])["status"] == "running"
    joined = b.request("GET", f"{runs(thread)}/{run['run_id']}/join", timeout=20)
    assert joined.status_code == 200, joined.text
    assert [m["content"] for m in joined.json()["messages"]] == ["one: sleep 1", "two: sleep 1"]
    assert run_of(a, thread, run["run_id"])["status"] == "success"


def test_a_stream_continues_on_the_other_worker_with_no_gap_or_duplicate(
    pair: tuple[Server, Server],
) -> None:
    a, b = pair
    thread = new_thread()
    words = " ".join(f"w{i}" for i in range(20))
    body = {"messages": [{"role": "user", "content": "stream " + words}], "thread_id": thread}
    first: list[str] = []
    with httpx.stream("POST", a.url + "/v1/graph/stream", json=body, timeout=20) as response:
        lines = response.iter_lines()
        while len([line for line in first if line.startswith("data: ")]) < 5:
            first.append(next(lines))
    received = sse("\n".join(first) + "\n\n")
    url = received[0][2]["stream_url"]
    rest = sse(b.request("GET", url, headers={"Last-Event-ID": "5"}, timeout=20).text)
    whole = sse(b.request("GET", url, timeout=20).text)
    assert [i for i, _, _ in whole] == list(range(1, len(whole) + 1))
    assert received + rest == whole
    assert [e for _, e, _ in whole].count("delta") == 20 and whole[-1][1] == "end"


def test_cancel_from_the_other_worker(pair: tuple[Server, Server]) -> None:
    a, b = pair
    thread = new_thread()
    run = start(a, thread, "sleep 10")
    wait_status(b, thread, run["run_id"], "running")
    cancelled = b.request("POST", f"{runs(thread)}/{run['run_id']}/cancel")
    assert cancelled.status_code == 202, cancelled.text
    assert wait_status(b, thread, run["run_id"], "cancelled")["ended_at"] is not None
    joined = b.request("GET", f"{runs(thread)}/{run['run_id']}/join")
    assert joined.status_code == 409 and joined.json()["error"]["code"] == "run_cancelled"


@pytest.mark.parametrize(
    ("strategy", "first_status", "kept"),
    [("enqueue", "success", ["one: sleep 1", "two: sleep 1"]), ("interrupt", "cancelled",
     ["one: sleep 1"]), ("rollback", "cancelled", [])],
)  # fmt: skip
def test_multitask_strategies_across_workers(
    pair: tuple[Server, Server], strategy: str, first_status: str, kept: list[str]
) -> None:
    a, b = pair
    thread = new_thread()
    first = start(a, thread, "sleep 1")
    wait_stored(b, thread, "one: sleep 1")  # `one` is done: `two` is sleeping
    refused = b.request("POST", runs(thread), json={"messages": []})
    assert refused.status_code == 409, refused.text
    second = start(b, thread, "next", multitask_strategy=strategy)
    assert second["status"] == "pending"
    assert wait_status(a, thread, second["run_id"], "success")
    assert run_of(a, thread, first["run_id"])["status"] == first_status
    inputs = ["sleep 1"] if kept or strategy == "interrupt" else []
    assert texts(a, thread) == [*inputs, *kept, "next", "one: next", "two: next"]


def test_a_killed_workers_run_is_finished_by_the_other(pair: tuple[Server, Server]) -> None:
    a, b = pair
    thread = new_thread()
    run = start(a, thread, "sleep 2")
    wait_stored(b, thread, "one: sleep 2")  # `two` runs on A
    a.kill()
    started = time.monotonic()
    joined = b.request("GET", f"{runs(thread)}/{run['run_id']}/join", timeout=30)
    assert joined.status_code == 200, joined.text + b.output()
    assert time.monotonic() - started < conftest.LEASE_TTL + 2 + 3  # lease, sweep, the rest
    assert texts(b, thread) == ["sleep 2", "one: sleep 2", "two: sleep 2"]  # `one` ran once
    assert run_of(b, thread, run["run_id"])["status"] == "success"
    assert "took over run" in b.output()
    events = sse(b.request("GET", f"{runs(thread)}/{run['run_id']}/stream").text)
    ids = [i for i, _, _ in events]
    assert ids == sorted(set(ids)) and events[-1][1] == "end"
