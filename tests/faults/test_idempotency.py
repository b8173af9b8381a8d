"""Idempotency-Key across servers sharing one Postgres: one run per key, whoever gets the
retry, whatever happened to the first attempt (running, finished, killed, cut off)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.faults.conftest import (
    Cluster,
    Server,
    deadline_loop,
    error_code,
    new_thread,
    texts,
    wait_running,
)


def keyed(
    server: Server,
    key: str,
    thread_id: str | None,
    text: str,
    path: str = "/v1/graph/invoke",
    **kwargs: Any,
) -> httpx.Response:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": text}]}
    if thread_id is not None:
        body["thread_id"] = thread_id
    return server.request("POST", path, json=body, headers={"Idempotency-Key": key}, **kwargs)


def sse_events(text: str) -> list[tuple[str, str]]:
    events = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            events.append((lines["event"], lines.get("data", "")))
    return events


def test_concurrent_requests_with_one_key_run_once_across_servers(
    cluster: Cluster, background: Callable[..., Any]
) -> None:
    a, b = cluster.start(2)
    thread, key = new_thread(), uuid.uuid4().hex
    futures = [background(keyed, (a, b)[i % 2], key, thread, "sleep 1") for i in range(8)]
    responses = [f.result(timeout=30) for f in futures]
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1 and statuses.count(409) == 7, statuses
    assert {error_code(r) for r in responses if r.status_code == 409} == {"idempotency_in_progress"}
    assert all(r.headers.get("retry-after") for r in responses if r.status_code == 409)
    assert texts(a.messages(thread)) == [("user", "sleep 1"), ("assistant", "echo: sleep 1")]
    done = next(r for r in responses if r.status_code == 200)
    again = keyed(b, key, thread, "sleep 1")  # finished: the stored response, on any server
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == done.json()


def test_a_client_that_timed_out_retries_on_another_server(cluster: Cluster) -> None:
    a, b = cluster.start(2)
    key = uuid.uuid4().hex
    with pytest.raises(httpx.ReadTimeout):  # a new thread: the server picks its id
        keyed(a, key, None, "sleep 2", timeout=0.5)
    running = keyed(b, key, None, "sleep 2")
    assert running.status_code == 409, running.text
    assert error_code(running) == "idempotency_in_progress"
    replayed = None
    for _ in deadline_loop(10, interval=0.2):
        replayed = keyed(b, key, None, "sleep 2")
        if replayed.status_code != 409:
            break
    assert replayed is not None and replayed.status_code == 200, replayed and replayed.text
    assert replayed.headers["idempotent-replayed"] == "true"
    thread = replayed.json()["thread_id"]
    assert texts(b.messages(thread)) == [("user", "sleep 2"), ("assistant", "echo: sleep 2")]


def test_a_stream_honours_the_key(cluster: Cluster, background: Callable[..., Any]) -> None:
    a, b = cluster.start(2)
    thread, key = new_thread(), uuid.uuid4().hex
    first = background(keyed, a, key, thread, "sleep 1", "/v1/graph/stream")
    wait_running(b, thread)
    busy = keyed(b, key, thread, "sleep 1", "/v1/graph/stream")
    assert busy.status_code == 409 and error_code(busy) == "idempotency_in_progress"
    streamed = first.result(timeout=15)
    assert streamed.status_code == 200
    names = [name for name, _ in sse_events(streamed.text)]
    assert names[0] == "metadata" and names[-1] == "end" and "message" in names

    replayed = keyed(b, key, thread, "sleep 1", "/v1/graph/stream")
    assert replayed.status_code == 200, replayed.text
    assert replayed.headers["content-type"].startswith("text/event-stream")
    assert replayed.headers["idempotent-replayed"] == "true"
    events = sse_events(replayed.text)
    assert [name for name, _ in events] == ["metadata", "message", "end"]
    assert "echo: sleep 1" in events[1][1]
    assert texts(b.messages(thread)) == [("user", "sleep 1"), ("assistant", "echo: sleep 1")]
    other_body = keyed(b, key, thread, "something else", "/v1/graph/stream")
    assert other_body.status_code == 422 and error_code(other_body) == "idempotency_key_reused"


def test_a_retry_after_a_crash_resumes_without_appending_again(
    cluster: Cluster, background: Callable[..., Any]
) -> None:
    a, b = cluster.start(2, env={"RUN_LEASE_TTL": "30"})  # only the dead-process check frees it
    thread, key = new_thread(), uuid.uuid4().hex
    doomed = background(keyed, a, key, thread, "sleep 2")
    assert wait_running(b, thread)["message_count"] == 1  # the input is stored
    a.kill()
    with pytest.raises(httpx.TransportError):
        doomed.result(timeout=10)

    retried = None
    for _ in deadline_loop(15, interval=0.3):  # the claim's few seconds of grace
        retried = keyed(b, key, thread, "sleep 2")
        if retried.status_code != 409:
            break
    assert retried is not None and retried.status_code == 200, retried and retried.text
    assert texts(retried.json()["messages"]) == [("assistant", "echo: sleep 2")]
    assert texts(b.messages(thread)) == [("user", "sleep 2"), ("assistant", "echo: sleep 2")]
    again = keyed(b, key, thread, "sleep 2")
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert texts(b.messages(thread)) == [("user", "sleep 2"), ("assistant", "echo: sleep 2")]


def test_delete_and_listings_see_runs_on_other_servers(
    cluster: Cluster, background: Callable[..., Any]
) -> None:
    a, b = cluster.start(2)
    thread = new_thread()
    running = background(a.invoke, thread, "sleep 2")
    wait_running(b, thread)
    listed = b.request("GET", "/v1/threads").json()["threads"]
    assert [t["running"] for t in listed if t["thread_id"] == thread] == [True]
    assert b.request("GET", f"/v1/threads/{thread}").json()["running"] is True
    refused = b.request("DELETE", f"/v1/threads/{thread}")
    assert refused.status_code == 409 and error_code(refused) == "thread_busy", refused.text
    assert running.result(timeout=15).status_code == 200  # the run was not killed
    assert b.request("GET", f"/v1/threads/{thread}").json()["running"] is False
    assert b.request("DELETE", f"/v1/threads/{thread}").status_code == 200


def test_a_killed_servers_threads_are_free_at_once_on_this_host(
    cluster: Cluster, background: Callable[..., Any]
) -> None:
    a, b = cluster.start(2, env={"RUN_LEASE_TTL": "60"})
    thread = new_thread()
    doomed = background(a.invoke, thread, "sleep 5")
    wait_running(b, thread)
    a.kill()
    with pytest.raises(httpx.TransportError):
        doomed.result(timeout=10)
    started = time.monotonic()
    resumed = b.invoke(thread)  # the lease names a process that is gone: released
    assert resumed.status_code == 200, resumed.text
    assert time.monotonic() - started < 30  # never the 60 s TTL
    assert texts(b.messages(thread)) == [("user", "sleep 5"), ("assistant", "echo: sleep 5")]
    assert "belonged to process" in b.output()
