"""Runs as resources in one process (memory and SQLite checkpointers), over real HTTP: start
and leave then join, reconnect to a stream with Last-Event-ID without a gap or a duplicate,
cancel, each multitask strategy, and a queued run's stream. The same across workers on
Postgres + Redis: tests/faults/test_runs_shared.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.runtime.conftest import ServerFactory, sse

THREAD = "/v1/threads/{}"


def user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


@pytest.fixture(params=["memory", "sqlite"])
def client(
    request: pytest.FixtureRequest, make_server: ServerFactory, tmp_path: Path
) -> Iterator[httpx.Client]:
    checkpointer: Any = "memory"
    if request.param == "sqlite":
        checkpointer = {"kind": "sqlite", "path": str(tmp_path / "state.db")}
    url = make_server(config={"checkpointer": checkpointer})
    with httpx.Client(base_url=url, timeout=30) as http:
        yield http


def start(client: httpx.Client, thread: str, text: str, **extra: Any) -> dict[str, Any]:
    response = client.post(THREAD.format(thread) + "/runs", json={**user(text), **extra})
    assert response.status_code == 202, response.text
    run: dict[str, Any] = response.json()
    assert response.headers["location"] == f"/v1/threads/{thread}/runs/{run['run_id']}"
    return run


def run_of(client: httpx.Client, thread: str, run_id: str) -> dict[str, Any]:
    response = client.get(THREAD.format(thread) + f"/runs/{run_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_status(client: httpx.Client, thread: str, run_id: str, *statuses: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        run = run_of(client, thread, run_id)
        if run["status"] in statuses or time.monotonic() > deadline:
            assert run["status"] in statuses, run
            return run
        time.sleep(0.02)


def texts(client: httpx.Client, thread: str) -> list[str]:
    page = client.get(THREAD.format(thread) + "/messages").json()
    return [m["content"] for m in page["messages"]]


def test_start_and_leave_then_join(client: httpx.Client) -> None:
    run = start(client, "t1", "sleep 0.3")
    assert run["status"] == "running" and run["result"] is None
    assert run_of(client, "t1", run["run_id"])["status"] == "running"
    joined = client.get(THREAD.format("t1") + f"/runs/{run['run_id']}/join")
    assert joined.status_code == 200, joined.text
    assert joined.json()["messages"][-1]["content"] == "echo: sleep 0.3"
    done = run_of(client, "t1", run["run_id"])
    assert done["status"] == "success" and done["result"] == joined.json()
    assert done["ended_at"] >= done["started_at"] >= done["created_at"]
    second = start(client, "t1", "again")
    client.get(THREAD.format("t1") + f"/runs/{second['run_id']}/join")
    listed = client.get(THREAD.format("t1") + "/runs", params={"limit": 1}).json()
    assert [r["run_id"] for r in listed["runs"]] == [second["run_id"]]
    rest = client.get(
        THREAD.format("t1") + "/runs", params={"before": listed["next_cursor"]}
    ).json()
    assert [r["run_id"] for r in rest["runs"]] == [run["run_id"]] and rest["next_cursor"] is None


def test_stream_runs_are_resources_and_invoke_runs_are_not(client: httpx.Client) -> None:
    events = sse(client.post("/v1/graph/stream", json={**user("hi"), "thread_id": "t2"}).text)
    streamed = run_of(client, "t2", events[0][2]["run_id"])
    assert streamed["status"] == "success"
    assert streamed["result"]["messages"][-1]["content"] == "echo: hi"
    # an invoke's answer is its record: it costs no extra writes
    invoked = client.post("/v1/graph/invoke", json={**user("hi"), "thread_id": "t2"}).json()
    missing = client.get(THREAD.format("t2") + f"/runs/{invoked['run_id']}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "run_not_found"
    assert client.get(THREAD.format("t2") + "/runs/nope").status_code == 404
    other = client.get(THREAD.format("other") + f"/runs/{streamed['run_id']}")
    assert other.status_code == 404


def test_a_dropped_stream_resumes_after_the_last_event_id(client: httpx.Client) -> None:
    body = {**user("stream one two three four five six"), "thread_id": "t3"}
    with client.stream("POST", "/v1/graph/stream", json=body) as response:
        lines = response.iter_lines()
        first: list[str] = []
        while len([line for line in first if line.startswith("data: ")]) < 3:
            first.append(next(lines))
    # the connection is gone after three events; the run goes on
    received = sse("\n".join(first) + "\n\n")
    assert [i for i, _, _ in received] == [1, 2, 3]
    metadata = received[0][2]
    url = metadata["stream_url"]
    assert url == f"/v1/threads/t3/runs/{metadata['run_id']}/stream"
    rest = sse(client.get(url, headers={"Last-Event-ID": "3"}).text)
    whole = sse(client.get(url).text)
    assert [i for i, _, _ in received + rest] == [i for i, _, _ in whole]
    assert received + rest == whole
    assert whole[-1][1] == "end" and [e for _, e, _ in whole].count("delta") == 6
    bad = client.get(url, headers={"Last-Event-ID": "x"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["loc"] == [
        "header", "Last-Event-ID",
    ]  # fmt: skip


def test_cancel_a_running_run(client: httpx.Client) -> None:
    run = start(client, "t4", "sleep 5")
    cancelled = client.post(THREAD.format("t4") + f"/runs/{run['run_id']}/cancel")
    assert cancelled.status_code == 202, cancelled.text
    assert wait_status(client, "t4", run["run_id"], "cancelled")["error"]["code"] == "run_cancelled"
    joined = client.get(THREAD.format("t4") + f"/runs/{run['run_id']}/join")
    assert joined.status_code == 409 and joined.json()["error"]["code"] == "run_cancelled"
    events = sse(client.get(THREAD.format("t4") + f"/runs/{run['run_id']}/stream").text)
    assert [e for _, e, _ in events][-2:] == ["error", "end"]
    assert events[-1][2]["status"] == "cancelled"


def test_reject_is_the_default(client: httpx.Client) -> None:
    first = start(client, "t5", "sleep 1")
    refused = client.post(THREAD.format("t5") + "/runs", json=user("second"))
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "thread_busy"
    client.post(THREAD.format("t5") + f"/runs/{first['run_id']}/cancel")


def test_enqueue_runs_after_the_current_run_in_order(client: httpx.Client) -> None:
    first = start(client, "t6", "sleep 0.4")
    second = start(client, "t6", "second", multitask_strategy="enqueue")
    third = start(client, "t6", "third", multitask_strategy="enqueue")
    assert second["status"] == third["status"] == "pending"
    # a queued run's stream waits for it to start, then streams it whole
    events = sse(client.get(THREAD.format("t6") + f"/runs/{third['run_id']}/stream").text)
    assert events[0][1] == "metadata" and events[-1][2]["status"] == "done"
    runs = [wait_status(client, "t6", r["run_id"], "success") for r in (first, second, third)]
    assert (
        runs[0]["ended_at"] <= runs[1]["started_at"]
        and runs[1]["ended_at"] <= runs[2]["started_at"]
    )
    assert texts(client, "t6") == [
        "sleep 0.4", "echo: sleep 0.4", "second", "echo: second", "third", "echo: third",
    ]  # fmt: skip


def test_a_queued_run_can_be_cancelled(client: httpx.Client) -> None:
    first = start(client, "t7", "sleep 0.4")
    queued = start(client, "t7", "never", multitask_strategy="enqueue")
    cancel = client.post(THREAD.format("t7") + f"/runs/{queued['run_id']}/cancel")
    assert cancel.status_code == 202 and cancel.json()["status"] == "cancelled"
    wait_status(client, "t7", first["run_id"], "success")
    time.sleep(0.2)
    assert run_of(client, "t7", queued["run_id"])["status"] == "cancelled"
    assert "never" not in texts(client, "t7")
    joined = client.get(THREAD.format("t7") + f"/runs/{queued['run_id']}/join")
    assert joined.status_code == 409 and joined.json()["error"]["code"] == "run_cancelled"


@pytest.mark.parametrize(("strategy", "kept"), [("interrupt", True), ("rollback", False)])
def test_interrupt_keeps_and_rollback_discards_the_current_runs_steps(
    client: httpx.Client, strategy: str, kept: bool
) -> None:
    client.post("/v1/graph/invoke", json={**user("before"), "thread_id": "t8"})
    first = start(client, "t8", "sleep 5")
    wait_status(client, "t8", first["run_id"], "running")
    time.sleep(0.1)  # its input is checkpointed
    second = start(client, "t8", "instead", multitask_strategy=strategy)
    assert wait_status(client, "t8", second["run_id"], "success")
    assert run_of(client, "t8", first["run_id"])["status"] == "cancelled"
    expected = ["before", "echo: before"] + (["sleep 5"] if kept else [])
    assert texts(client, "t8") == [*expected, "instead", "echo: instead"]


@pytest.mark.parametrize(
    ("mode", "sent"),
    [
        ("events", {"metadata", "node", "delta", "message", "state", "end"}),
        ("messages", {"metadata", "delta", "message", "end"}),
        ("updates", {"metadata", "updates", "end"}),
        ("values", {"metadata", "values", "end"}),
        (["messages", "updates"], {"metadata", "delta", "message", "updates", "end"}),
    ],
)
def test_stream_mode_picks_what_a_stream_sends(
    client: httpx.Client, mode: str | list[str], sent: set[str]
) -> None:
    body = {**user("stream a b"), "thread_id": "t9", "stream_mode": mode}
    events = sse(client.post("/v1/graph/stream", json=body).text)
    assert {e for _, e, _ in events} == sent
    assert [i for i, _, _ in events] == list(range(1, len(events) + 1))
    for _, name, data in events:
        if name == "updates":
            assert data["node"] == "respond"
            assert [m["content"] for m in data["update"]["messages"]] == ["a b"]
        if name == "values":
            assert [m["content"] for m in data["messages"]][-2:] == ["stream a b", "a b"]
    # a background run streams in its mode too; invoke ignores it
    run = start(client, "t9", "stream c", stream_mode="updates")
    streamed = sse(client.get(THREAD.format("t9") + f"/runs/{run['run_id']}/stream").text)
    assert {e for _, e, _ in streamed} == {"metadata", "updates", "end"}
    invoked = client.post("/v1/graph/invoke", json={**user("hi"), "stream_mode": "values"})
    assert invoked.status_code == 200, invoked.text


def test_an_unknown_stream_mode_is_a_422(client: httpx.Client) -> None:
    refused = client.post("/v1/graph/stream", json={**user("hi"), "stream_mode": "tokens"})
    assert refused.status_code == 422
    assert refused.json()["error"]["details"][0]["loc"] == ["body", "stream_mode"]


def test_a_finished_runs_stream_is_kept_for_the_retention_only(make_server: ServerFactory) -> None:
    url = make_server(env={"RUN_STREAM_RETENTION": "0"})
    with httpx.Client(base_url=url, timeout=30) as http:
        events = sse(http.post("/v1/graph/stream", json={**user("hi"), "thread_id": "t10"}).text)
        gone = http.get(events[0][2]["stream_url"])
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "stream_expired"
        run = http.get(THREAD.format("t10") + f"/runs/{events[0][2]['run_id']}").json()
        assert run["status"] == "success"  # the run itself stays
