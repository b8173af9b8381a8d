"""Redis is an accelerator: when it goes away the servers keep serving from Postgres, report
"degraded", and never serve a stale cached snapshot once it is back.

The Redis here is our own (`own_redis`); it is stopped with its keys saved, so the snapshots
cached before the outage are still there after it, the way a Redis with persistence (or a
network partition) behaves.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.faults.conftest import (
    Cluster,
    Ledger,
    RedisProcess,
    Server,
    deadline_loop,
    error_code,
    new_thread,
    texts,
)

pytestmark = pytest.mark.slow


def wait_health(server: Server, status: str, timeout: float) -> dict[str, Any]:
    last = None
    for _ in deadline_loop(timeout, interval=0.1):
        response = server.health()
        last = (response.status_code, response.text)
        if response.status_code == 200 and response.json()["status"] == status:
            body: dict[str, Any] = response.json()
            return body
    raise AssertionError(f"{server.name}: /health never became {status!r}; last {last}")


def cache_latest_snapshot(server: Server, thread_id: str) -> None:
    """Make `server` read (and so cache in Redis) the thread's latest snapshot without
    writing: a resume with nothing to resume loads the state, then fails with 409."""
    response = server.request(
        "POST", "/v1/graph/invoke", json={"thread_id": thread_id, "resume": "nothing"}
    )
    assert response.status_code == 409, response.text
    assert error_code(response) == "nothing_to_resume"


def test_redis_outage_degrades_then_recovers(cluster: Cluster, own_redis: RedisProcess) -> None:
    a, b = cluster.start(2, redis_url=own_redis.url)
    servers = (a, b)
    threads = [new_thread(f"r{i}") for i in range(3)]
    written_while_down = new_thread("w")
    book = Ledger()

    def traffic(label: str, turns: int = 6) -> None:
        for i in range(turns):
            book.turn(servers[i % 2], threads[i % len(threads)], f"{label} {i}")

    traffic("redis up")
    book.turn(a, written_while_down, "w: first")
    book.turn(b, written_while_down, "w: second")
    cache_latest_snapshot(b, written_while_down)
    assert wait_health(a, "ok", 5)["checks"]["redis"]["status"] == "ok"

    own_redis.stop(keep_data=True)
    traffic("redis down")  # no 5xx: every turn must be a 200
    book.turn(a, written_while_down, "w: while redis is down")
    book.turn(a, written_while_down, "w: still down")
    for server in servers:
        health = wait_health(server, "degraded", 5)
        assert health["checks"]["redis"]["status"] == "degraded"
        assert health["checks"]["checkpointer"]["status"] == "ok"
    traffic("still down", 2)

    own_redis.start()
    for server in servers:
        health = wait_health(server, "ok", 10)
        assert health["checks"]["redis"]["status"] == "ok"
    traffic("redis back")

    assert texts(b.messages(written_while_down)) == book[written_while_down]
    # B's next turn loads the thread's snapshot; a stale one from the Redis cache would make
    # its write conflict (409) or lose the turns written while Redis was down.
    book.turn(b, written_while_down, "w: after recovery")
    assert texts(a.messages(written_while_down)) == book[written_while_down]
    for thread in threads:
        assert texts(b.messages(thread)) == book[thread]


def test_no_stale_snapshot_when_the_outage_writer_is_gone(
    cluster: Cluster, own_redis: RedisProcess
) -> None:
    """The only server that wrote while Redis was down exits before Redis returns; the other
    one must still not trust the snapshot cached before the outage."""
    a, b = cluster.start(2, redis_url=own_redis.url)
    thread = new_thread("w")
    book = Ledger()
    book.turn(a, thread, "first")
    book.turn(b, thread, "second")
    cache_latest_snapshot(b, thread)

    own_redis.stop(keep_data=True)
    book.turn(a, thread, "while redis is down")
    a.terminate()  # a clean restart/scale-down of the writer during the outage
    own_redis.start()
    wait_health(b, "ok", 10)

    response = b.invoke(thread, "after recovery")
    assert response.status_code == 200, (
        f"B served the snapshot cached before the outage: {response.status_code} {response.text}"
    )
    book.record(thread, "after recovery")
    assert texts(b.messages(thread)) == book[thread]
