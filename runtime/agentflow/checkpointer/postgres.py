"""Postgres checkpointer: asyncpg, shared by every worker and replica.

Postgres is the source of truth. Tables live in their own schema (default `agentflow`),
created by versioned migrations run under a transaction-scoped advisory lock, so N workers
starting together migrate exactly once. Every query names its schema and no session state is
used, so it works through PgBouncer in transaction mode (`pgbouncer=True` also turns off
asyncpg's named prepared statements).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg

from agentflow.checkpointer.conversations import ConversationCache
from agentflow.checkpointer.pg_schema import load_json, migrations, pack, unpack, unpack_json
from agentflow.checkpointer.redis import RedisLink, SnapshotCache
from agentflow.graph.errors import CheckpointerError
from agentflow.graph.messages import Message
from agentflow.graph.storage import (
    Checkpoint,
    Checkpointer,
    ConflictError,
    IdempotencyRecord,
    Page,
    RunRecord,
    ThreadClaim,
    ThreadInfo,
    ThreadQuery,
    ThreadSnapshot,
    check_limit,
    decode_cursor,
    dumps,
    encode_cursor,
    title_from,
)

logger = logging.getLogger("agentflow.checkpointer.postgres")
R = TypeVar("R")
CONNECT_ATTEMPTS = 5
BROKEN_CONNECTION_ATTEMPTS = 2
TRANSIENT = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
)


class PgCheckpointer(Checkpointer):
    """Durable, shared state in Postgres."""

    durable = True

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "agentflow",
        min_size: int = 2,
        max_size: int = 10,
        pgbouncer: bool = False,
        command_timeout: float = 30.0,
        connect_timeout: float = 5.0,
        max_inactive_lifetime: float = 300.0,
        redis_url: str | None = None,
        connection_init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
    ) -> None:
        """`connection_init` runs on each new pooled connection after agentflow's own setup
        (e.g. `conn.add_query_logger(...)` to see every statement)."""
        self.dsn = dsn
        self.connection_init = connection_init
        self.redis: RedisLink | None = (
            RedisLink(redis_url, prefix=f"agentflow:{schema}") if redis_url else None
        )
        self._cache = SnapshotCache(self.redis) if self.redis else None
        self.schema = schema
        self.s = '"' + schema.replace('"', '""') + '"'
        self.min_size = min_size
        self.max_size = max_size
        self.pgbouncer = pgbouncer
        self.command_timeout = command_timeout
        self.connect_timeout = connect_timeout
        self.max_inactive_lifetime = max_inactive_lifetime
        self._pool: asyncpg.Pool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._setup_lock = asyncio.Lock()
        # The messages of threads this process read or wrote lately (a turn reads only
        # what came after them).
        self.conversations = ConversationCache()
        # Leases a run's last step lets go of (thread id -> run id), and those it did.
        self._release_with_last_step: dict[str, str] = {}
        self._released: set[tuple[str, str]] = set()

    def __repr__(self) -> str:
        return f"<PgCheckpointer schema={self.schema!r} pool={self.min_size}..{self.max_size}>"

    # -- connection lifecycle -------------------------------------------------------------

    async def setup(self) -> None:
        async with self._setup_lock:
            if self._pool is not None:
                return
            pool = await self._connect()
            try:
                await self._migrate(pool)
            except BaseException:
                await pool.close()
                raise
            self._pool = pool
            self._loop = asyncio.get_running_loop()
            if self.redis is not None:
                epoch = await pool.fetchval(f"SELECT value FROM {self.s}.meta WHERE key = 'epoch'")
                self.redis.prefix = f"agentflow:{self.schema}:{epoch[:12]}"
                await self.redis.connect()

    async def _connect(self) -> asyncpg.Pool:
        """Create the pool, retrying a few times with backoff; a clear error at the end."""
        delay = 0.2
        last: BaseException | None = None
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            try:
                pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=self.min_size,
                    max_size=self.max_size,
                    command_timeout=self.command_timeout,
                    timeout=self.connect_timeout,
                    max_inactive_connection_lifetime=self.max_inactive_lifetime,
                    statement_cache_size=0 if self.pgbouncer else 100,
                    init=self._init_connection,
                    reset=_keep_connection,
                )
                assert pool is not None
                return pool
            except (asyncpg.exceptions.InvalidPasswordError,
                    asyncpg.exceptions.InvalidCatalogNameError) as exc:  # fmt: skip
                raise CheckpointerError(
                    f"Postgres refused the connection: {type(exc).__name__}: {exc}. Check the "
                    "user, password and database name in DATABASE_URL."
                ) from None
            except (*TRANSIENT, asyncpg.PostgresError) as exc:
                last = exc
                if attempt < CONNECT_ATTEMPTS:
                    logger.warning(
                        "Postgres not reachable (attempt %d/%d): %s; retrying in %.1fs",
                        attempt, CONNECT_ATTEMPTS, type(exc).__name__, delay,
                    )  # fmt: skip
                    await asyncio.sleep(delay)
                    delay *= 2
        raise CheckpointerError(
            f"cannot connect to Postgres after {CONNECT_ATTEMPTS} attempts "
            f"({type(last).__name__}: {last}). Check DATABASE_URL and that the server is up."
        ) from None

    async def _schema_version(self, pool: asyncpg.Pool) -> int:
        """The schema's version, read without a lock (0 while it does not exist)."""
        try:
            version = await pool.fetchval(f"SELECT max(version) FROM {self.s}.schema_version")
        except (asyncpg.exceptions.UndefinedTableError, asyncpg.exceptions.InvalidSchemaNameError):
            return 0
        return int(version or 0)

    async def _migrate(self, pool: asyncpg.Pool) -> None:
        """Bring the schema to this version, once: a process that finds it current (every
        worker after the first start) takes no lock and changes nothing."""
        steps = migrations(self.s)
        if await self._schema_version(pool) == len(steps):
            return
        logger.info("migrating schema %s", self.schema)
        lock_id = zlib.crc32(f"agentflow-migrate:{self.schema}".encode())
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_id)
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.s}")
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self.s}.schema_version ("
                "version integer PRIMARY KEY, applied_at double precision NOT NULL)"
            )
            current = await conn.fetchval(
                f"SELECT coalesce(max(version), 0) FROM {self.s}.schema_version"
            )
            if current > len(steps):
                raise CheckpointerError(
                    f"schema {self.schema!r} is at version {current}, newer than this agentflow "
                    f"knows ({len(steps)}); upgrade agentflow"
                )
            for version in range(current + 1, len(steps) + 1):
                await conn.execute(steps[version - 1])
                await conn.execute(
                    f"INSERT INTO {self.s}.schema_version (version, applied_at) VALUES ($1, $2)",
                    version,
                    time.time(),
                )
                logger.info("migrated schema %s to version %d", self.schema, version)

    async def _init_connection(self, conn: asyncpg.Connection) -> None:
        await conn.set_type_codec("jsonb", encoder=str, decoder=json.loads, schema="pg_catalog")
        if self.connection_init is not None:
            await self.connection_init(conn)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        self._loop = None
        if pool is not None:
            await pool.close()
        if self.redis is not None:
            await self.redis.close()

    async def _run(self, fn: Callable[[asyncpg.Connection], Awaitable[R]]) -> R:
        if self._pool is None:
            await self.setup()
        assert self._pool is not None
        for attempt in range(1, BROKEN_CONNECTION_ATTEMPTS + 1):
            try:
                async with self._pool.acquire() as conn:
                    try:
                        return await fn(conn)
                    except asyncpg.exceptions.InternalClientError:
                        conn.terminate()  # its protocol state is lost: never reuse it
                        raise
            except (CheckpointerError, ConflictError):
                raise
            except asyncpg.exceptions.InternalClientError as exc:
                # e.g. "cannot switch to state ...; another operation is in progress" on a
                # connection that outlived a Postgres restart: the request never reached
                # the server, so it is safe to send again on a fresh connection.
                if attempt < BROKEN_CONNECTION_ATTEMPTS:
                    logger.warning("discarded a broken Postgres connection: %s", exc)
                    continue
                raise CheckpointerError(
                    f"Postgres connections keep breaking ({type(exc).__name__}); retry shortly"
                ) from exc
            except (*TRANSIENT, asyncpg.PostgresError) as exc:
                raise CheckpointerError(
                    f"Postgres is unavailable ({type(exc).__name__}); retry shortly"
                ) from exc
        raise AssertionError("unreachable")

    async def call(self, fn: Callable[[asyncpg.Connection], Awaitable[R]]) -> R:
        """Run `fn(connection)` with a pooled connection, with this store's handling of
        broken connections and errors (CheckpointerError). For code that keeps its own
        tables in this schema."""
        return await self._run(fn)

    def call_blocking(self, fn: Callable[[asyncpg.Connection], Awaitable[R]]) -> R:
        """`call` for synchronous code on another thread than the pool's event loop (the
        pool belongs to that loop, which must be running). Needs `setup()` done."""
        loop = self._loop
        if loop is None or self._pool is None:
            raise CheckpointerError(
                "the Postgres store is not set up: await its setup() on the event loop that "
                "will serve it before synchronous calls"
            )
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            raise CheckpointerError(
                "a synchronous Postgres call on the event loop's own thread would wait on "
                "itself forever; use the async API (ainvoke, aget_tuple, ...) there, or run "
                "the synchronous code in a thread (asyncio.to_thread)"
            )
        if not loop.is_running():
            raise CheckpointerError(
                "the event loop that owns the Postgres pool is not running, so a synchronous "
                "call cannot be served; keep that loop running (e.g. in a thread) or use the "
                "async API"
            )
        return asyncio.run_coroutine_threadsafe(self._run(fn), loop).result()

    async def ping(self) -> None:
        await self._run(lambda conn: conn.fetchval("SELECT 1"))

    # -- threads -------------------------------------------------------------------------

    async def create_thread(
        self,
        thread_id: str,
        user_id: str,
        *,
        metadata: dict[str, Any] | None = None,
        title: str | None = None,
    ) -> ThreadInfo:
        meta = dumps(metadata or {}, what="thread metadata")

        async def run(conn: asyncpg.Connection) -> ThreadInfo:
            now = time.time()
            await conn.execute(
                f"INSERT INTO {self.s}.threads (thread_id, user_id, title, metadata, "
                "created_at, updated_at) VALUES ($1, $2, $3, $4::jsonb, $5, $5) "
                "ON CONFLICT (thread_id) DO NOTHING",
                thread_id, user_id, title, meta, now,
            )  # fmt: skip
            info = await self._read_thread(conn, thread_id)
            assert info is not None
            return info

        return await self._run(run)

    async def get_thread(self, thread_id: str) -> ThreadInfo | None:
        return await self._run(lambda conn: self._read_thread(conn, thread_id))

    async def _read_thread(self, conn: asyncpg.Connection, thread_id: str) -> ThreadInfo | None:
        row = await conn.fetchrow(
            f"SELECT {_THREAD_COLUMNS} FROM {self.s}.threads WHERE thread_id = $1", thread_id
        )
        return _thread_from_row(row) if row else None

    async def list_threads(
        self, user_id: str, *, limit: int = 20, cursor: str | None = None
    ) -> Page[ThreadInfo]:
        check_limit(limit)
        after = decode_cursor(cursor) if cursor else None

        async def run(conn: asyncpg.Connection) -> Page[ThreadInfo]:
            if after is None:
                rows = await conn.fetch(
                    f"SELECT {_THREAD_COLUMNS} FROM {self.s}.threads WHERE user_id = $1 "
                    "ORDER BY updated_at DESC, thread_id DESC LIMIT $2",
                    user_id, limit + 1,
                )  # fmt: skip
            else:
                rows = await conn.fetch(
                    f"SELECT {_THREAD_COLUMNS} FROM {self.s}.threads WHERE user_id = $1 "
                    "AND (updated_at, thread_id) < ($2, $3) "
                    "ORDER BY updated_at DESC, thread_id DESC LIMIT $4",
                    user_id, after[0], after[1], limit + 1,
                )  # fmt: skip
            infos = [_thread_from_row(r) for r in rows]
            more = len(infos) > limit
            infos = infos[:limit]
            last = infos[-1] if more else None
            return Page(infos, encode_cursor(last.updated_at, last.thread_id) if last else None)

        return await self._run(run)

    async def search_threads(self, user_id: str, query: ThreadQuery) -> Page[ThreadInfo]:
        sql, args = self.search_sql(user_id, query)

        async def run(conn: asyncpg.Connection) -> Page[ThreadInfo]:
            # An unnamed statement, planned for these values: a cached one switches to a
            # generic plan after five runs, which reads all of a user's threads and sorts
            # them when its filters are rare (~4 ms at 10,000 threads, growing with them).
            statement = await conn.prepare(sql, name="")
            return query.page([_thread_from_row(r) for r in await statement.fetch(*args)])

        return await self._run(run)

    def search_sql(self, user_id: str, query: ThreadQuery) -> tuple[str, list[Any]]:
        """The statement `search_threads` runs, with its arguments (InvalidCursorError for a
        bad cursor). Served by threads_metadata (GIN), threads_by_user (updated_at) and
        threads_by_user_created."""
        after = query.after()
        args: list[Any] = [user_id]

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        sql = f"SELECT {_THREAD_COLUMNS} FROM {self.s}.threads WHERE user_id = $1"
        if query.metadata:
            sql += f" AND metadata @> {arg(dumps(query.metadata, what='a metadata filter'))}"
            sql += "::jsonb"
        if query.status is not None:
            sql += f" AND status = {arg(query.status)}"
        for column, op, value in query.bounds():
            sql += f" AND {column} {op} {arg(value)}"
        order = "DESC" if query.sort_order == "desc" else "ASC"
        if after is not None:
            compare = "<" if order == "DESC" else ">"
            sql += f" AND ({query.sort_by}, thread_id) {compare} ({arg(after[0])}, {arg(after[1])})"
        sql += f" ORDER BY {query.sort_by} {order}, thread_id {order} LIMIT {arg(query.limit + 1)}"
        return sql, args

    async def update_thread_metadata(
        self, thread_id: str, patch: dict[str, Any]
    ) -> ThreadInfo | None:
        removed = [key for key, value in patch.items() if value is None]
        kept = dumps({k: v for k, v in patch.items() if v is not None}, what="thread metadata")

        async def run(conn: asyncpg.Connection) -> ThreadInfo | None:
            row = await conn.fetchrow(
                f"UPDATE {self.s}.threads SET metadata = (metadata - $2::text[]) || $3::jsonb, "
                f"updated_at = greatest(updated_at, $4) WHERE thread_id = $1 "
                f"RETURNING {_THREAD_COLUMNS}",
                thread_id, removed, kept, time.time(),
            )  # fmt: skip
            return _thread_from_row(row) if row else None

        return await self._run(run)

    async def delete_thread(self, thread_id: str) -> bool:
        async def run(conn: asyncpg.Connection) -> bool:
            async with conn.transaction():
                status = await conn.execute(
                    f"DELETE FROM {self.s}.threads WHERE thread_id = $1", thread_id
                )
                await conn.execute(f"DELETE FROM {self.s}.messages WHERE thread_id = $1", thread_id)
                await conn.execute(
                    f"DELETE FROM {self.s}.checkpoints WHERE thread_id = $1", thread_id
                )
                await conn.execute(
                    f"DELETE FROM {self.s}.tool_results WHERE thread_id = $1", thread_id
                )
                await conn.execute(
                    f"DELETE FROM {self.s}.run_events WHERE run_id IN "
                    f"(SELECT run_id FROM {self.s}.runs WHERE thread_id = $1)",
                    thread_id,
                )
                await conn.execute(f"DELETE FROM {self.s}.runs WHERE thread_id = $1", thread_id)
            return bool(status != "DELETE 0")

        deleted = await self._run(run)
        self.conversations.forget(thread_id)
        if self._cache is not None:
            await self._cache.forget(thread_id)
        return deleted

    # -- checkpoints and messages -----------------------------------------------------------

    async def put(
        self, checkpoint: Checkpoint, messages: Sequence[Message] = (), *, user_id: str
    ) -> None:
        record = checkpoint.to_record()
        del record["thread_id"], record["checkpoint_id"]  # columns of their own
        encoded = pack(dumps(record, what="the state"))
        texts = [dumps(m.to_dict(), what="a message") for m in messages]
        rows = [pack(text) for text in texts]
        title = title_from(messages)
        thread_id = checkpoint.thread_id

        # A run's last write (its status is final) may also let its lease go.
        release = self._release_with_last_step.get(thread_id)
        if checkpoint.status == "running" or release != checkpoint.run_id:
            release = None
        args: list[Any] = [
            thread_id, user_id, checkpoint.step, checkpoint.checkpoint_id, encoded, rows,
            checkpoint.message_count, checkpoint.status, title, time.time(),
        ]  # fmt: skip
        if release is None:
            sql = f"SELECT {self.s}.put_step($1, $2, $3, $4, $5, $6::bytea[], $7, $8, $9, $10)"
        else:
            sql = (
                f"SELECT {self.s}.put_step_release($1, $2, $3, $4, $5, $6::bytea[], $7, $8, $9, "
                "$10, $11)"
            )
            args.append(release)

        async def run(conn: asyncpg.Connection) -> None:
            # One round trip: the put_step function does the whole step atomically.
            try:
                await conn.execute(sql, *args)
            except asyncpg.SerializationError as exc:
                raise ConflictError(f"{exc}: it was changed by another run") from None
            except asyncpg.UniqueViolationError:
                raise ConflictError(
                    f"thread {thread_id!r} already has step {checkpoint.step}: it was "
                    "changed by another run"
                ) from None

        await self._run(run)
        self.conversations.extend(
            thread_id, checkpoint.step, checkpoint.checkpoint_id, checkpoint.message_count,
            [text.encode() for text in texts],
        )  # fmt: skip
        if release is not None:
            del self._release_with_last_step[thread_id]
            self._released.add((thread_id, release))

    async def get_checkpoint(
        self, thread_id: str, checkpoint_id: str | None = None
    ) -> Checkpoint | None:
        return await self._run(lambda conn: self._read_checkpoint(conn, thread_id, checkpoint_id))

    async def _read_checkpoint(
        self, conn: asyncpg.Connection, thread_id: str, checkpoint_id: str | None
    ) -> Checkpoint | None:
        if checkpoint_id is None:
            row = await conn.fetchrow(
                f"SELECT {_CHECKPOINT_COLUMNS} FROM {self.s}.checkpoints WHERE thread_id = $1 "
                "ORDER BY step DESC LIMIT 1",
                thread_id,
            )
        else:
            row = await conn.fetchrow(
                f"SELECT {_CHECKPOINT_COLUMNS} FROM {self.s}.checkpoints "
                "WHERE thread_id = $1 AND checkpoint_id = $2",
                thread_id, checkpoint_id,
            )  # fmt: skip
        return _checkpoint_from_row(row) if row is not None else None

    async def get_snapshot(
        self, thread_id: str, checkpoint_id: str | None = None
    ) -> ThreadSnapshot | None:
        use_cache = self._cache is not None and checkpoint_id is None
        if use_cache:
            assert self._cache is not None
            cached = await self._cache.get(thread_id)
            # Trust a hit only if it is Postgres's latest checkpoint (one index probe): Redis
            # may have missed writes while it was down. The win is not reloading messages.
            if cached is not None and cached.checkpoint.checkpoint_id == await self._run(
                lambda conn: conn.fetchval(
                    f"SELECT checkpoint_id FROM {self.s}.checkpoints WHERE thread_id = $1 "
                    "ORDER BY step DESC LIMIT 1",
                    thread_id,
                )
            ):
                return cached

        async def run(conn: asyncpg.Connection) -> ThreadSnapshot | None:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                checkpoint = await self._read_checkpoint(conn, thread_id, checkpoint_id)
                if checkpoint is None:
                    return None
                messages = await self._read_messages(conn, thread_id, 0, checkpoint.message_count)
            return ThreadSnapshot(checkpoint, messages)

        snapshot = await self._run(run)
        if use_cache and snapshot is not None:
            assert self._cache is not None
            await self._cache.store(snapshot)
        return snapshot

    async def get_messages(
        self, thread_id: str, *, offset: int = 0, limit: int | None = None
    ) -> list[Message]:
        return await self._run(lambda conn: self._read_messages(conn, thread_id, offset, limit))

    async def _read_messages(
        self, conn: asyncpg.Connection, thread_id: str, offset: int, limit: int | None
    ) -> list[Message]:
        rows = await conn.fetch(
            f"SELECT data FROM {self.s}.messages WHERE thread_id = $1 AND seq >= $2 "
            "ORDER BY seq LIMIT $3",
            thread_id, offset, limit,
        )  # fmt: skip
        return [Message.from_dict(unpack(r["data"])) for r in rows]

    async def list_history(
        self, thread_id: str, *, limit: int = 20, before: str | None = None
    ) -> list[Checkpoint]:
        check_limit(limit)

        async def run(conn: asyncpg.Connection) -> list[Checkpoint]:
            if before is None:
                rows = await conn.fetch(
                    f"SELECT {_CHECKPOINT_COLUMNS} FROM {self.s}.checkpoints WHERE thread_id = $1 "
                    "ORDER BY step DESC LIMIT $2",
                    thread_id, limit,
                )  # fmt: skip
            else:
                rows = await conn.fetch(
                    f"SELECT {_CHECKPOINT_COLUMNS} FROM {self.s}.checkpoints "
                    "WHERE thread_id = $1 AND step < "
                    f"(SELECT step FROM {self.s}.checkpoints WHERE thread_id = $1 "
                    "AND checkpoint_id = $2) ORDER BY step DESC LIMIT $3",
                    thread_id, before, limit,
                )  # fmt: skip
            return [_checkpoint_from_row(r) for r in rows]

        return await self._run(run)

    # -- recorded tool results (replay-safe tool calls) ------------------------------------

    async def put_tool_result(self, thread_id: str, key: str, message: Message) -> None:
        data = pack(dumps(message.to_dict(), what="a tool result"))

        async def run(conn: asyncpg.Connection) -> None:
            await conn.execute(
                f"INSERT INTO {self.s}.tool_results (thread_id, key, data) VALUES ($1, $2, $3) "
                "ON CONFLICT (thread_id, key) DO UPDATE SET data = excluded.data",
                thread_id, key, data,
            )  # fmt: skip

        await self._run(run)

    async def get_tool_results(self, thread_id: str, keys: Sequence[str]) -> dict[str, Message]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}

        async def run(conn: asyncpg.Connection) -> dict[str, Message]:
            rows = await conn.fetch(
                f"SELECT key, data FROM {self.s}.tool_results "
                "WHERE thread_id = $1 AND key = ANY($2::text[])",
                thread_id, wanted,
            )  # fmt: skip
            return {r["key"]: Message.from_dict(unpack(r["data"])) for r in rows}

        return await self._run(run)

    # -- idempotency ---------------------------------------------------------------------

    async def get_idempotent(self, user_id: str, key: str) -> IdempotencyRecord | None:
        # Fast path: finished records never change before they expire, and Redis drops them
        # then; claims in progress are never cached.
        redis_key = self.redis.key("idem", user_id, key) if self.redis else ""
        if self.redis is not None:
            raw = await self.redis.call(lambda r: r.get(redis_key))
            if raw is not None:
                return IdempotencyRecord.from_dict(json.loads(raw))

        async def run(conn: asyncpg.Connection) -> IdempotencyRecord | None:
            data = await conn.fetchval(
                f"SELECT data FROM {self.s}.idempotency "
                "WHERE user_id = $1 AND key = $2 AND expires_at > $3",
                user_id, key, time.time(),
            )  # fmt: skip
            return IdempotencyRecord.from_dict(json.loads(data)) if data is not None else None

        record = await self._run(run)
        if record is not None:
            await self._remember_idempotent(record)
        return record

    async def _remember_idempotent(self, record: IdempotencyRecord) -> None:
        ttl = int(record.expires_at - time.time())
        if self.redis is not None and ttl > 0 and record.state == "done":
            redis_key = self.redis.key("idem", record.user_id, record.key)
            payload = json.dumps(record.to_dict(), separators=(",", ":"))
            await self.redis.call(lambda r: r.set(redis_key, payload, ex=ttl))

    async def put_idempotent(self, record: IdempotencyRecord) -> None:
        data = dumps(record.to_dict(), what="an idempotent response")

        async def run(conn: asyncpg.Connection) -> None:
            await self._purge_idempotent(conn)
            await conn.execute(
                f"INSERT INTO {self.s}.idempotency (user_id, key, data, expires_at, claim) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, key) DO UPDATE SET "
                "data = excluded.data, expires_at = excluded.expires_at, claim = excluded.claim",
                record.user_id, record.key, data, record.expires_at, record.claim,
            )  # fmt: skip

        await self._run(run)
        await self._remember_idempotent(record)

    async def _purge_idempotent(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            f"DELETE FROM {self.s}.idempotency WHERE ctid IN (SELECT ctid FROM "
            f"{self.s}.idempotency WHERE expires_at <= $1 LIMIT 100)",
            time.time(),
        )

    async def claim_idempotent(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        data = dumps(record.to_dict(), what="an idempotent response")

        async def run(conn: asyncpg.Connection) -> IdempotencyRecord | None:
            while True:  # the existing record may expire between the two statements
                claimed = await conn.fetchval(
                    f"INSERT INTO {self.s}.idempotency (user_id, key, data, expires_at, claim) "
                    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, key) DO UPDATE SET "
                    "data = excluded.data, expires_at = excluded.expires_at, "
                    f"claim = excluded.claim WHERE {self.s}.idempotency.expires_at <= $6 "
                    "RETURNING true",
                    record.user_id, record.key, data, record.expires_at, record.claim,
                    time.time(),
                )  # fmt: skip
                if claimed:
                    await self._purge_idempotent(conn)
                    return None
                existing = await conn.fetchval(
                    f"SELECT data FROM {self.s}.idempotency WHERE user_id = $1 AND key = $2",
                    record.user_id, record.key,
                )  # fmt: skip
                if existing is not None:
                    return IdempotencyRecord.from_dict(json.loads(existing))

        return await self._run(run)

    async def replace_idempotent(self, record: IdempotencyRecord, claim: str) -> bool:
        data = dumps(record.to_dict(), what="an idempotent response")

        async def run(conn: asyncpg.Connection) -> bool:
            status = await conn.execute(
                f"UPDATE {self.s}.idempotency SET data = $3, expires_at = $4, claim = $5 "
                "WHERE user_id = $1 AND key = $2 AND claim = $6 AND expires_at > $7",
                record.user_id, record.key, data, record.expires_at, record.claim, claim,
                time.time(),
            )  # fmt: skip
            return bool(status == "UPDATE 1")

        replaced = await self._run(run)
        if replaced:
            await self._remember_idempotent(record)
        return replaced

    # -- runs as resources, and their event frames ------------------------------------------

    async def put_run(self, record: RunRecord) -> None:
        data = dumps(record.to_dict(), what="a run")
        sql = (
            f"INSERT INTO {self.s}.runs (run_id, thread_id, status, owner, background, "
            "created_at, ended_at, data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
            "ON CONFLICT (run_id) DO UPDATE SET status = excluded.status, "
            "owner = excluded.owner, ended_at = excluded.ended_at, data = excluded.data"
        )
        args = (
            record.run_id, record.thread_id, record.status, record.owner, record.background,
            record.created_at, record.ended_at, data,
        )  # fmt: skip
        await self._run(lambda conn: conn.execute(sql, *args))

    async def claim_run(self, record: RunRecord, owner: str | None, status: str) -> bool:
        """Store `record` only if the stored run's owner and status are still `owner` and
        `status` (compare and set: of two workers taking over a run, one wins, and a run that
        ended meanwhile is never taken)."""
        data = dumps(record.to_dict(), what="a run")
        sql = (
            f"UPDATE {self.s}.runs SET status = $2, owner = $3, ended_at = $4, data = $5 "
            "WHERE run_id = $1 AND owner IS NOT DISTINCT FROM $6 AND status = $7"
        )
        args = (record.run_id, record.status, record.owner, record.ended_at, data, owner, status)
        result = await self._run(lambda conn: conn.execute(sql, *args))
        return bool(result == "UPDATE 1")

    async def run_status(self, run_id: str) -> str | None:
        sql = f"SELECT status FROM {self.s}.runs WHERE run_id = $1"
        status = await self._run(lambda conn: conn.fetchval(sql, run_id))
        return str(status) if status is not None else None

    async def delete_run(self, run_id: str) -> None:
        async def delete(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                await conn.execute(f"DELETE FROM {self.s}.run_events WHERE run_id = $1", run_id)
                await conn.execute(f"DELETE FROM {self.s}.runs WHERE run_id = $1", run_id)

        await self._run(delete)

    async def get_run(self, run_id: str) -> RunRecord | None:
        sql = f"SELECT data FROM {self.s}.runs WHERE run_id = $1"
        data = await self._run(lambda conn: conn.fetchval(sql, run_id))
        return RunRecord.from_dict(json.loads(data)) if data is not None else None

    async def list_runs(
        self, thread_id: str, *, limit: int = 20, before: str | None = None
    ) -> list[RunRecord]:
        check_limit(limit)
        sql = f"SELECT data FROM {self.s}.runs WHERE thread_id = $1"
        args: list[Any] = [thread_id]
        if before is not None:
            sql += (
                f" AND (created_at, run_id) < (SELECT created_at, run_id FROM {self.s}.runs"
                " WHERE run_id = $3 AND thread_id = $1)"
            )
        sql += " ORDER BY created_at DESC, run_id DESC LIMIT $2"
        args.append(limit)
        if before is not None:
            args.append(before)
        rows = await self._run(lambda conn: conn.fetch(sql, *args))
        return [RunRecord.from_dict(json.loads(row["data"])) for row in rows]

    async def live_runs(self, limit: int = 100) -> list[RunRecord]:
        """Pending and running background runs, oldest first (for workers taking over or
        dequeuing)."""
        sql = (
            f"SELECT data FROM {self.s}.runs WHERE background "
            "AND status IN ('pending', 'running') ORDER BY created_at LIMIT $1"
        )
        rows = await self._run(lambda conn: conn.fetch(sql, limit))
        return [RunRecord.from_dict(json.loads(row["data"])) for row in rows]

    async def truncate_thread(self, thread_id: str, *, step: int) -> None:
        async def run(conn: asyncpg.Connection) -> None:
            async with conn.transaction():
                await conn.execute(
                    f"SELECT 1 FROM {self.s}.threads WHERE thread_id = $1 FOR UPDATE", thread_id
                )
                await conn.execute(
                    f"DELETE FROM {self.s}.checkpoints WHERE thread_id = $1 AND step >= $2",
                    thread_id, step,
                )  # fmt: skip
                last = await self._read_checkpoint(conn, thread_id, None)
                count = last.message_count if last else 0
                await conn.execute(
                    f"DELETE FROM {self.s}.messages WHERE thread_id = $1 AND seq >= $2",
                    thread_id, count,
                )  # fmt: skip
                await conn.execute(
                    f"UPDATE {self.s}.threads SET message_count = $2, status = $3, "
                    "updated_at = greatest(updated_at, $4) WHERE thread_id = $1",
                    thread_id, count, last.status if last else "idle", time.time(),
                )  # fmt: skip

        await self._run(run)
        self.conversations.forget(thread_id)
        if self._cache is not None:
            await self._cache.forget(thread_id)

    async def append_run_events(self, run_id: str, first_seq: int, frames: list[bytes]) -> None:
        """Store a run's SSE frames numbered from `first_seq` (one round trip)."""
        sql = (
            f"INSERT INTO {self.s}.run_events (run_id, seq, frame) "
            "SELECT $1, $2 + f.i - 1, f.frame FROM unnest($3::bytea[]) "
            "WITH ORDINALITY AS f(frame, i) ON CONFLICT DO NOTHING"
        )
        await self._run(lambda conn: conn.execute(sql, run_id, first_seq, frames))

    async def read_run_events(
        self, run_id: str, after: int, limit: int = 500
    ) -> list[tuple[int, bytes]]:
        """The run's stored frames after sequence number `after`, in order."""
        sql = (
            f"SELECT seq, frame FROM {self.s}.run_events WHERE run_id = $1 AND seq > $2 "
            "ORDER BY seq LIMIT $3"
        )
        rows = await self._run(lambda conn: conn.fetch(sql, run_id, after, limit))
        return [(row["seq"], bytes(row["frame"])) for row in rows]

    async def last_run_event(self, run_id: str) -> int:
        """The sequence number of the run's last stored frame (0 if none)."""
        sql = f"SELECT coalesce(max(seq), 0) FROM {self.s}.run_events WHERE run_id = $1"
        return int(await self._run(lambda conn: conn.fetchval(sql, run_id)))

    async def prune_run_events(self, ended_before: float) -> None:
        """Drop the frames of runs that ended before `ended_before` (their records stay)."""
        sql = (
            f"DELETE FROM {self.s}.run_events WHERE run_id IN (SELECT run_id FROM {self.s}.runs "
            "WHERE ended_at < $1)"
        )
        await self._run(lambda conn: conn.execute(sql, ended_before))

    # -- run leases: the cross-worker "one run per thread" lock of last resort ------------

    async def claim_thread(
        self, thread_id: str, user_id: str, run_id: str, owner: str, ttl: float, *, load: bool
    ) -> ThreadClaim:
        """Take the thread's lease for `run_id` (unless another user owns the thread or a
        live lease holds it) and, with `load`, read its latest snapshot: one round trip."""

        known = self.conversations.get(thread_id) if load else None

        async def run(conn: asyncpg.Connection) -> Any:
            now = time.time()
            return await conn.fetchrow(
                f"SELECT * FROM {self.s}.claim_thread($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                thread_id, user_id, run_id, owner, now + ttl, now, load,
                known.step if known else None, known.checkpoint_id if known else None,
                len(known.texts) if known else 0,
            )  # fmt: skip

        row = await self._run(run)
        owner_id = row["thread_user"]
        if not row["taken"]:
            holder = (row["holder_run"], row["holder_owner"]) if row["holder_run"] else None
            return ThreadClaim(owner_id, False, holder)
        if not load:
            return ThreadClaim(owner_id, True)
        if row["checkpoint_id"] is None:
            self.conversations.forget(thread_id)
            return ThreadClaim(owner_id, True, loaded=True)
        checkpoint = _checkpoint_from_row(row, thread_id)
        texts = [unpack_json(m) for m in row["messages"]]
        if row["first_seq"] and known is not None:
            texts = known.texts[: row["first_seq"]] + texts
        if len(texts) < checkpoint.message_count:  # cut back meanwhile: read it whole
            self.conversations.forget(thread_id)
            snapshot = await self.get_snapshot(thread_id)
            return ThreadClaim(owner_id, True, loaded=True, snapshot=snapshot)
        texts = texts[: checkpoint.message_count]
        self.conversations.remember(thread_id, checkpoint.step, checkpoint.checkpoint_id, texts)
        conversation = [Message.from_dict(load_json(text)) for text in texts]
        snapshot = ThreadSnapshot(checkpoint, conversation)
        return ThreadClaim(owner_id, True, loaded=True, snapshot=snapshot)

    def release_with_last_step(self, thread_id: str, run_id: str) -> None:
        """The run's last checkpoint write (a final status) lets its lease go too: one round
        trip fewer. `released_by_last_step` tells whether it did."""
        self._release_with_last_step[thread_id] = run_id

    def released_by_last_step(self, thread_id: str, run_id: str, *, forget: bool) -> bool:
        """Whether the run's last write let its lease go (`forget`: the run is over, drop
        what was kept about it)."""
        released = (thread_id, run_id) in self._released
        if forget:
            self._released.discard((thread_id, run_id))
            if self._release_with_last_step.get(thread_id) == run_id:
                del self._release_with_last_step[thread_id]
        return released

    async def acquire_lease(self, thread_id: str, run_id: str, owner: str, ttl: float) -> bool:
        """Take the thread's lease unless a live one exists (expired leases are taken over)."""

        async def run(conn: asyncpg.Connection) -> bool:
            now = time.time()
            row = await conn.fetchrow(
                f"INSERT INTO {self.s}.run_leases (thread_id, run_id, owner, expires_at) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT (thread_id) DO UPDATE SET "
                "run_id = excluded.run_id, owner = excluded.owner, "
                "expires_at = excluded.expires_at, stop_requested = false "
                f"WHERE {self.s}.run_leases.expires_at < $5 RETURNING run_id",
                thread_id, run_id, owner, now + ttl, now,
            )  # fmt: skip
            return row is not None

        return await self._run(run)

    async def renew_lease(self, thread_id: str, run_id: str, ttl: float) -> bool | None:
        """Extend the lease; returns whether a stop was requested, None if it was lost."""

        async def run(conn: asyncpg.Connection) -> bool | None:
            stop = await conn.fetchval(
                f"UPDATE {self.s}.run_leases SET expires_at = $3 "
                "WHERE thread_id = $1 AND run_id = $2 RETURNING stop_requested",
                thread_id, run_id, time.time() + ttl,
            )  # fmt: skip
            return None if stop is None else bool(stop)

        return await self._run(run)

    async def release_lease(self, thread_id: str, run_id: str) -> None:
        sql = f"DELETE FROM {self.s}.run_leases WHERE thread_id = $1 AND run_id = $2"
        await self._run(lambda conn: conn.execute(sql, thread_id, run_id))

    async def request_stop(self, thread_id: str) -> bool:
        """Flag the live lease of the thread for stopping; False if no run holds it."""

        async def run(conn: asyncpg.Connection) -> bool:
            found = await conn.fetchval(
                f"UPDATE {self.s}.run_leases SET stop_requested = true "
                "WHERE thread_id = $1 AND expires_at >= $2 RETURNING true",
                thread_id, time.time(),
            )  # fmt: skip
            return bool(found)

        return await self._run(run)

    async def live_leases(self, thread_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """The unexpired leases among `thread_ids`: thread id -> (run id, owner)."""
        if not thread_ids:
            return {}

        async def run(conn: asyncpg.Connection) -> dict[str, tuple[str, str]]:
            rows = await conn.fetch(
                f"SELECT thread_id, run_id, owner FROM {self.s}.run_leases "
                "WHERE thread_id = ANY($1::text[]) AND expires_at >= $2",
                list(thread_ids), time.time(),
            )  # fmt: skip
            return {r["thread_id"]: (r["run_id"], r["owner"]) for r in rows}

        return await self._run(run)

    async def leases_of(self, owner_prefix: str) -> list[tuple[str, str, str]]:
        """Every lease whose owner starts with `owner_prefix`: (thread id, run id, owner)."""

        async def run(conn: asyncpg.Connection) -> list[tuple[str, str, str]]:
            rows = await conn.fetch(
                f"SELECT thread_id, run_id, owner FROM {self.s}.run_leases "
                "WHERE starts_with(owner, $1)",
                owner_prefix,
            )
            return [(r["thread_id"], r["run_id"], r["owner"]) for r in rows]

        return await self._run(run)


async def _keep_connection(conn: asyncpg.Connection) -> None:
    """A connection goes back to the pool as it is: no query here sets session state,
    listens or holds advisory locks past its transaction, so asyncpg's default reset (one
    more round trip, and a transaction, on every release) has nothing to undo. asyncpg still
    rolls back a transaction left open."""


_CHECKPOINT_COLUMNS = "thread_id, checkpoint_id, data"


def _checkpoint_from_row(row: Any, thread_id: str | None = None) -> Checkpoint:
    data = unpack(row["data"])
    data["thread_id"] = thread_id or row["thread_id"]
    data["checkpoint_id"] = row["checkpoint_id"]
    return Checkpoint.from_dict(data)


_THREAD_COLUMNS = (
    "thread_id, user_id, title, metadata, status, message_count, created_at, updated_at"
)


def _thread_from_row(row: Any) -> ThreadInfo:
    return ThreadInfo(
        thread_id=row["thread_id"],
        user_id=row["user_id"],
        title=row["title"],
        metadata=row["metadata"],
        status=row["status"],
        message_count=row["message_count"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
