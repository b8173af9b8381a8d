"""A LangGraph checkpoint saver kept in agentflow's own store: the SQLite file of a
SqliteCheckpointer (its worker thread) or the schema and pool of a PgCheckpointer (its
migrations, retries and errors). Needs the `langgraph` extra.

    saver = LangGraphSaver.for_store(checkpointer)
    await saver.setup()
    graph = builder.compile(checkpointer=saver)

Three tables (see pg_schema.py, migration 6, and sqlite.py): `lg_checkpoints` holds a
checkpoint without its channel values, `lg_blobs` each channel value once per (channel,
version), `lg_writes` the pending writes of a step. Everything is serialized with the saver's
LangGraph serde (`dumps_typed`); metadata is JSON, so `list(filter=...)` is JSON containment.
"""

from __future__ import annotations

import json
import random
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from agentflow.checkpointer.sqlite import SqliteCheckpointer
from agentflow.graph.errors import CheckpointerError

try:
    from langchain_core.runnables import RunnableConfig
    from langgraph.checkpoint.base import (
        WRITES_IDX_MAP,
        BaseCheckpointSaver,
        ChannelVersions,
        Checkpoint,
        CheckpointMetadata,
        CheckpointTuple,
        get_checkpoint_id,
        get_serializable_checkpoint_metadata,
        writes_sort_key,
    )
    from langgraph.checkpoint.serde.base import SerializerProtocol
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        f"agentflow.checkpointer.langgraph needs LangGraph ({exc}); install the extra: "
        'pip install "agentflow-runner[langgraph]"'
    ) from exc

if TYPE_CHECKING:
    import asyncpg

    from agentflow.checkpointer.postgres import PgCheckpointer

__all__ = ["LangGraphSaver"]

R = TypeVar("R")
# (channel, version, serde type, bytes); bytes is None for a channel that is empty
Blob = tuple[str, str, str, "bytes | None"]
# (task_id, task_path, idx, channel, serde type, bytes)
Write = tuple[str, str, int, str, str, bytes]
Writes = list[Write]  # (the saver's own `list` method hides the builtin in its body)


@dataclass(frozen=True)
class StoredCheckpoint:
    """One row of `lg_checkpoints` with the blobs its versions name and its pending writes."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: str | None
    type: str
    checkpoint: bytes
    metadata: dict[str, Any]
    blobs: list[Blob]
    writes: list[Write]


@dataclass(frozen=True)
class Search:
    """What `list` asks for; every part optional."""

    thread_id: str | None = None
    checkpoint_ns: str | None = None
    checkpoint_id: str | None = None
    metadata: str | None = None  # JSON the metadata must contain
    before: str | None = None  # checkpoint ids below this one
    limit: int | None = None


@dataclass(frozen=True)
class NewCheckpoint:
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: str | None
    type: str
    checkpoint: bytes
    versions: str  # JSON {channel: version}
    metadata: str  # JSON
    blobs: list[Blob]


class Tables(ABC):
    """The saver's four operations on one store, each synchronous and asynchronous: a
    subclass says what each does with a connection; the store's `call` (async) and
    `call_blocking` run it with its connection handling and errors."""

    store: Any  # PgCheckpointer or SqliteCheckpointer: `call` and `call_blocking`

    @abstractmethod
    def _save(self, conn: Any, new: NewCheckpoint) -> Any:
        """Store a checkpoint and its new blobs, atomically."""

    @abstractmethod
    def _save_writes(
        self, conn: Any, key: tuple[str, str, str], writes: list[Write], upsert: bool
    ) -> Any:
        """Store the writes of one task on a checkpoint, atomically."""

    @abstractmethod
    def _search(self, conn: Any, search: Search) -> Any:
        """Checkpoints matching `search`, newest first, with their blobs and writes."""

    @abstractmethod
    def _delete_thread(self, conn: Any, thread_id: str) -> Any:
        """Remove every checkpoint, blob and write of a thread."""

    @abstractmethod
    def _delete_runs(self, conn: Any, run_ids: list[str]) -> Any:
        """Remove the checkpoints the runs wrote (their metadata's `run_id`) and their
        writes. Blobs stay: other checkpoints may share a version of a channel."""

    async def asetup(self) -> None:
        await self.store.setup()  # the store's schema holds the tables

    async def asave(self, new: NewCheckpoint) -> None:
        await self.store.call(lambda conn: self._save(conn, new))

    def save(self, new: NewCheckpoint) -> None:
        self.store.call_blocking(lambda conn: self._save(conn, new))

    async def asave_writes(
        self, thread_id: str, ns: str, checkpoint_id: str, writes: list[Write], upsert: bool
    ) -> None:
        key = (thread_id, ns, checkpoint_id)
        await self.store.call(lambda conn: self._save_writes(conn, key, writes, upsert))

    def save_writes(
        self, thread_id: str, ns: str, checkpoint_id: str, writes: list[Write], upsert: bool
    ) -> None:
        key = (thread_id, ns, checkpoint_id)
        self.store.call_blocking(lambda conn: self._save_writes(conn, key, writes, upsert))

    async def asearch(self, search: Search) -> list[StoredCheckpoint]:
        found: list[StoredCheckpoint] = await self.store.call(
            lambda conn: self._search(conn, search)
        )
        return found

    def search(self, search: Search) -> list[StoredCheckpoint]:
        found: list[StoredCheckpoint] = self.store.call_blocking(
            lambda conn: self._search(conn, search)
        )
        return found

    async def adelete_thread(self, thread_id: str) -> None:
        await self.store.call(lambda conn: self._delete_thread(conn, thread_id))

    def delete_thread(self, thread_id: str) -> None:
        self.store.call_blocking(lambda conn: self._delete_thread(conn, thread_id))

    async def adelete_runs(self, run_ids: list[str]) -> None:
        await self.store.call(lambda conn: self._delete_runs(conn, run_ids))

    def delete_runs(self, run_ids: list[str]) -> None:
        self.store.call_blocking(lambda conn: self._delete_runs(conn, run_ids))


def _where(search: Search, mark: Callable[[int], str], contains: str) -> tuple[str, list[Any]]:
    """The WHERE clause of a search; `mark(n)` is the n-th placeholder (1-based),
    `contains` the containment test with `{}` for the metadata placeholder."""
    parts: list[str] = []
    args: list[Any] = []

    def add(sql: str, value: Any) -> None:
        args.append(value)
        parts.append(sql.format(mark(len(args))))

    if search.thread_id is not None:
        add("thread_id = {}", search.thread_id)
    if search.checkpoint_ns is not None:
        add("checkpoint_ns = {}", search.checkpoint_ns)
    if search.checkpoint_id is not None:
        add("checkpoint_id = {}", search.checkpoint_id)
    if search.metadata is not None:
        add(contains, search.metadata)
    if search.before is not None:
        add("checkpoint_id < {}", search.before)
    return (" WHERE " + " AND ".join(parts)) if parts else "", args


_ROW = "thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint"


class PgTables(Tables):
    """The tables in a PgCheckpointer's schema, through its pool."""

    def __init__(self, store: PgCheckpointer) -> None:
        self.store = store
        self.s = store.s

    async def _save(self, conn: asyncpg.Connection, new: NewCheckpoint) -> None:
        async with conn.transaction():
            if new.blobs:
                await conn.executemany(
                    f"INSERT INTO {self.s}.lg_blobs (thread_id, checkpoint_ns, channel, "
                    "version, type, blob) VALUES ($1, $2, $3, $4, $5, $6) "
                    "ON CONFLICT DO NOTHING",
                    [(new.thread_id, new.checkpoint_ns, *b) for b in new.blobs],
                )
            await conn.execute(
                f"INSERT INTO {self.s}.lg_checkpoints (thread_id, checkpoint_ns, checkpoint_id, "
                "parent_checkpoint_id, type, checkpoint, versions, metadata) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb) "
                "ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET "
                "type = EXCLUDED.type, checkpoint = EXCLUDED.checkpoint, "
                "versions = EXCLUDED.versions, metadata = EXCLUDED.metadata",
                new.thread_id, new.checkpoint_ns, new.checkpoint_id, new.parent_checkpoint_id,
                new.type, new.checkpoint, new.versions, new.metadata,
            )  # fmt: skip

    def _writes_sql(self, upsert: bool) -> str:
        conflict = (
            "DO UPDATE SET channel = EXCLUDED.channel, type = EXCLUDED.type, blob = EXCLUDED.blob"
            if upsert
            else "DO NOTHING"
        )
        return (
            f"INSERT INTO {self.s}.lg_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, "
            "task_path, idx, channel, type, blob) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
            f"ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) {conflict}"
        )

    async def _save_writes(
        self,
        conn: asyncpg.Connection,
        key: tuple[str, str, str],
        writes: list[Write],
        upsert: bool,
    ) -> None:
        async with conn.transaction():
            await conn.executemany(self._writes_sql(upsert), [(*key, *w) for w in writes])

    async def _search(self, conn: asyncpg.Connection, search: Search) -> list[StoredCheckpoint]:
        where, args = _where(search, lambda n: f"${n}", "metadata @> {}::jsonb")
        sql = f"SELECT {_ROW}, metadata FROM {self.s}.lg_checkpoints{where} "
        sql += "ORDER BY checkpoint_id DESC"
        if search.limit is not None:
            args.append(search.limit)
            sql += f" LIMIT ${len(args)}"
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            rows = await conn.fetch(sql, *args)
            if not rows:
                return []
            keys = (
                [r["thread_id"] for r in rows],
                [r["checkpoint_ns"] for r in rows],
                [r["checkpoint_id"] for r in rows],
            )
            blobs = await conn.fetch(
                "SELECT c.thread_id, c.checkpoint_ns, c.checkpoint_id, b.channel, b.version, "
                f"b.type, b.blob FROM {self.s}.lg_checkpoints c "
                "JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(t, n, i) "
                "ON c.thread_id = k.t AND c.checkpoint_ns = k.n AND c.checkpoint_id = k.i "
                "CROSS JOIN LATERAL jsonb_each_text(c.versions) AS v "
                f"JOIN {self.s}.lg_blobs b ON b.thread_id = c.thread_id "
                "AND b.checkpoint_ns = c.checkpoint_ns AND b.channel = v.key "
                "AND b.version = v.value",
                *keys,
            )
            writes = await conn.fetch(
                "SELECT w.thread_id, w.checkpoint_ns, w.checkpoint_id, w.task_id, w.task_path, "
                f"w.idx, w.channel, w.type, w.blob FROM {self.s}.lg_writes w "
                "JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(t, n, i) "
                "ON w.thread_id = k.t AND w.checkpoint_ns = k.n AND w.checkpoint_id = k.i",
                *keys,
            )
        blobs_of: dict[tuple[str, str, str], list[Blob]] = {}
        for b in blobs:
            key = (b[0], b[1], b[2])
            blobs_of.setdefault(key, []).append((b[3], b[4], b[5], b[6]))
        writes_of: dict[tuple[str, str, str], list[Write]] = {}
        for w in writes:
            key = (w[0], w[1], w[2])
            writes_of.setdefault(key, []).append((w[3], w[4], w[5], w[6], w[7], w[8]))
        return [
            StoredCheckpoint(
                thread_id=r[0],
                checkpoint_ns=r[1],
                checkpoint_id=r[2],
                parent_checkpoint_id=r[3],
                type=r[4],
                checkpoint=r[5],
                metadata=r["metadata"],
                blobs=blobs_of.get((r[0], r[1], r[2]), []),
                writes=writes_of.get((r[0], r[1], r[2]), []),
            )
            for r in rows
        ]

    async def _delete_thread(self, conn: asyncpg.Connection, thread_id: str) -> None:
        async with conn.transaction():
            for table in ("lg_checkpoints", "lg_blobs", "lg_writes"):
                await conn.execute(f"DELETE FROM {self.s}.{table} WHERE thread_id = $1", thread_id)

    async def _delete_runs(self, conn: asyncpg.Connection, run_ids: list[str]) -> None:
        s = self.s
        async with conn.transaction():
            await conn.execute(
                f"DELETE FROM {s}.lg_writes w USING {s}.lg_checkpoints c "
                "WHERE c.metadata->>'run_id' = ANY($1::text[]) AND w.thread_id = c.thread_id "
                "AND w.checkpoint_ns = c.checkpoint_ns AND w.checkpoint_id = c.checkpoint_id",
                run_ids,
            )
            await conn.execute(
                f"DELETE FROM {s}.lg_checkpoints WHERE metadata->>'run_id' = ANY($1::text[])",
                run_ids,
            )


class SqliteTables(Tables):
    """The tables in a SqliteCheckpointer's file, on its worker thread."""

    def __init__(self, store: SqliteCheckpointer) -> None:
        self.store = store

    @staticmethod
    def _transaction(conn: sqlite3.Connection, work: Callable[[], None]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            work()
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _save(self, conn: sqlite3.Connection, new: NewCheckpoint) -> None:
        def work() -> None:
            conn.executemany(
                "INSERT OR IGNORE INTO lg_blobs (thread_id, checkpoint_ns, channel, version, "
                "type, blob) VALUES (?, ?, ?, ?, ?, ?)",
                [(new.thread_id, new.checkpoint_ns, *b) for b in new.blobs],
            )
            conn.execute(
                "INSERT INTO lg_checkpoints (thread_id, checkpoint_ns, checkpoint_id, "
                "parent_checkpoint_id, type, checkpoint, versions, metadata) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET "
                "type = excluded.type, checkpoint = excluded.checkpoint, "
                "versions = excluded.versions, metadata = excluded.metadata",
                (new.thread_id, new.checkpoint_ns, new.checkpoint_id, new.parent_checkpoint_id,
                 new.type, new.checkpoint, new.versions, new.metadata),
            )  # fmt: skip

        self._transaction(conn, work)

    def _save_writes(
        self, conn: sqlite3.Connection, key: tuple[str, str, str], writes: list[Write], upsert: bool
    ) -> None:
        verb = "INSERT OR REPLACE" if upsert else "INSERT OR IGNORE"

        def work() -> None:
            conn.executemany(
                f"{verb} INTO lg_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, "
                "task_path, idx, channel, type, blob) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(*key, *w) for w in writes],
            )

        self._transaction(conn, work)

    @staticmethod
    def _search(conn: sqlite3.Connection, search: Search) -> list[StoredCheckpoint]:
        where, args = _where(search, lambda n: "?", "agentflow_json_contains(metadata, {})")
        sql = f"SELECT {_ROW}, metadata, versions FROM lg_checkpoints{where} "
        sql += "ORDER BY checkpoint_id DESC"
        if search.limit is not None:
            args.append(search.limit)
            sql += " LIMIT ?"
        found: list[StoredCheckpoint] = []
        conn.execute("BEGIN")  # one snapshot for the rows and their blobs and writes
        try:
            for row in conn.execute(sql, args).fetchall():
                key = tuple(row[:3])
                blobs: list[Blob] = []
                for channel, version in json.loads(row[7]).items():
                    blob = conn.execute(
                        "SELECT type, blob FROM lg_blobs WHERE thread_id = ? AND "
                        "checkpoint_ns = ? AND channel = ? AND version = ?",
                        (*key[:2], channel, version),
                    ).fetchone()
                    if blob is not None:
                        blobs.append((channel, version, blob[0], blob[1]))
                writes = conn.execute(
                    "SELECT task_id, task_path, idx, channel, type, blob FROM lg_writes "
                    "WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?",
                    key,
                ).fetchall()
                found.append(
                    StoredCheckpoint(
                        thread_id=row[0],
                        checkpoint_ns=row[1],
                        checkpoint_id=row[2],
                        parent_checkpoint_id=row[3],
                        type=row[4],
                        checkpoint=row[5],
                        metadata=json.loads(row[6]),
                        blobs=blobs,
                        writes=[tuple(w) for w in writes],
                    )
                )
        finally:
            conn.execute("COMMIT")
        return found

    def _delete_thread(self, conn: sqlite3.Connection, thread_id: str) -> None:
        def work() -> None:
            for table in ("lg_checkpoints", "lg_blobs", "lg_writes"):
                conn.execute(f"DELETE FROM {table} WHERE thread_id = ?", (thread_id,))

        self._transaction(conn, work)

    def _delete_runs(self, conn: sqlite3.Connection, run_ids: list[str]) -> None:
        marks = ", ".join("?" * len(run_ids))
        of_runs = f"json_extract(metadata, '$.run_id') IN ({marks})"

        def work() -> None:
            conn.execute(
                "DELETE FROM lg_writes WHERE (thread_id, checkpoint_ns, checkpoint_id) IN "
                f"(SELECT thread_id, checkpoint_ns, checkpoint_id FROM lg_checkpoints "
                f"WHERE {of_runs})",
                run_ids,
            )
            conn.execute(f"DELETE FROM lg_checkpoints WHERE {of_runs}", run_ids)

        self._transaction(conn, work)


class LangGraphSaver(BaseCheckpointSaver[str]):
    """LangGraph's checkpointer interface on agentflow's SQLite or Postgres store."""

    def __init__(self, tables: Tables, *, serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)
        self.tables = tables

    @classmethod
    def for_store(cls, store: object, *, serde: SerializerProtocol | None = None) -> LangGraphSaver:
        """The saver kept in `store`: a SqliteCheckpointer or a PgCheckpointer."""
        if isinstance(store, SqliteCheckpointer):
            return cls(SqliteTables(store), serde=serde)
        from agentflow.checkpointer.postgres import PgCheckpointer

        if isinstance(store, PgCheckpointer):
            return cls(PgTables(store), serde=serde)
        raise CheckpointerError(
            f"LangGraphSaver keeps its state in a SqliteCheckpointer or a PgCheckpointer, not "
            f"{type(store).__name__}; open one with open_checkpointer('sqlite:PATH' or a "
            "postgresql:// URL)"
        )

    async def setup(self) -> None:
        """Open the store (and create the tables) if that has not happened yet."""
        await self.tables.asetup()

    # -- reading -------------------------------------------------------------------------

    @staticmethod
    def _lookup(config: RunnableConfig) -> Search:
        configurable = config["configurable"]
        checkpoint_id = get_checkpoint_id(config)
        return Search(
            thread_id=configurable["thread_id"],
            checkpoint_ns=configurable.get("checkpoint_ns", ""),
            checkpoint_id=checkpoint_id,
            limit=None if checkpoint_id else 1,
        )

    @staticmethod
    def _listing(
        config: RunnableConfig | None,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> Search:
        configurable = config["configurable"] if config else {}
        return Search(
            thread_id=configurable.get("thread_id"),
            checkpoint_ns=configurable.get("checkpoint_ns"),
            checkpoint_id=get_checkpoint_id(config) if config else None,
            metadata=json.dumps(filter) if filter else None,
            before=get_checkpoint_id(before) if before else None,
            limit=limit,
        )

    def _tuple(self, row: StoredCheckpoint) -> CheckpointTuple:
        checkpoint: Checkpoint = self.serde.loads_typed((row.type, row.checkpoint))
        checkpoint["channel_values"] = {
            channel: self.serde.loads_typed((kind, blob))
            for channel, _, kind, blob in row.blobs
            if kind != "empty" and blob is not None
        }
        writes = sorted(row.writes, key=lambda w: writes_sort_key(w[1], w[0], w[2]))

        def config_of(checkpoint_id: str) -> RunnableConfig:
            return {
                "configurable": {
                    "thread_id": row.thread_id,
                    "checkpoint_ns": row.checkpoint_ns,
                    "checkpoint_id": checkpoint_id,
                }
            }

        return CheckpointTuple(
            config=config_of(row.checkpoint_id),
            checkpoint=checkpoint,
            metadata=row.metadata,  # type: ignore[arg-type]
            parent_config=(
                config_of(row.parent_checkpoint_id) if row.parent_checkpoint_id else None
            ),
            pending_writes=[
                (task_id, channel, self.serde.loads_typed((kind, blob)))
                for task_id, _, _, channel, kind, blob in writes
            ],
        )

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        rows = self.tables.search(self._lookup(config))
        return self._tuple(rows[0]) if rows else None

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        rows = await self.tables.asearch(self._lookup(config))
        return self._tuple(rows[0]) if rows else None

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        for row in self.tables.search(self._listing(config, filter, before, limit)):
            yield self._tuple(row)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        for row in await self.tables.asearch(self._listing(config, filter, before, limit)):
            yield self._tuple(row)

    # -- writing -------------------------------------------------------------------------

    def _new(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> NewCheckpoint:
        configurable = config["configurable"]
        thread_id: str = configurable["thread_id"]
        ns: str = configurable.get("checkpoint_ns", "")
        values = checkpoint["channel_values"]
        # A value is stored once, when its version is new; later checkpoints name it.
        blobs: list[Blob] = [
            (channel, str(version), *self.serde.dumps_typed(values[channel]))
            for channel, version in new_versions.items()
            if channel in values
        ]
        bare = checkpoint.copy()
        bare["channel_values"] = {}
        kind, data = self.serde.dumps_typed(bare)
        return NewCheckpoint(
            thread_id=thread_id,
            checkpoint_ns=ns,
            checkpoint_id=checkpoint["id"],
            parent_checkpoint_id=configurable.get("checkpoint_id"),
            type=kind,
            checkpoint=data,
            versions=json.dumps({c: str(v) for c, v in checkpoint["channel_versions"].items()}),
            metadata=json.dumps(get_serializable_checkpoint_metadata(config, metadata)),
            blobs=blobs,
        )

    @staticmethod
    def _next_config(new: NewCheckpoint) -> RunnableConfig:
        return {
            "configurable": {
                "thread_id": new.thread_id,
                "checkpoint_ns": new.checkpoint_ns,
                "checkpoint_id": new.checkpoint_id,
            }
        }

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        new = self._new(config, checkpoint, metadata, new_versions)
        self.tables.save(new)
        return self._next_config(new)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        new = self._new(config, checkpoint, metadata, new_versions)
        await self.tables.asave(new)
        return self._next_config(new)

    def _writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, path: str
    ) -> tuple[tuple[str, str, str], Writes, bool]:
        configurable = config["configurable"]
        key = (
            configurable["thread_id"],
            configurable.get("checkpoint_ns", ""),
            configurable["checkpoint_id"],
        )
        rows: Writes = [
            (task_id, path, WRITES_IDX_MAP.get(channel, idx), channel,
             *self.serde.dumps_typed(value))
            for idx, (channel, value) in enumerate(writes)
        ]  # fmt: skip
        # Special writes (error, interrupt, ...) replace an earlier one; regular writes of a
        # task are kept as first stored, as the stock savers do.
        upsert = all(channel in WRITES_IDX_MAP for channel, _ in writes)
        return key, rows, upsert

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        key, rows, upsert = self._writes(config, writes, task_id, task_path)
        if rows:
            self.tables.save_writes(*key, rows, upsert)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        key, rows, upsert = self._writes(config, writes, task_id, task_path)
        if rows:
            await self.tables.asave_writes(*key, rows, upsert)

    def delete_thread(self, thread_id: str) -> None:
        self.tables.delete_thread(thread_id)

    async def adelete_thread(self, thread_id: str) -> None:
        await self.tables.adelete_thread(thread_id)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints and writes the runs made (a rolled-back run's steps)."""
        if run_ids:
            self.tables.delete_runs(list(run_ids))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        if run_ids:
            await self.tables.adelete_runs(list(run_ids))

    def get_next_version(self, current: str | None, channel: None) -> str:
        """`<counter, 32 digits>.<random>`: increasing as strings, and distinct for two runs
        that fork from one checkpoint (as the stock Postgres saver makes them)."""
        counter = 0 if current is None else int(current.split(".")[0])
        return f"{counter + 1:032}.{random.random():016}"
