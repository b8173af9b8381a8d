"""Postgres restarted under the servers (a private cluster, never the shared one): requests
fail fast with 503 while it is down, the servers stay up, and serve again once it is back
without losing any turn that was acknowledged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.faults.conftest import (
    Cluster,
    Ledger,
    PgCluster,
    Server,
    deadline_loop,
    error_code,
    new_thread,
    texts,
    wait_running,
)

pytestmark = pytest.mark.slow


def first_success(
    server: Server, thread_id: str, text: str | None, timeout: float
) -> httpx.Response:
    """Invoke until a 200; only 503 (store down) and 409 (an old lease) may come before."""
    response = None
    for _ in deadline_loop(timeout, interval=0.25):
        response = server.invoke(thread_id, text)
        if response.status_code == 200:
            return response
        assert response.status_code in (503, 409), response.text
    raise AssertionError(f"{server.name} did not recover: {response and response.text}")


def test_postgres_restart_during_traffic(
    private_cluster: Cluster, own_postgres: PgCluster, background: Callable[..., Any]
) -> None:
    a, b = private_cluster.start(2, dsn=own_postgres.dsn)
    servers = (a, b)
    threads = [new_thread(f"p{i}") for i in range(3)]
    in_flight = new_thread("inflight")
    book = Ledger()
    for i in range(6):
        book.turn(servers[i % 2], threads[i % 3], f"before {i}")

    slow = background(a.invoke, in_flight, "sleep 1.5")
    wait_running(b, in_flight)
    own_postgres.stop()

    for server in servers:
        refused = server.invoke(threads[0], "while postgres is down")
        assert refused.status_code == 503, refused.text
        assert error_code(refused) == "storage_unavailable"
        health = server.health()
        assert health.status_code == 503, health.text
        assert health.json()["status"] == "unavailable"
        assert health.json()["checks"]["checkpointer"]["status"] == "error"
        assert server.request("GET", "/ping").status_code == 200
        listing = server.request("GET", f"/v1/threads/{threads[1]}/messages")
        assert listing.status_code == 503 and error_code(listing) == "storage_unavailable"
    lost = slow.result(timeout=20)  # its final write met the stopped store
    assert lost.status_code == 503, lost.text
    assert error_code(lost) == "storage_unavailable"

    own_postgres.start()
    for i, server in enumerate(servers):
        text = f"first after restart via {server.name}"
        first_success(server, threads[i], text, timeout=15)
        book.record(threads[i], text)
    for i in range(6):
        book.turn(servers[i % 2], threads[i % 3], f"after {i}")

    for thread in threads:  # every acknowledged turn, and nothing from the refused one
        assert texts(a.messages(thread)) == book[thread]
        assert b.messages(thread) == a.messages(thread)

    # The run whose write failed is not half-written: its user message once, no reply, and it
    # resumes to completion (once the lease of the failed run has expired).
    assert texts(b.messages(in_flight)) == [("user", "sleep 1.5")]
    assert b.state(in_flight)["next"] == ["respond"]
    resumed = first_success(b, in_flight, None, timeout=10)
    assert resumed.json()["status"] == "done"
    assert texts(a.messages(in_flight)) == [("user", "sleep 1.5"), ("assistant", "echo: sleep 1.5")]
