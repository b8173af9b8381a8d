"""Embedded durable checkpointer: stdlib sqlite3 in WAL mode, driven from one worker thread
so the event loop never blocks on disk. One process (one server worker) per file."""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from agentflow.graph.errors import CheckpointerError
from agentflow.graph.messages import Message
from agentflow.graph.storage import (
    Checkpoint,
    Checkpointer,
    ConflictError,
    IdempotencyRecord,
    Page,
    RunRecord,
    ThreadInfo,
    ThreadQuery,
    ThreadSnapshot,
    check_limit,
    decode_cursor,
    dumps,
    encode_cursor,
    json_contains,
    merge_metadata,
    title_from,
)
from agentflow.utils.config import DEFAULT_SQLITE_PATH

SCHEMA_VERSION = 1
WORKER_THREAD = "agentflow-sqlite"
R = TypeVar("R")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS threads (
    thread_id     TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    title         TEXT,
    metadata      TEXT NOT NULL DEFAULT '{}',
    status        TEXT NOT NULL DEFAULT 'idle',
    message_count INTEGER NOT NULL DEFAULT 0,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS threads_by_user
    ON threads (user_id, updated_at DESC, thread_id DESC);
CREATE INDEX IF NOT EXISTS threads_by_user_created
    ON threads (user_id, created_at DESC, thread_id DESC);
CREATE TABLE IF NOT EXISTS messages (
    thread_id TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    data      TEXT NOT NULL,
    PRIMARY KEY (thread_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    thread_id     TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL UNIQUE,
    data          TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS checkpoints_by_thread ON checkpoints (thread_id, id DESC);
CREATE TABLE IF NOT EXISTS idempotency (
    user_id    TEXT NOT NULL,
    key        TEXT NOT NULL,
    data       TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (user_id, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_expiry ON idempotency (expires_at);
CREATE TABLE IF NOT EXISTS runs (
    run_id     TEXT PRIMARY KEY,
    thread_id  TEXT NOT NULL,
    created_at REAL NOT NULL,
    data       TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS runs_by_thread ON runs (thread_id, created_at DESC, run_id DESC);
CREATE TABLE IF NOT EXISTS tool_results (
    thread_id TEXT NOT NULL,
    key       TEXT NOT NULL,
    data      TEXT NOT NULL,
    PRIMARY KEY (thread_id, key)
) WITHOUT ROWID;
-- LangGraph checkpoints (agentflow.checkpointer.langgraph.LangGraphSaver), as in Postgres.
CREATE TABLE IF NOT EXISTS lg_checkpoints (
    thread_id            TEXT NOT NULL,
    checkpoint_ns        TEXT NOT NULL DEFAULT '',
    checkpoint_id        TEXT NOT NULL,
    parent_checkpoint_id TEXT,
    type                 TEXT NOT NULL,
    checkpoint           BLOB NOT NULL,
    versions             TEXT NOT NULL,
    metadata             TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lg_blobs (
    thread_id     TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    channel       TEXT NOT NULL,
    version       TEXT NOT NULL,
    type          TEXT NOT NULL,
    blob          BLOB,
    PRIMARY KEY (thread_id, checkpoint_ns, channel, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lg_writes (
    thread_id     TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    checkpoint_id TEXT NOT NULL,
    task_id       TEXT NOT NULL,
    idx           INTEGER NOT NULL,
    channel       TEXT NOT NULL,
    type          TEXT NOT NULL,
    blob          BLOB NOT NULL,
    task_path     TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
) WITHOUT ROWID;
-- Store items (agentflow.checkpointer.items), as in Postgres: a user's JSON values by
-- namespace (labels joined by ".") and key; ttl in minutes, expires_at in epoch seconds.
CREATE TABLE IF NOT EXISTS store_items (
    user_id    TEXT NOT NULL,
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    ttl        REAL,
    expires_at REAL,
    PRIMARY KEY (user_id, namespace, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS store_items_by_update ON store_items (user_id, updated_at DESC);
CREATE INDEX IF NOT EXISTS store_items_expiry ON store_items (expires_at)
    WHERE expires_at IS NOT NULL;
"""


class SqliteCheckpointer(Checkpointer):
    """Durable state in one SQLite file (default `.agentflow/state.db`)."""

    durable = True

    def __init__(self, path: str | Path = DEFAULT_SQLITE_PATH) -> None:
        self.path = Path(path)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._setup_lock = asyncio.Lock()

    async def setup(self) -> None:
        async with self._setup_lock:
            if self._conn is not None:
                return
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=WORKER_THREAD)
            try:
                self._conn = await self._call_raw(self._open)
            except BaseException:
                self._executor.shutdown(wait=False)
                self._executor = None
                raise

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        except (OSError, sqlite3.Error) as exc:
            raise CheckpointerError(
                f"cannot open the SQLite state file {self.path}: {exc}. Check that the "
                "directory exists and is writable, or set another path."
            ) from None
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=10000")
            conn.create_function(
                "agentflow_json_contains", 2, _sql_json_contains, deterministic=True
            )
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise CheckpointerError(
                    f"{self.path} was written by a newer agentflow (schema {version}, this "
                    f"version knows {SCHEMA_VERSION}); upgrade agentflow or use another file"
                )
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise CheckpointerError(
                f"{self.path} is not a usable agentflow state file: {exc}. Move it away "
                "to start fresh."
            ) from None
        return conn

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await self._call_raw(conn.close)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def _call_raw(self, fn: Callable[[], R]) -> R:
        assert self._executor is not None
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _run(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        if self._conn is None:
            await self.setup()
        conn = self._conn
        assert conn is not None
        return await self._call_raw(functools.partial(self._guarded, fn, conn))

    def _guarded(self, fn: Callable[[sqlite3.Connection], R], conn: sqlite3.Connection) -> R:
        try:
            return fn(conn)
        except sqlite3.Error as exc:
            raise CheckpointerError(f"SQLite error on {self.path}: {exc}") from exc

    async def call(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        """Run `fn(connection)` on the store's worker thread (SQLite errors become
        CheckpointerError). For code that keeps its own tables in this file."""
        return await self._run(fn)

    def call_blocking(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        """`call` for synchronous code: waits on the worker thread. Needs `setup()` done."""
        conn, executor = self._conn, self._executor
        if conn is None or executor is None:
            raise CheckpointerError(
                f"the SQLite store {self.path} is not open: await its setup() (or "
                "asyncio.run(store.setup())) before synchronous calls"
            )
        if threading.current_thread().name.startswith(WORKER_THREAD):
            raise CheckpointerError(
                "a synchronous SQLite call from the store's own worker thread would wait on "
                "itself forever; call it from another thread"
            )
        return executor.submit(self._guarded, fn, conn).result()

    async def create_thread(
        self,
        thread_id: str,
        user_id: str,
        *,
        metadata: dict[str, Any] | None = None,
        title: str | None = None,
    ) -> ThreadInfo:
        meta = dumps(metadata or {}, what="thread metadata")

        def run(conn: sqlite3.Connection) -> ThreadInfo:
            now = time.time()
            conn.execute(
                "INSERT OR IGNORE INTO threads (thread_id, user_id, title, metadata, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (thread_id, user_id, title, meta, now, now),
            )
            info = _read_thread(conn, thread_id)
            assert info is not None
            return info

        return await self._run(run)

    async def get_thread(self, thread_id: str) -> ThreadInfo | None:
        return await self._run(lambda conn: _read_thread(conn, thread_id))

    async def put(
        self, checkpoint: Checkpoint, messages: Sequence[Message] = (), *, user_id: str
    ) -> None:
        encoded = dumps(checkpoint.to_record(), what="the state")
        rows = [dumps(m.to_dict(), what="a message") for m in messages]
        title = title_from(messages)
        thread_id = checkpoint.thread_id

        def run(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                now = time.time()
                row = conn.execute(
                    "SELECT message_count FROM threads WHERE thread_id = ?", (thread_id,)
                ).fetchone()
                if row is None:
                    conn.execute(
                        "INSERT INTO threads (thread_id, user_id, created_at, updated_at) "
                        "VALUES (?, ?, ?, ?)",
                        (thread_id, user_id, now, now),
                    )
                stored = row[0] if row else 0
                if checkpoint.message_count != stored + len(rows):
                    raise ConflictError(
                        f"thread {thread_id!r} has {stored} messages, expected "
                        f"{checkpoint.message_count - len(rows)}: it was changed by another run"
                    )
                conn.executemany(
                    "INSERT INTO messages (thread_id, seq, data) VALUES (?, ?, ?)",
                    [(thread_id, stored + i, data) for i, data in enumerate(rows)],
                )
                conn.execute(
                    "INSERT INTO checkpoints (thread_id, checkpoint_id, data) VALUES (?, ?, ?)",
                    (thread_id, checkpoint.checkpoint_id, encoded),
                )
                conn.execute(
                    "UPDATE threads SET status = ?, message_count = ?, "
                    "title = COALESCE(title, ?), updated_at = MAX(updated_at, ?) "
                    "WHERE thread_id = ?",
                    (checkpoint.status, checkpoint.message_count, title, now, thread_id),
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

        await self._run(run)

    async def get_checkpoint(
        self, thread_id: str, checkpoint_id: str | None = None
    ) -> Checkpoint | None:
        return await self._run(lambda conn: _read_checkpoint(conn, thread_id, checkpoint_id))

    async def get_snapshot(
        self, thread_id: str, checkpoint_id: str | None = None
    ) -> ThreadSnapshot | None:
        def run(conn: sqlite3.Connection) -> ThreadSnapshot | None:
            checkpoint = _read_checkpoint(conn, thread_id, checkpoint_id)
            if checkpoint is None:
                return None
            messages = _read_messages(conn, thread_id, 0, checkpoint.message_count)
            return ThreadSnapshot(checkpoint, messages)

        return await self._run(run)

    async def get_messages(
        self, thread_id: str, *, offset: int = 0, limit: int | None = None
    ) -> list[Message]:
        def run(conn: sqlite3.Connection) -> list[Message]:
            rows = conn.execute(
                "SELECT data FROM messages WHERE thread_id = ? AND seq >= ? ORDER BY seq LIMIT ?",
                (thread_id, offset, -1 if limit is None else limit),
            ).fetchall()
            return [Message.from_dict(json.loads(r[0])) for r in rows]

        return await self._run(run)

    async def list_history(
        self, thread_id: str, *, limit: int = 20, before: str | None = None
    ) -> list[Checkpoint]:
        check_limit(limit)

        def run(conn: sqlite3.Connection) -> list[Checkpoint]:
            upper = 2**63 - 1
            if before is not None:
                row = conn.execute(
                    "SELECT id FROM checkpoints WHERE thread_id = ? AND checkpoint_id = ?",
                    (thread_id, before),
                ).fetchone()
                if row is None:
                    return []
                upper = row[0]
            rows = conn.execute(
                "SELECT data FROM checkpoints WHERE thread_id = ? AND id < ? "
                "ORDER BY id DESC LIMIT ?",
                (thread_id, upper, limit),
            ).fetchall()
            return [Checkpoint.from_dict(json.loads(r[0])) for r in rows]

        return await self._run(run)

    async def list_threads(
        self, user_id: str, *, limit: int = 20, cursor: str | None = None
    ) -> Page[ThreadInfo]:
        check_limit(limit)
        after = decode_cursor(cursor) if cursor else None

        def run(conn: sqlite3.Connection) -> Page[ThreadInfo]:
            sql = f"SELECT {_THREAD_COLUMNS} FROM threads WHERE user_id = ?"
            params: list[Any] = [user_id]
            if after is not None:
                sql += " AND (updated_at, thread_id) < (?, ?)"
                params += list(after)
            sql += " ORDER BY updated_at DESC, thread_id DESC LIMIT ?"
            params.append(limit + 1)
            infos = [_thread_from_row(r) for r in conn.execute(sql, params).fetchall()]
            more = len(infos) > limit
            infos = infos[:limit]
            last = infos[-1] if more else None
            return Page(infos, encode_cursor(last.updated_at, last.thread_id) if last else None)

        return await self._run(run)

    async def search_threads(self, user_id: str, query: ThreadQuery) -> Page[ThreadInfo]:
        after = query.after()
        sql = f"SELECT {_THREAD_COLUMNS} FROM threads WHERE user_id = ?"
        params: list[Any] = [user_id]
        if query.metadata:
            sql += " AND agentflow_json_contains(metadata, ?)"
            params.append(dumps(query.metadata, what="a metadata filter"))
        if query.status is not None:
            sql += " AND status = ?"
            params.append(query.status)
        for column, op, value in query.bounds():
            sql += f" AND {column} {op} ?"
            params.append(value)
        order = "DESC" if query.sort_order == "desc" else "ASC"
        if after is not None:
            sql += f" AND ({query.sort_by}, thread_id) {'<' if order == 'DESC' else '>'} (?, ?)"
            params += list(after)
        sql += f" ORDER BY {query.sort_by} {order}, thread_id {order} LIMIT ?"
        params.append(query.limit + 1)

        def run(conn: sqlite3.Connection) -> Page[ThreadInfo]:
            return query.page([_thread_from_row(r) for r in conn.execute(sql, params)])

        return await self._run(run)

    async def update_thread_metadata(
        self, thread_id: str, patch: dict[str, Any]
    ) -> ThreadInfo | None:
        def run(conn: sqlite3.Connection) -> ThreadInfo | None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                info = _read_thread(conn, thread_id)
                if info is not None:
                    merged = merge_metadata(info.metadata, patch)
                    conn.execute(
                        "UPDATE threads SET metadata = ?, updated_at = MAX(updated_at, ?) "
                        "WHERE thread_id = ?",
                        (dumps(merged, what="thread metadata"), time.time(), thread_id),
                    )
                    info = _read_thread(conn, thread_id)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return info

        return await self._run(run)

    async def delete_thread(self, thread_id: str) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            conn.execute("BEGIN IMMEDIATE")
            try:
                deleted = conn.execute(
                    "DELETE FROM threads WHERE thread_id = ?", (thread_id,)
                ).rowcount
                conn.execute("DELETE FROM messages WHERE thread_id = ?", (thread_id,))
                conn.execute("DELETE FROM checkpoints WHERE thread_id = ?", (thread_id,))
                conn.execute("DELETE FROM tool_results WHERE thread_id = ?", (thread_id,))
                conn.execute("DELETE FROM runs WHERE thread_id = ?", (thread_id,))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return deleted > 0

        return await self._run(run)

    async def put_run(self, record: RunRecord) -> None:
        data = dumps(record.to_dict(), what="a run")
        await self._run(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO runs (run_id, thread_id, created_at, data) "
                "VALUES (?, ?, ?, ?)",
                (record.run_id, record.thread_id, record.created_at, data),
            )
        )

    async def delete_run(self, run_id: str) -> None:
        await self._run(lambda conn: conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,)))

    async def get_run(self, run_id: str) -> RunRecord | None:
        def run(conn: sqlite3.Connection) -> RunRecord | None:
            row = conn.execute("SELECT data FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            return RunRecord.from_dict(json.loads(row[0])) if row else None

        return await self._run(run)

    async def list_runs(
        self, thread_id: str, *, limit: int = 20, before: str | None = None
    ) -> list[RunRecord]:
        check_limit(limit)

        def run(conn: sqlite3.Connection) -> list[RunRecord]:
            sql = "SELECT data FROM runs WHERE thread_id = ?"
            params: tuple[Any, ...] = (thread_id,)
            if before is not None:
                sql += (
                    " AND (created_at, run_id) < (SELECT created_at, run_id FROM runs"
                    " WHERE run_id = ? AND thread_id = ?)"
                )
                params += (before, thread_id)
            sql += " ORDER BY created_at DESC, run_id DESC LIMIT ?"
            rows = conn.execute(sql, (*params, limit)).fetchall()
            return [RunRecord.from_dict(json.loads(row[0])) for row in rows]

        return await self._run(run)

    async def live_runs(self, limit: int = 100) -> list[RunRecord]:
        def run(conn: sqlite3.Connection) -> list[RunRecord]:
            rows = conn.execute(
                "SELECT data FROM runs WHERE json_extract(data, '$.background') = 1 "
                "AND json_extract(data, '$.status') IN ('pending', 'running') "
                "ORDER BY created_at LIMIT ?",
                (limit,),
            ).fetchall()
            return [RunRecord.from_dict(json.loads(row[0])) for row in rows]

        return await self._run(run)

    async def truncate_thread(self, thread_id: str, *, step: int) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "DELETE FROM checkpoints WHERE thread_id = ? "
                    "AND json_extract(data, '$.step') >= ?",
                    (thread_id, step),
                )
                row = conn.execute(
                    "SELECT data FROM checkpoints WHERE thread_id = ? ORDER BY id DESC LIMIT 1",
                    (thread_id,),
                ).fetchone()
                last = Checkpoint.from_dict(json.loads(row[0])) if row else None
                count = last.message_count if last else 0
                conn.execute(
                    "DELETE FROM messages WHERE thread_id = ? AND seq >= ?", (thread_id, count)
                )
                conn.execute(
                    "UPDATE threads SET message_count = ?, status = ?, updated_at = "
                    "max(updated_at, ?) WHERE thread_id = ?",
                    (count, last.status if last else "idle", time.time(), thread_id),
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

        await self._run(run)

    async def put_tool_result(self, thread_id: str, key: str, message: Message) -> None:
        data = dumps(message.to_dict(), what="a tool result")
        await self._run(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO tool_results (thread_id, key, data) VALUES (?, ?, ?)",
                (thread_id, key, data),
            )
        )

    async def get_tool_results(self, thread_id: str, keys: Sequence[str]) -> dict[str, Message]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}

        def run(conn: sqlite3.Connection) -> dict[str, Message]:
            out: dict[str, Message] = {}
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows = conn.execute(
                    "SELECT key, data FROM tool_results WHERE thread_id = ? AND key IN "
                    f"({', '.join('?' * len(chunk))})",
                    (thread_id, *chunk),
                ).fetchall()
                out.update((r[0], Message.from_dict(json.loads(r[1]))) for r in rows)
            return out

        return await self._run(run)

    async def get_idempotent(self, user_id: str, key: str) -> IdempotencyRecord | None:
        def run(conn: sqlite3.Connection) -> IdempotencyRecord | None:
            row = conn.execute(
                "SELECT data FROM idempotency WHERE user_id = ? AND key = ? AND expires_at > ?",
                (user_id, key, time.time()),
            ).fetchone()
            return IdempotencyRecord.from_dict(json.loads(row[0])) if row else None

        return await self._run(run)

    async def put_idempotent(self, record: IdempotencyRecord) -> None:
        data = dumps(record.to_dict(), what="an idempotent response")

        def run(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM idempotency WHERE expires_at <= ?", (time.time(),))
            conn.execute(
                "INSERT OR REPLACE INTO idempotency (user_id, key, data, expires_at) "
                "VALUES (?, ?, ?, ?)",
                (record.user_id, record.key, data, record.expires_at),
            )

        await self._run(run)

    async def claim_idempotent(self, record: IdempotencyRecord) -> IdempotencyRecord | None:
        data = dumps(record.to_dict(), what="an idempotent response")

        def run(conn: sqlite3.Connection) -> IdempotencyRecord | None:
            # One statement on the one writer connection: atomic for every request.
            claimed = conn.execute(
                "INSERT INTO idempotency (user_id, key, data, expires_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (user_id, key) DO UPDATE SET data = excluded.data, "
                "expires_at = excluded.expires_at WHERE idempotency.expires_at <= ? "
                "RETURNING 1",
                (record.user_id, record.key, data, record.expires_at, time.time()),
            ).fetchone()
            if claimed is not None:
                return None
            row = conn.execute(
                "SELECT data FROM idempotency WHERE user_id = ? AND key = ?",
                (record.user_id, record.key),
            ).fetchone()
            return IdempotencyRecord.from_dict(json.loads(row[0]))

        return await self._run(run)

    async def replace_idempotent(self, record: IdempotencyRecord, claim: str) -> bool:
        data = dumps(record.to_dict(), what="an idempotent response")

        def run(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE idempotency SET data = ?, expires_at = ? WHERE user_id = ? AND key = ? "
                "AND expires_at > ? AND json_extract(data, '$.run_ids[#-1]') = ?",
                (data, record.expires_at, record.user_id, record.key, time.time(), claim),
            )
            return cursor.rowcount == 1

        return await self._run(run)


_THREAD_COLUMNS = (
    "thread_id, user_id, title, metadata, status, message_count, created_at, updated_at"
)


def _thread_from_row(row: Sequence[Any]) -> ThreadInfo:
    return ThreadInfo(
        thread_id=row[0],
        user_id=row[1],
        title=row[2],
        metadata=json.loads(row[3]),
        status=row[4],
        message_count=row[5],
        created_at=row[6],
        updated_at=row[7],
    )


def _sql_json_contains(stored: str, wanted: str) -> bool:
    """SQL `agentflow_json_contains(metadata, pattern)`: Postgres's `metadata @> pattern`."""
    return json_contains(json.loads(stored), _pattern(wanted))


@functools.lru_cache(maxsize=32)
def _pattern(text: str) -> Any:
    return json.loads(text)  # read-only: json_contains never changes it


def _read_thread(conn: sqlite3.Connection, thread_id: str) -> ThreadInfo | None:
    row = conn.execute(
        f"SELECT {_THREAD_COLUMNS} FROM threads WHERE thread_id = ?", (thread_id,)
    ).fetchone()
    return _thread_from_row(row) if row else None


def _read_checkpoint(
    conn: sqlite3.Connection, thread_id: str, checkpoint_id: str | None
) -> Checkpoint | None:
    if checkpoint_id is None:
        row = conn.execute(
            "SELECT data FROM checkpoints WHERE thread_id = ? ORDER BY id DESC LIMIT 1",
            (thread_id,),
        ).fetchone()
    else:
        row = conn.execute(
            "SELECT data FROM checkpoints WHERE thread_id = ? AND checkpoint_id = ?",
            (thread_id, checkpoint_id),
        ).fetchone()
    return Checkpoint.from_dict(json.loads(row[0])) if row else None


def _read_messages(
    conn: sqlite3.Connection, thread_id: str, offset: int, limit: int | None
) -> list[Message]:
    rows = conn.execute(
        "SELECT data FROM messages WHERE thread_id = ? AND seq >= ? ORDER BY seq LIMIT ?",
        (thread_id, offset, -1 if limit is None else limit),
    ).fetchall()
    return [Message.from_dict(json.loads(r[0])) for r in rows]
