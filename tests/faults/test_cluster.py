"""Several `agentflow api` processes on one Postgres schema: one thread, many servers.

Each server is a real subprocess; runs are coordinated only through Postgres (and Redis when
configured), exactly as between replicas of a deployment.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.faults.conftest import (
    LEASE_TTL,
    Cluster,
    Ledger,
    error_code,
    new_thread,
    texts,
    wait_running,
)

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("with_redis", [False, True], ids=["postgres", "postgres+redis"])
def test_alternating_servers_build_one_history(
    cluster: Cluster, request: pytest.FixtureRequest, with_redis: bool
) -> None:
    redis_url = request.getfixturevalue("shared_redis") if with_redis else None
    a, b = cluster.start(2, redis_url=redis_url)
    thread = new_thread()
    book = Ledger()
    for turn in range(6):
        server = (a, b)[turn % 2]
        book.turn(server, thread, f"turn {turn} via {server.name}")

    from_a, from_b = a.messages(thread), b.messages(thread)
    assert from_a == from_b
    assert len(from_a) == 12
    assert texts(from_a) == book[thread]
    assert len({m["id"] for m in from_a}) == 12

    history_a, history_b = a.history(thread), b.history(thread)
    assert history_a == history_b
    assert [c["step"] for c in history_a] == list(range(12, 0, -1))  # input + node per turn
    assert history_a[0]["message_count"] == 12
    assert history_a[0]["status"] == "done"
    assert a.state(thread) == b.state(thread)


def test_concurrent_invokes_on_one_thread_across_servers(
    cluster: Cluster, background: Callable[..., Any]
) -> None:
    a, b = cluster.start(2)
    thread = new_thread()
    slow = background(a.invoke, thread, "sleep 1")
    wait_running(b, thread)  # the run on A holds the thread and saved its input
    fast = b.invoke(thread, "hello from B")
    slow_response = slow.result(timeout=20)

    assert sorted([slow_response.status_code, fast.status_code]) == [200, 409], (
        slow_response.text,
        fast.text,
    )
    assert slow_response.status_code == 200, slow_response.text
    assert fast.status_code == 409 and error_code(fast) == "thread_busy", fast.text
    assert texts(b.messages(thread)) == [("user", "sleep 1"), ("assistant", "echo: sleep 1")]

    after = b.invoke(thread, "B's own turn")
    assert after.status_code == 200, after.text
    assert texts(a.messages(thread))[2:] == [
        ("user", "B's own turn"),
        ("assistant", "echo: B's own turn"),
    ]
    assert len(a.messages(thread)) == 4


@pytest.mark.parametrize("path", ["pubsub", "lease_flag"])
def test_stop_from_another_server_cancels_the_run(
    cluster: Cluster, background: Callable[..., Any], request: pytest.FixtureRequest, path: str
) -> None:
    if path == "pubsub":
        redis_url: str | None = request.getfixturevalue("shared_redis")
        # Lease renewals (which also poll the stop flag) every 6 s: only pub/sub is this fast.
        env = {"RUN_LEASE_TTL": "30"}
        limit = 3.0
    else:
        redis_url, env = None, {}
        limit = LEASE_TTL + 2.5  # the flag is polled at every renewal (TTL / 5)
    a, b = cluster.start(2, redis_url=redis_url, env=env)
    thread = new_thread()
    running = background(a.invoke, thread, "sleep 10", timeout=20)
    wait_running(b, thread)

    started = time.monotonic()
    stop = b.stop_run(thread)
    response = running.result(timeout=20)
    elapsed = time.monotonic() - started

    outcome = (
        f"stop -> {stop.status_code} {stop.text}; "
        f"the run on A -> {response.status_code} {response.text} after {elapsed:.1f}s"
    )
    assert stop.status_code == 200, outcome
    assert response.status_code == 409, outcome
    assert error_code(response) == "run_cancelled", outcome
    assert elapsed < limit, outcome
    assert stop.json() == {"thread_id": thread, "stopped": True}, outcome
    state = b.state(thread)
    assert state["status"] == "cancelled"
    assert state["next"] == ["respond"]
    assert texts(b.messages(thread)) == [("user", "sleep 10")]

    again = b.invoke(thread, "after the stop")  # the thread is free again, on any server
    assert again.status_code == 200, again.text


def test_a_killed_server_leaves_a_resumable_thread(
    cluster: Cluster, background: Callable[..., Any]
) -> None:
    a, b = cluster.start(2, env={"RUN_LEASE_TTL": "60"})  # only the dead-process check frees it
    thread = new_thread()
    book = Ledger()
    book.turn(a, thread, "before the crash")

    doomed = background(a.invoke, thread, "sleep 2")
    assert wait_running(b, thread)["message_count"] == 3
    time.sleep(0.5)
    a.kill()
    with pytest.raises(httpx.TransportError):
        doomed.result(timeout=10)

    # The restarted process frees the dead one's lease as it starts (same host, its pid is
    # gone): the thread is resumable at once, not after the TTL.
    (restarted,) = cluster.start(1, env={"RUN_LEASE_TTL": "60"}, ports=[a.port])
    assert texts(restarted.messages(thread)) == [*book[thread], ("user", "sleep 2")]
    state = restarted.state(thread)
    assert (state["status"], state["next"], state["message_count"]) == ("running", ["respond"], 3)
    assert "which is gone" in restarted.output()

    resumed = restarted.invoke(thread)
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["status"] == "done"
    assert texts(resumed.json()["messages"]) == [("assistant", "echo: sleep 2")]
    book.record(thread, "sleep 2")
    assert texts(b.messages(thread)) == book[thread]
    assert b.state(thread)["status"] == "done"


def test_two_workers_share_one_thread(cluster: Cluster) -> None:
    (server,) = cluster.start(1, workers=2)
    thread = new_thread()
    book = Ledger()
    with (
        httpx.Client(base_url=server.url, timeout=15) as first,
        httpx.Client(base_url=server.url, timeout=15) as second,
    ):
        for turn in range(20):
            client = (first, second)[turn % 2]
            text = f"turn {turn}"
            body = {"thread_id": thread, "messages": [{"role": "user", "content": text}]}
            response = client.post("/v1/graph/invoke", json=body)
            assert response.status_code == 200, f"turn {turn}: {response.text}"
            book.record(thread, text)
    assert texts(server.messages(thread)) == book[thread]
    history = server.history(thread)
    assert [c["step"] for c in history] == list(range(40, 0, -1))

    metrics = server.request("GET", "/metrics")
    assert metrics.status_code == 200
    done = re.search(r'^agentflow_runs_total\{outcome="done"\} (\S+)$', metrics.text, re.M)
    assert done is not None, metrics.text
    assert float(done.group(1)) == 20
