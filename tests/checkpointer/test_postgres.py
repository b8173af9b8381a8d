"""Postgres specifics: concurrent migrations, PgBouncer mode, the Redis cache across
workers, Redis outages, and run leases. Real Postgres and Redis on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from agentflow.checkpointer import Checkpoint, PgCheckpointer, migrations
from agentflow.graph import Message
from agentflow.graph.storage import RunRecord

from .conftest import PG_DSN, REDIS_URL, drop_schema, pg_spec, require_postgres


@pytest.fixture
async def schema(tmp_path: Path) -> AsyncIterator[str]:
    require_postgres()
    spec = pg_spec(tmp_path)
    yield spec.split("agentflow_schema=", 1)[1]
    await drop_schema(spec)


async def turn(cp: PgCheckpointer, thread_id: str, step: int, text: str) -> None:
    await cp.put(
        Checkpoint(thread_id=thread_id, run_id="r", step=step, message_count=step),
        [Message.user(text)],
        user_id="alice",
    )


async def test_workers_starting_together_migrate_exactly_once(schema: str) -> None:
    workers = [PgCheckpointer(PG_DSN, schema=schema, min_size=1, max_size=2) for _ in range(8)]
    await asyncio.gather(*(w.setup() for w in workers))
    try:
        conn = await asyncpg.connect(PG_DSN)
        rows = await conn.fetch(f'SELECT version FROM "{schema}".schema_version')
        await conn.close()
        assert [r["version"] for r in rows] == list(range(1, len(migrations("s")) + 1))
    finally:
        await asyncio.gather(*(w.close() for w in workers))


async def test_pgbouncer_mode_uses_no_prepared_statement_cache(schema: str) -> None:
    async with PgCheckpointer(PG_DSN, schema=schema, pgbouncer=True) as cp:
        assert isinstance(cp, PgCheckpointer)
        await turn(cp, "t1", 1, "hello")
        snapshot = await cp.get_snapshot("t1")
        assert snapshot is not None and [m.text for m in snapshot.messages] == ["hello"]


async def test_cache_never_serves_stale_state_across_workers(schema: str) -> None:
    a = PgCheckpointer(PG_DSN, schema=schema, redis_url=REDIS_URL)
    b = PgCheckpointer(PG_DSN, schema=schema, redis_url=REDIS_URL)
    await a.setup()
    await b.setup()
    try:
        assert a.redis is not None and a.redis.healthy
        await turn(a, "t1", 1, "one")
        first = await a.get_snapshot("t1")  # fills the cache
        cached = await a.get_snapshot("t1")  # served from Redis
        assert first is not None and cached is not None
        assert cached.checkpoint.checkpoint_id == first.checkpoint.checkpoint_id
        await turn(b, "t1", 2, "two")  # another worker writes
        seen = await a.get_snapshot("t1")
        assert seen is not None and [m.text for m in seen.messages] == ["one", "two"]
        await b.delete_thread("t1")
        assert await a.get_snapshot("t1") is None
    finally:
        await a.close()
        await b.close()


async def test_unreachable_redis_falls_back_to_postgres(schema: str) -> None:
    cp = PgCheckpointer(PG_DSN, schema=schema, redis_url="redis://127.0.0.1:1/0")
    await cp.setup()
    try:
        assert cp.redis is not None and not cp.redis.healthy
        await turn(cp, "t1", 1, "still works")
        snapshot = await cp.get_snapshot("t1")
        assert snapshot is not None and snapshot.messages[0].text == "still works"
    finally:
        await cp.close()


async def test_a_write_redis_never_saw_is_not_hidden_by_the_cache(schema: str) -> None:
    cached = PgCheckpointer(PG_DSN, schema=schema, redis_url=REDIS_URL)
    blind = PgCheckpointer(PG_DSN, schema=schema)  # a worker whose Redis was down
    await cached.setup()
    await blind.setup()
    try:
        await turn(cached, "t1", 1, "one")
        assert await cached.get_snapshot("t1") is not None  # now in Redis
        await turn(blind, "t1", 2, "two")
        seen = await cached.get_snapshot("t1")
        assert seen is not None and [m.text for m in seen.messages] == ["one", "two"]
    finally:
        await cached.close()
        await blind.close()


async def test_unreachable_postgres_is_a_clear_error() -> None:
    from agentflow.checkpointer import CheckpointerError

    cp = PgCheckpointer("postgresql://postgres@127.0.0.1:1/test", connect_timeout=0.5)
    with pytest.raises(CheckpointerError, match="cannot connect to Postgres after 5 attempts"):
        await cp.setup()


async def test_run_leases(schema: str) -> None:
    async with PgCheckpointer(PG_DSN, schema=schema) as cp:
        assert isinstance(cp, PgCheckpointer)
        assert await cp.acquire_lease("t1", "run-a", "worker-a", ttl=5)
        assert not await cp.acquire_lease("t1", "run-b", "worker-b", ttl=5)
        assert await cp.renew_lease("t1", "run-a", ttl=5) is False
        assert await cp.request_stop("t1")
        assert await cp.renew_lease("t1", "run-a", ttl=5) is True
        assert await cp.renew_lease("t1", "run-b", ttl=5) is None
        await cp.release_lease("t1", "run-a")
        assert not await cp.request_stop("t1")
        assert await cp.acquire_lease("t1", "run-b", "worker-b", ttl=0.05)
        await asyncio.sleep(0.1)  # an expired lease (a crashed worker) is taken over
        assert await cp.acquire_lease("t1", "run-c", "worker-c", ttl=5)


async def test_a_run_is_taken_over_only_as_it_was_seen(schema: str) -> None:
    """claim_run compares owner and status: of two workers taking a run over one wins, and
    a run that ended after a worker saw it running is never run again."""
    async with PgCheckpointer(PG_DSN, schema=schema) as cp:
        seen = RunRecord("r1", "t1", "alice", status="running", owner="dead", background=True)
        await cp.put_run(seen)
        ended = RunRecord.from_dict({**seen.to_dict(), "status": "success"})
        await cp.put_run(ended)  # the run ended after the sweep read it
        mine = RunRecord.from_dict({**seen.to_dict(), "owner": "me"})
        assert not await cp.claim_run(mine, "dead", "running")
        assert (await cp.get_run("r1")) == ended
        await cp.put_run(seen)
        assert await cp.claim_run(mine, "dead", "running")
        theirs = RunRecord.from_dict({**seen.to_dict(), "owner": "other"})
        assert not await cp.claim_run(theirs, "dead", "running")
        assert await cp.run_status("r1") == "running" and (await cp.get_run("r1")) == mine
        assert [r.run_id for r in await cp.live_runs()] == ["r1"]


async def test_a_connection_in_a_broken_protocol_state_is_discarded_and_the_call_retried(
    schema: str,
) -> None:
    """After a Postgres restart asyncpg may raise InternalClientError ("cannot switch to
    state ...; another operation is in progress") before sending anything: that connection
    is thrown away and the call goes out again on a fresh one."""
    cp = PgCheckpointer(PG_DSN, schema=schema, min_size=1, max_size=1)
    await cp.setup()
    used: list[int] = []  # the server process behind each connection

    async def query(conn: asyncpg.Connection) -> int:
        used.append(conn.get_server_pid())
        if len(used) == 1:
            raise asyncpg.exceptions.InternalClientError(
                "cannot switch to state 12; another operation (2) is in progress"
            )
        return int(await conn.fetchval("SELECT 7"))

    try:
        assert await cp._run(query) == 7
        assert len(used) == 2 and used[0] != used[1]  # the pool's one connection was replaced
        await cp.ping()  # the pool is healthy afterwards
    finally:
        await cp.close()


async def claimed_texts(cp: PgCheckpointer, thread_id: str, run_id: str) -> list[str]:
    """The conversation a claim reads (the lease let go again after)."""
    claim = await cp.claim_thread(thread_id, "alice", run_id, "worker", ttl=5, load=True)
    assert claim.taken and claim.loaded and claim.owner in (None, "alice")
    await cp.release_lease(thread_id, run_id)
    return [m.text for m in claim.snapshot.messages] if claim.snapshot else []


async def test_a_claim_reads_only_new_messages_and_never_a_stale_conversation(
    schema: str,
) -> None:
    """claim_thread takes the lease and reads the state in one call; a worker that knows the
    conversation up to a checkpoint gets only what came after it, while that checkpoint
    exists: writes by another worker and a thread cut back (rollback) are seen."""
    a = PgCheckpointer(PG_DSN, schema=schema)
    b = PgCheckpointer(PG_DSN, schema=schema)
    await a.setup()
    await b.setup()
    try:
        assert await claimed_texts(a, "t1", "r0") == []
        await turn(a, "t1", 1, "one")
        await turn(a, "t1", 2, "two")
        assert await claimed_texts(a, "t1", "r1") == ["one", "two"]
        known = a.conversations.get("t1")
        assert known is not None and len(known.texts) == 2
        await turn(b, "t1", 3, "three")  # another worker
        assert await claimed_texts(a, "t1", "r2") == ["one", "two", "three"]
        await turn(a, "t1", 4, "four")  # this worker's write extends what it knows
        assert len(a.conversations.get("t1").texts) == 4  # type: ignore[union-attr]
        assert await claimed_texts(a, "t1", "r3") == ["one", "two", "three", "four"]
        await b.truncate_thread("t1", step=3)  # cut back to two messages, elsewhere
        await turn(b, "t1", 3, "3b")
        await turn(b, "t1", 4, "4b")
        assert await claimed_texts(a, "t1", "r4") == ["one", "two", "3b", "4b"]
        snapshot = await a.get_snapshot("t1")
        assert snapshot is not None and [m.text for m in snapshot.messages] == [
            "one", "two", "3b", "4b",
        ]  # fmt: skip
        await b.delete_thread("t1")
        await turn(b, "t1", 1, "again")  # the same id, a new conversation
        assert await claimed_texts(a, "t1", "r5") == ["again"]
    finally:
        await a.close()
        await b.close()


async def test_a_claim_on_another_users_or_a_held_thread_takes_nothing(schema: str) -> None:
    async with PgCheckpointer(PG_DSN, schema=schema) as cp:
        assert isinstance(cp, PgCheckpointer)
        await turn(cp, "t1", 1, "mine")  # alice's
        theirs = await cp.claim_thread("t1", "mallory", "r1", "w", ttl=5, load=True)
        assert (theirs.owner, theirs.taken, theirs.snapshot) == ("alice", False, None)
        held = await cp.claim_thread("t1", "alice", "r2", "w2", ttl=5, load=True)
        assert held.taken
        again = await cp.claim_thread("t1", "alice", "r3", "w3", ttl=5, load=True)
        assert (again.taken, again.holder) == (False, ("r2", "w2"))
        assert await cp.request_stop("t1")  # the holder's lease, not mallory's
