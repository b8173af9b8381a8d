"""The checkpointer contract: every backend must pass all of it."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agentflow.checkpointer import (
    Checkpoint,
    Checkpointer,
    CheckpointerError,
    ConflictError,
    InvalidCursorError,
    open_checkpointer,
)
from agentflow.graph import Message
from agentflow.graph.storage import ThreadQuery

from .conftest import Backend

ROOT = Path(__file__).resolve().parents[2]


def checkpoint(thread_id: str, step: int, count: int, **kwargs: Any) -> Checkpoint:
    return Checkpoint(thread_id=thread_id, run_id="run-1", step=step, message_count=count, **kwargs)


async def write_turns(cp: Checkpointer, thread_id: str, turns: int, user: str = "alice") -> None:
    for i in range(turns):
        await cp.put(
            checkpoint(thread_id, i + 1, i + 1, values={"turn": i}),
            [Message.user(f"message {i}")],
            user_id=user,
        )


async def test_put_then_read_back(cp: Checkpointer) -> None:
    first = Message.user("hello there", metadata={"k": "v"})
    reply = Message.assistant("hi", usage=None)
    await cp.put(
        checkpoint("t1", 1, 2, values={"mood": "good"}, next=["agent"]),
        [first, reply],
        user_id="alice",
    )
    latest = await cp.get_checkpoint("t1")
    assert latest is not None
    assert latest.values == {"mood": "good"}
    assert latest.next == ["agent"]
    assert latest.message_count == 2
    messages = await cp.get_messages("t1")
    assert [m.to_dict() for m in messages] == [first.to_dict(), reply.to_dict()]
    thread = await cp.get_thread("t1")
    assert thread is not None
    assert (thread.user_id, thread.title, thread.message_count) == ("alice", "hello there", 2)
    by_id = await cp.get_checkpoint("t1", latest.checkpoint_id)
    assert by_id is not None and by_id.checkpoint_id == latest.checkpoint_id
    assert await cp.get_checkpoint("t1", "no-such-id") is None
    assert await cp.get_checkpoint("unknown") is None
    assert await cp.get_thread("unknown") is None


async def test_snapshot_holds_the_conversation_as_of_its_checkpoint(cp: Checkpointer) -> None:
    await write_turns(cp, "t1", 3)
    history = await cp.list_history("t1")
    oldest = history[-1]
    snap = await cp.get_snapshot("t1", oldest.checkpoint_id)
    assert snap is not None
    assert [m.text for m in snap.messages] == ["message 0"]
    latest = await cp.get_snapshot("t1")
    assert latest is not None and len(latest.messages) == 3


async def test_conflicting_writer_is_refused_and_writes_nothing(cp: Checkpointer) -> None:
    await write_turns(cp, "t1", 2)
    with pytest.raises(ConflictError, match="changed by another run"):
        await cp.put(checkpoint("t1", 3, 2), [Message.user("stale")], user_id="alice")
    assert len(await cp.get_messages("t1")) == 2
    assert len(await cp.list_history("t1")) == 2


async def test_storage_grows_linearly_with_the_conversation(cp: Checkpointer) -> None:
    turns = 120
    await write_turns(cp, "t1", turns)
    assert len(await cp.get_messages("t1")) == turns
    history = await cp.list_history("t1", limit=1000)
    assert len(history) == turns
    sizes = {len(json.dumps(c.to_dict()["values"])) for c in history}
    # A checkpoint stores a count, never the message list: its size does not grow.
    assert max(sizes) - min(sizes) <= 3
    assert all("messages" not in c.to_dict() for c in history)


async def test_message_paging(cp: Checkpointer) -> None:
    await write_turns(cp, "t1", 10)
    page = await cp.get_messages("t1", offset=4, limit=3)
    assert [m.text for m in page] == ["message 4", "message 5", "message 6"]
    assert await cp.get_messages("t1", offset=10) == []


async def test_threads_are_isolated_between_users(cp: Checkpointer) -> None:
    await write_turns(cp, "alice-1", 1, user="alice")
    await write_turns(cp, "bob-1", 1, user="bob")
    alice = await cp.list_threads("alice")
    bob = await cp.list_threads("bob")
    assert [t.thread_id for t in alice.items] == ["alice-1"]
    assert [t.thread_id for t in bob.items] == ["bob-1"]
    assert (await cp.list_threads("carol")).items == []


async def test_create_thread_is_idempotent_and_keeps_the_owner(cp: Checkpointer) -> None:
    made = await cp.create_thread("t1", "alice", metadata={"source": "api"}, title="T")
    again = await cp.create_thread("t1", "mallory")
    assert again.user_id == "alice" == made.user_id
    assert again.metadata == {"source": "api"}
    await write_turns(cp, "t1", 1, user="mallory")
    info = await cp.get_thread("t1")
    assert info is not None and info.user_id == "alice" and info.title == "T"


async def test_thread_list_paginates_newest_first(cp: Checkpointer) -> None:
    for i in range(25):
        await write_turns(cp, f"t{i:02d}", 1)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await cp.list_threads("alice", limit=10, cursor=cursor)
        seen += [t.thread_id for t in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len(set(seen)) == 25
    assert seen == [f"t{i:02d}" for i in reversed(range(25))]
    # Writing to an old thread moves it to the front.
    await cp.put(checkpoint("t03", 2, 2), [Message.user("again")], user_id="alice")
    first = await cp.list_threads("alice", limit=1)
    assert [t.thread_id for t in first.items] == ["t03"]


async def test_bad_cursor_and_limit_are_clear_errors(cp: Checkpointer) -> None:
    with pytest.raises(InvalidCursorError, match="cursor"):
        await cp.list_threads("alice", cursor="not-a-cursor!")
    with pytest.raises(CheckpointerError, match="limit"):
        await cp.list_threads("alice", limit=0)


async def test_update_thread_metadata_merges_shallowly(cp: Checkpointer) -> None:
    created = await cp.create_thread("t1", "alice", metadata={"a": 1, "b": {"x": 1}, "c": 3})
    updated = await cp.update_thread_metadata("t1", {"b": {"y": 2}, "c": None, "d": [1]})
    assert updated is not None
    assert updated.metadata == {"a": 1, "b": {"y": 2}, "d": [1]}  # "b" replaced, not merged
    assert updated.updated_at >= created.updated_at
    assert updated.created_at == created.created_at
    stored = await cp.get_thread("t1")
    assert stored is not None and stored.metadata == updated.metadata
    assert await cp.update_thread_metadata("missing", {"a": 1}) is None


ORDERS = [("created_at", "asc"), ("created_at", "desc"), ("updated_at", "asc"),
          ("updated_at", "desc")]  # fmt: skip


@pytest.mark.parametrize(("sort_by", "sort_order"), ORDERS)
async def test_search_pages_through_equal_times_by_thread_id(
    cp: Checkpointer, monkeypatch: pytest.MonkeyPatch, sort_by: Any, sort_order: Any
) -> None:
    monkeypatch.setattr(time, "time", lambda: 1_700_000_000.25)  # every thread, same times
    names = [f"t{i}" for i in range(7)]
    for i, name in enumerate(names):
        await cp.create_thread(name, "alice", metadata={"odd": i % 2 == 1})
        await cp.create_thread(f"bob{i}", "bob", metadata={"odd": True})
    expected = sorted(names, reverse=sort_order == "desc")
    odd = [name for name in expected if int(name[1:]) % 2 == 1]
    for metadata, wanted in [({}, expected), ({"odd": True}, odd)]:
        seen: list[str] = []
        cursor = None
        for _ in range(10):
            query = ThreadQuery(
                metadata=metadata, sort_by=sort_by, sort_order=sort_order, limit=2, cursor=cursor
            )
            page = await cp.search_threads("alice", query)
            seen += [t.thread_id for t in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == wanted


async def test_search_refuses_a_bad_cursor_and_limit(cp: Checkpointer) -> None:
    with pytest.raises(InvalidCursorError, match="cursor"):
        await cp.search_threads("alice", ThreadQuery(cursor="not-a-cursor!"))
    with pytest.raises(CheckpointerError, match="limit"):
        await cp.search_threads("alice", ThreadQuery(limit=0))


async def test_history_is_newest_first_and_pages(cp: Checkpointer) -> None:
    await write_turns(cp, "t1", 5)
    history = await cp.list_history("t1", limit=2)
    assert [c.values["turn"] for c in history] == [4, 3]
    older = await cp.list_history("t1", limit=10, before=history[-1].checkpoint_id)
    assert [c.values["turn"] for c in older] == [2, 1, 0]
    assert await cp.list_history("unknown") == []


async def test_delete_thread_removes_everything(cp: Checkpointer) -> None:
    await write_turns(cp, "t1", 3)
    await write_turns(cp, "t2", 1)
    assert await cp.delete_thread("t1") is True
    assert await cp.get_thread("t1") is None
    assert await cp.get_checkpoint("t1") is None
    assert await cp.get_messages("t1") == []
    assert await cp.list_history("t1") == []
    assert [t.thread_id for t in (await cp.list_threads("alice")).items] == ["t2"]
    assert await cp.delete_thread("t1") is False
    # The id can be reused from scratch.
    await write_turns(cp, "t1", 1, user="bob")
    info = await cp.get_thread("t1")
    assert info is not None and info.user_id == "bob" and info.message_count == 1


async def test_concurrent_writers_on_different_threads(cp: Checkpointer) -> None:
    await asyncio.gather(*(write_turns(cp, f"t{i}", 10) for i in range(20)))
    for i in range(20):
        messages = await cp.get_messages(f"t{i}")
        assert [m.text for m in messages] == [f"message {n}" for n in range(10)]
    page = await cp.list_threads("alice", limit=100)
    assert len(page.items) == 20


async def test_append_messages_outside_a_run(cp: Checkpointer) -> None:
    await cp.append_messages("t1", [Message.user("imported"), Message.assistant("ok")], user_id="a")
    await cp.append_messages("t1", [Message.user("more")], user_id="a")
    assert [m.text for m in await cp.get_messages("t1")] == ["imported", "ok", "more"]
    latest = await cp.get_checkpoint("t1")
    assert latest is not None and latest.message_count == 3 and latest.source == "update"


async def test_unserialisable_state_is_a_clear_error(cp: Checkpointer) -> None:
    with pytest.raises(CheckpointerError, match="JSON-serialisable"):
        await cp.put(checkpoint("t1", 1, 0, values={"bad": object()}), [], user_id="alice")
    assert await cp.get_checkpoint("t1") is None


def run_graph_process(spec: str, thread_id: str, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.checkpointer.crash_graph", spec, thread_id, mode],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def last_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_state_survives_a_restart(durable_backend: Backend, tmp_path: Path) -> None:
    spec = durable_backend.spec(tmp_path)
    first = last_json(run_graph_process(spec, "t1", "run"))
    assert first["status"] == "done"
    assert first["visits"] == ["a", "b", "c"]
    # A new process: the history is intact and the next run continues the thread.
    second = last_json(run_graph_process(spec, "t1", "run"))
    assert second["visits"] == ["a", "b", "c", "a", "b", "c"]
    assert second["messages"] == [
        "go", "a saw 1 messages", "b saw 2 messages", "c saw 3 messages",
        "go", "a saw 5 messages", "b saw 6 messages", "c saw 7 messages",
    ]  # fmt: skip


def test_killed_process_resumes_from_the_last_completed_step(
    durable_backend: Backend, tmp_path: Path
) -> None:
    spec = durable_backend.spec(tmp_path)
    crashed = run_graph_process(spec, "t1", "crash")
    assert crashed.returncode == -signal.SIGKILL
    after_crash = last_json(run_graph_process(spec, "t1", "show"))
    assert after_crash == {
        "visits": ["a"],
        "messages": ["go", "a saw 1 messages"],
        "next": ["b"],
        "status": "running",
    }
    resumed = last_json(run_graph_process(spec, "t1", "resume"))
    assert resumed["status"] == "done"
    assert resumed["visits"] == ["a", "b", "c"]  # `a` did not run twice
    assert resumed["messages"] == ["go", "a saw 1 messages", "b saw 2 messages", "c saw 3 messages"]


async def test_sqlite_reports_an_unusable_file(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a database" * 100)
    cp = open_checkpointer(f"sqlite:{path}")
    with pytest.raises(CheckpointerError, match="not a usable agentflow state file"):
        await cp.setup()
    await cp.close()


def test_open_checkpointer_rejects_unknown_kinds() -> None:
    with pytest.raises(CheckpointerError, match="unknown checkpointer"):
        open_checkpointer("mongodb://x")


async def test_idempotency_records_are_per_user_and_expire(cp: Checkpointer) -> None:
    import time as _time

    from agentflow.checkpointer import IdempotencyRecord

    record = IdempotencyRecord(
        key="k1", user_id="alice", request_hash="h", status=200,
        body={"ok": True, "n": [1, 2]}, expires_at=_time.time() + 60,
    )  # fmt: skip
    await cp.put_idempotent(record)
    found = await cp.get_idempotent("alice", "k1")
    assert found is not None and found.body == {"ok": True, "n": [1, 2]}
    assert await cp.get_idempotent("bob", "k1") is None
    expired = IdempotencyRecord(
        key="k2", user_id="alice", request_hash="h", status=200, body={},
        expires_at=_time.time() - 1,
    )  # fmt: skip
    await cp.put_idempotent(expired)
    assert await cp.get_idempotent("alice", "k2") is None


async def test_an_idempotency_claim_is_taken_once_and_changed_only_by_its_owner(
    cp: Checkpointer,
) -> None:
    import time as _time

    from agentflow.checkpointer import IdempotencyRecord

    def pending(run_id: str, expires_in: float = 60, key: str = "k") -> IdempotencyRecord:
        return IdempotencyRecord(
            key=key, user_id="alice", request_hash="h", expires_at=_time.time() + expires_in,
            state="pending", thread_id="t1", run_ids=[run_id], claimed_at=_time.time(),
        )  # fmt: skip

    assert await cp.claim_idempotent(pending("r1")) is None  # claimed
    existing = await cp.claim_idempotent(pending("r2"))  # a second claimant sees the first
    assert existing is not None and existing.run_ids == ["r1"] and existing.state == "pending"
    # A reply may hold NUL and lone surrogates: the record stores them faithfully.
    body = {"messages": [{"content": "a\x00b \ud800"}]}
    done = IdempotencyRecord(**{**pending("r1").to_dict(), "state": "done", "body": body})
    assert not await cp.replace_idempotent(done, "r2")  # not the owner
    assert await cp.replace_idempotent(done, "r1")
    found = await cp.get_idempotent("alice", "k")
    assert found is not None and found.state == "done" and found.body == body
    # An expired claim is free to take.
    assert await cp.claim_idempotent(pending("r3", expires_in=-1, key="old")) is None
    assert await cp.claim_idempotent(pending("r4", key="old")) is None


async def test_ping_succeeds_on_a_working_store(cp: Checkpointer) -> None:
    await cp.ping()


async def test_tool_results_are_recorded_per_thread(cp: Checkpointer) -> None:
    result = Message.tool("42", tool_call_id="c1", name="add", metadata={"status": "ok"})
    await cp.put_tool_result("t1", "k1", result)
    assert await cp.get_tool_results("t1", []) == {}
    found = await cp.get_tool_results("t1", ["k1", "k2"])
    assert list(found) == ["k1"]
    assert found["k1"].to_dict() == result.to_dict()
    assert await cp.get_tool_results("t2", ["k1"]) == {}  # per-thread
    other = Message.tool("7", tool_call_id="c1", name="add", metadata={"status": "ok"})
    await cp.put_tool_result("t2", "k1", other)
    assert (await cp.get_tool_results("t1", ["k1"]))["k1"].text == "42"
    assert (await cp.get_tool_results("t2", ["k1"]))["k1"].text == "7"
    big = Message.tool("x" * 5000, tool_call_id="c2", name="read", metadata={"status": "ok"})
    await cp.put_tool_result("t1", "k2", big)  # large payloads round-trip (compressed in pg)
    both = await cp.get_tool_results("t1", ["k2", "k1", "k2"])
    assert sorted(both) == ["k1", "k2"] and both["k2"].text == "x" * 5000


async def test_delete_thread_removes_its_tool_results(cp: Checkpointer) -> None:
    await write_turns(cp, "t1", 1)
    await write_turns(cp, "t2", 1)
    for thread_id in ("t1", "t2"):
        await cp.put_tool_result(
            thread_id, "k", Message.tool("done", tool_call_id="c", metadata={"status": "ok"})
        )
    assert await cp.delete_thread("t1") is True
    assert await cp.get_tool_results("t1", ["k"]) == {}
    assert list(await cp.get_tool_results("t2", ["k"])) == ["k"]
