"""Long-term memory: JSON items under a namespace and a key, kept per user in the
checkpointer's own storage (what LangGraph calls the store, served at `/store/*`).

    items = item_store(checkpointer)
    await items.put("alice", ("memories", "prefs"), "food", {"likes": "pizza"})
    found = await items.search("alice", ("memories",), filter={"likes": "pizza"})

An item belongs to a user: every operation names the user, and one user never reads,
finds or lists another's items. A namespace is a tuple of labels; a label is a non-empty
string without "." (the SDK sends namespaces joined by "."), so the labels joined by "."
are a namespace's stored form, and a namespace prefix is a range of that text.

`filter` keeps items whose value has each key with a matching value: equal scalars, and
objects and arrays contained in the stored ones (JSON containment, as thread metadata
search). `query` asks for semantic search, which needs an embedding index this store does
not have: it is accepted and filters nothing, as `langgraph dev` does without an index
config. Items with a `ttl` (minutes) expire that long after their last write, or their last
read when reads refresh it (the default).

Memory (a dict), SQLite (table `store_items` in the state file) and Postgres (migration 7)
implement the same operations; `item_store(checkpointer)` picks the one for a checkpointer.
"""

from __future__ import annotations

import json
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from agentflow.checkpointer.memory import InMemoryCheckpointer
from agentflow.checkpointer.sqlite import SqliteCheckpointer
from agentflow.errors import CheckpointerError, InvalidItemError
from agentflow.graph.storage import Checkpointer, dumps, json_contains

if TYPE_CHECKING:
    import asyncpg

__all__ = [
    "MAX_KEY_LENGTH",
    "MAX_LABEL_LENGTH",
    "MAX_NAMESPACE_DEPTH",
    "MAX_PAGE",
    "Item",
    "ItemStore",
    "MemoryItemStore",
    "Namespace",
    "PgItemStore",
    "SqliteItemStore",
    "item_store",
    "key_problem",
    "label_problem",
]

Namespace = tuple[str, ...]
R = TypeVar("R")
# Namespace and key are one index entry with the user id (Postgres caps an entry near 2.7 kB).
MAX_LABEL_LENGTH = 64
MAX_NAMESPACE_DEPTH = 8
MAX_KEY_LENGTH = 256
MAX_PAGE = 1000
PURGE_EVERY = 60.0  # seconds between two deletions of expired items by one store


@dataclass(frozen=True, slots=True)
class Item:
    """A stored item; `value` is a fresh copy, the times are UTC."""

    namespace: Namespace
    key: str
    value: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """As the LangGraph server answers it (times in ISO 8601)."""
        return {
            "namespace": list(self.namespace),
            "key": self.key,
            "value": self.value,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


# -- what a caller may ask for -----------------------------------------------------------------


def label_problem(label: object) -> str | None:
    """Why `label` cannot be a namespace label, or None. (In list_namespaces' prefix and
    suffix a `*` label matches any label.)"""
    if not isinstance(label, str):
        return f"a namespace label must be a string, not {type(label).__name__}"
    if not label:
        return "a namespace label must not be empty; drop the empty label or name it"
    if "." in label:
        return (
            "a namespace label must not contain '.' (the protocol joins labels with '.'); "
            "split it into several labels or use another character"
        )
    if "\x00" in label:
        return "a namespace label must not contain NUL (\\u0000)"
    if len(label) > MAX_LABEL_LENGTH:
        return f"a namespace label is at most {MAX_LABEL_LENGTH} characters; shorten it"
    return None


def key_problem(key: object) -> str | None:
    """Why `key` cannot be an item key, or None."""
    if not isinstance(key, str):
        return f"an item key must be a string, not {type(key).__name__}"
    if not key:
        return "an item key must not be empty; name the item"
    if "\x00" in key:
        return "an item key must not contain NUL (\\u0000)"
    if len(key) > MAX_KEY_LENGTH:
        return f"an item key is at most {MAX_KEY_LENGTH} characters; shorten it"
    return None


def _namespace(labels: Sequence[str], what: str, *, empty: bool) -> str:
    """The stored form of a checked namespace (labels joined by ".")."""
    if isinstance(labels, str):
        raise InvalidItemError(f"{what} must be a sequence of labels, not a string")
    if not labels and not empty:
        raise InvalidItemError(f"{what} must have at least one label, e.g. ('memories',)")
    if len(labels) > MAX_NAMESPACE_DEPTH:
        raise InvalidItemError(f"{what} has at most {MAX_NAMESPACE_DEPTH} labels")
    for label in labels:
        problem = label_problem(label)
        if problem is not None:
            raise InvalidItemError(f"{what}: {problem}")
    return ".".join(labels)


def _key(key: str) -> str:
    problem = key_problem(key)
    if problem is not None:
        raise InvalidItemError(problem)
    return key


def _page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidItemError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    if offset < 0:
        raise InvalidItemError(f"offset must be 0 or more, got {offset}")


def _filter(filter: dict[str, Any] | None) -> dict[str, Any] | None:
    """The filter, refusing LangGraph's comparison operators (not supported here)."""
    if not filter:
        return None
    if not isinstance(filter, dict):
        raise InvalidItemError("filter must be an object of value keys and the values they hold")
    for key, wanted in filter.items():
        if isinstance(wanted, dict) and any(str(k).startswith("$") for k in wanted):
            raise InvalidItemError(
                f"filter {key!r}: operators ($eq, $ne, $gt, ...) are not supported; filter by "
                "the value itself, or search without the filter and compare in your code"
            )
    return filter


def _ttl(ttl: float | None) -> float | None:
    if ttl is not None and not (isinstance(ttl, int | float) and 0 < ttl < 1e9):
        raise InvalidItemError(f"ttl is minutes (more than 0), or None to keep the item; got {ttl}")
    return float(ttl) if ttl is not None else None


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


def _matches(labels: Namespace, pattern: Namespace, *, suffix: bool) -> bool:
    if len(labels) < len(pattern):
        return False
    part = labels[len(labels) - len(pattern) :] if suffix else labels[: len(pattern)]
    return all(p in ("*", got) for got, p in zip(part, pattern, strict=True))


def _literal_head(pattern: Namespace | None) -> Namespace:
    """The labels of a prefix before its first wildcard (what an index can narrow to)."""
    head: list[str] = []
    for label in pattern or ():
        if label == "*":
            break
        head.append(label)
    return tuple(head)


def _select_namespaces(
    stored: list[str],
    prefix: Namespace | None,
    suffix: Namespace | None,
    max_depth: int | None,
    limit: int,
    offset: int,
) -> list[Namespace]:
    found = {tuple(text.split(".")) for text in stored}
    if prefix:
        found = {ns for ns in found if _matches(ns, prefix, suffix=False)}
    if suffix:
        found = {ns for ns in found if _matches(ns, suffix, suffix=True)}
    if max_depth is not None:
        found = {ns[:max_depth] for ns in found}
    return sorted(found)[offset : offset + limit]


# -- the contract and its three backends --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Put:
    user_id: str
    namespace: str
    key: str
    value: str  # JSON
    ttl: float | None
    now: float


@dataclass(frozen=True, slots=True)
class _Search:
    user_id: str
    prefix: str  # stored form; "" for every namespace
    filter: str | None  # JSON the value must contain
    limit: int
    offset: int
    refresh: bool
    now: float


class ItemStore(ABC):
    """A user's items: put, get, delete, search, list namespaces. Every operation has an
    async form (for the server and async nodes) and a blocking one (for LangGraph's sync
    store API, from another thread than the store's own)."""

    store: Any  # what runs the operations: `call` (async) and `call_blocking`

    def __init__(self) -> None:
        self._purged_at = 0.0

    # What each backend does with its connection; the store's `call` runs it.
    @abstractmethod
    def _put(self, conn: Any, put: _Put, purge: bool) -> Any: ...

    @abstractmethod
    def _get(self, conn: Any, user_id: str, ns: str, key: str, refresh: bool, now: float) -> Any:
        """The row (namespace, key, value JSON, created_at, updated_at) or None."""

    @abstractmethod
    def _delete(self, conn: Any, user_id: str, ns: str, key: str) -> Any: ...

    @abstractmethod
    def _search(self, conn: Any, search: _Search) -> Any:
        """Rows as `_get` returns them, newest update first."""

    @abstractmethod
    def _namespaces(self, conn: Any, user_id: str, head: str, now: float) -> Any:
        """Stored namespaces of a user under the prefix `head` ("" for all)."""

    async def setup(self) -> None:
        await self.store.setup()

    # -- requests --------------------------------------------------------------------------

    def _put_request(
        self, user_id: str, namespace: Sequence[str], key: str, value: dict[str, Any], ttl: Any
    ) -> tuple[_Put, bool]:
        if not isinstance(value, dict):
            raise InvalidItemError(f"an item value must be an object, not {type(value).__name__}")
        ns = _namespace(namespace, "namespace", empty=False)
        if ns.split(".", 1)[0] == "langgraph":
            raise InvalidItemError(
                "a namespace must not start with 'langgraph' (LangGraph reserves it); "
                "start it with another label"
            )
        now = time.time()
        purge = now - self._purged_at >= PURGE_EVERY
        if purge:
            self._purged_at = now
        encoded = dumps(value, what="an item value")
        return _Put(user_id, ns, _key(key), encoded, _ttl(ttl), now), purge

    def _search_request(
        self,
        user_id: str,
        namespace_prefix: Sequence[str],
        filter: dict[str, Any] | None,
        limit: int,
        offset: int,
        refresh_ttl: bool | None,
    ) -> _Search:
        _page(limit, offset)
        prefix = _namespace(namespace_prefix, "namespace_prefix", empty=True)
        wanted = _filter(filter)
        encoded = dumps(wanted, what="a filter") if wanted else None
        refresh = refresh_ttl is not False
        return _Search(user_id, prefix, encoded, limit, offset, refresh, time.time())

    @staticmethod
    def _item(row: Sequence[Any]) -> Item:
        return Item(
            namespace=tuple(row[0].split(".")),
            key=row[1],
            value=json.loads(row[2]) if isinstance(row[2], str) else row[2],
            created_at=_time(row[3]),
            updated_at=_time(row[4]),
        )

    # -- async -----------------------------------------------------------------------------

    async def put(
        self,
        user_id: str,
        namespace: Sequence[str],
        key: str,
        value: dict[str, Any],
        ttl: float | None = None,
    ) -> None:
        """Create or replace the item (its created_at is kept). `ttl`: minutes to keep it."""
        put, purge = self._put_request(user_id, namespace, key, value, ttl)
        await self.store.call(lambda conn: self._put(conn, put, purge))

    async def get(
        self, user_id: str, namespace: Sequence[str], key: str, *, refresh_ttl: bool | None = None
    ) -> Item | None:
        """The item, or None (also when it expired). A read refreshes its ttl unless
        `refresh_ttl` is False."""
        ns, k, now = _namespace(namespace, "namespace", empty=False), _key(key), time.time()
        refresh = refresh_ttl is not False
        row = await self.store.call(lambda conn: self._get(conn, user_id, ns, k, refresh, now))
        return self._item(row) if row is not None else None

    async def delete(self, user_id: str, namespace: Sequence[str], key: str) -> None:
        """Remove the item; nothing happens when there is none."""
        ns, k = _namespace(namespace, "namespace", empty=False), _key(key)
        await self.store.call(lambda conn: self._delete(conn, user_id, ns, k))

    async def search(
        self,
        user_id: str,
        namespace_prefix: Sequence[str] = (),
        *,
        filter: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        query: str | None = None,
        refresh_ttl: bool | None = None,
    ) -> list[Item]:
        """The user's items under `namespace_prefix` whose value matches `filter`, most
        recently updated first. `query` filters nothing (no semantic index; see the module)."""
        search = self._search_request(user_id, namespace_prefix, filter, limit, offset, refresh_ttl)
        rows = await self.store.call(lambda conn: self._search(conn, search))
        return [self._item(row) for row in rows]

    async def list_namespaces(
        self,
        user_id: str,
        *,
        prefix: Sequence[str] | None = None,
        suffix: Sequence[str] | None = None,
        max_depth: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Namespace]:
        """The user's namespaces that start with `prefix` and end with `suffix` (a `*` label
        matches any label), cut to `max_depth` labels, sorted, a page at a time."""
        head, pre, suf = self._namespace_request(prefix, suffix, max_depth, limit, offset)
        now = time.time()
        stored = await self.store.call(lambda conn: self._namespaces(conn, user_id, head, now))
        return _select_namespaces(stored, pre, suf, max_depth, limit, offset)

    @staticmethod
    def _namespace_request(
        prefix: Sequence[str] | None,
        suffix: Sequence[str] | None,
        max_depth: int | None,
        limit: int,
        offset: int,
    ) -> tuple[str, Namespace | None, Namespace | None]:
        _page(limit, offset)
        if max_depth is not None and max_depth < 1:
            raise InvalidItemError(f"max_depth must be 1 or more, got {max_depth}")
        _namespace(prefix or (), "prefix", empty=True)
        _namespace(suffix or (), "suffix", empty=True)
        pre = tuple(prefix) if prefix else None
        suf = tuple(suffix) if suffix else None
        return ".".join(_literal_head(pre)), pre, suf

    # -- blocking (LangGraph's sync store API) ---------------------------------------------

    def put_blocking(
        self,
        user_id: str,
        namespace: Sequence[str],
        key: str,
        value: dict[str, Any],
        ttl: float | None = None,
    ) -> None:
        put, purge = self._put_request(user_id, namespace, key, value, ttl)
        self.store.call_blocking(lambda conn: self._put(conn, put, purge))

    def get_blocking(
        self, user_id: str, namespace: Sequence[str], key: str, *, refresh_ttl: bool | None = None
    ) -> Item | None:
        ns, k, now = _namespace(namespace, "namespace", empty=False), _key(key), time.time()
        refresh = refresh_ttl is not False
        row = self.store.call_blocking(lambda conn: self._get(conn, user_id, ns, k, refresh, now))
        return self._item(row) if row is not None else None

    def delete_blocking(self, user_id: str, namespace: Sequence[str], key: str) -> None:
        ns, k = _namespace(namespace, "namespace", empty=False), _key(key)
        self.store.call_blocking(lambda conn: self._delete(conn, user_id, ns, k))

    def search_blocking(
        self,
        user_id: str,
        namespace_prefix: Sequence[str] = (),
        *,
        filter: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        query: str | None = None,
        refresh_ttl: bool | None = None,
    ) -> list[Item]:
        search = self._search_request(user_id, namespace_prefix, filter, limit, offset, refresh_ttl)
        rows = self.store.call_blocking(lambda conn: self._search(conn, search))
        return [self._item(row) for row in rows]

    def list_namespaces_blocking(
        self,
        user_id: str,
        *,
        prefix: Sequence[str] | None = None,
        suffix: Sequence[str] | None = None,
        max_depth: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Namespace]:
        head, pre, suf = self._namespace_request(prefix, suffix, max_depth, limit, offset)
        now = time.time()
        stored = self.store.call_blocking(lambda conn: self._namespaces(conn, user_id, head, now))
        return _select_namespaces(stored, pre, suf, max_depth, limit, offset)


def _under(ns: str, prefix: str) -> bool:
    return not prefix or ns == prefix or ns.startswith(prefix + ".")


# -- memory ------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Row:
    value: str  # JSON: a stored item never aliases the caller's dict
    created_at: float
    updated_at: float
    ttl: float | None
    expires_at: float | None

    def live(self, now: float) -> bool:
        return self.expires_at is None or self.expires_at > now


class _Dicts:
    """The memory backend's `call`: operations run at once, on the caller's thread."""

    def __init__(self) -> None:
        # user -> (namespace, key) -> row
        self.users: dict[str, dict[tuple[str, str], _Row]] = {}

    async def setup(self) -> None:
        return None

    async def call(self, fn: Callable[[_Dicts], R]) -> R:
        return fn(self)

    def call_blocking(self, fn: Callable[[_Dicts], R]) -> R:
        return fn(self)


class MemoryItemStore(ItemStore):
    """Items in a dict, for an InMemoryCheckpointer: they die with the process."""

    def __init__(self) -> None:
        super().__init__()
        self.store = _Dicts()

    def _put(self, conn: _Dicts, put: _Put, purge: bool) -> None:
        rows = conn.users.setdefault(put.user_id, {})
        if purge:
            for user_rows in conn.users.values():
                for ref in [r for r, row in user_rows.items() if not row.live(put.now)]:
                    del user_rows[ref]
        old = rows.get((put.namespace, put.key))
        created = old.created_at if old is not None and old.live(put.now) else put.now
        expires = put.now + put.ttl * 60 if put.ttl is not None else None
        rows[(put.namespace, put.key)] = _Row(put.value, created, put.now, put.ttl, expires)

    def _live(self, conn: _Dicts, user_id: str, ref: tuple[str, str], now: float) -> _Row | None:
        row = conn.users.get(user_id, {}).get(ref)
        return row if row is not None and row.live(now) else None

    @staticmethod
    def _row(ref: tuple[str, str], row: _Row, refresh: bool, now: float) -> tuple[Any, ...]:
        if refresh and row.ttl is not None:
            row.expires_at = now + row.ttl * 60
        return (ref[0], ref[1], row.value, row.created_at, row.updated_at)

    def _get(
        self, conn: _Dicts, user_id: str, ns: str, key: str, refresh: bool, now: float
    ) -> tuple[Any, ...] | None:
        row = self._live(conn, user_id, (ns, key), now)
        return self._row((ns, key), row, refresh, now) if row is not None else None

    def _delete(self, conn: _Dicts, user_id: str, ns: str, key: str) -> None:
        conn.users.get(user_id, {}).pop((ns, key), None)

    def _search(self, conn: _Dicts, search: _Search) -> list[tuple[Any, ...]]:
        wanted = json.loads(search.filter) if search.filter else None
        found = [
            (ref, row)
            for ref, row in conn.users.get(search.user_id, {}).items()
            if row.live(search.now)
            and _under(ref[0], search.prefix)
            and (wanted is None or json_contains(json.loads(row.value), wanted))
        ]
        found.sort(key=lambda f: (-f[1].updated_at, f[0]))
        page = found[search.offset : search.offset + search.limit]
        return [self._row(ref, row, search.refresh, search.now) for ref, row in page]

    def _namespaces(self, conn: _Dicts, user_id: str, head: str, now: float) -> list[str]:
        rows = conn.users.get(user_id, {})
        return list({ns for (ns, _), row in rows.items() if row.live(now) and _under(ns, head)})


# -- SQLite ------------------------------------------------------------------------------------

# Rows of a user under a prefix: the exact namespace, or those that start with it and a "."
# ("a.b" < "a.b." < anything under it < "a.b/"), so the primary key's order serves it.
_SQLITE_UNDER = "(namespace = ? OR (namespace > ? AND namespace < ?))"
_ROW = "namespace, key, value, created_at, updated_at"


def _bounds(prefix: str) -> tuple[str, str, str]:
    return prefix, prefix + ".", prefix + "/"


class SqliteItemStore(ItemStore):
    """Items in a SqliteCheckpointer's file (table `store_items`), on its worker thread."""

    def __init__(self, store: SqliteCheckpointer) -> None:
        super().__init__()
        self.store = store

    def _put(self, conn: Any, put: _Put, purge: bool) -> None:
        if purge:
            conn.execute("DELETE FROM store_items WHERE expires_at <= ?", (put.now,))
        expires = put.now + put.ttl * 60 if put.ttl is not None else None
        conn.execute(
            "INSERT INTO store_items (user_id, namespace, key, value, created_at, updated_at, "
            "ttl, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (user_id, namespace, key) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at, ttl = excluded.ttl, "
            "expires_at = excluded.expires_at, created_at = CASE WHEN "
            "store_items.expires_at <= excluded.updated_at THEN excluded.created_at "
            "ELSE store_items.created_at END",
            (put.user_id, put.namespace, put.key, put.value, put.now, put.now, put.ttl, expires),
        )

    @staticmethod
    def _refresh(conn: Any, user_id: str, refs: list[tuple[str, str]], now: float) -> None:
        conn.executemany(
            "UPDATE store_items SET expires_at = ? + ttl * 60 WHERE user_id = ? AND "
            "namespace = ? AND key = ? AND ttl IS NOT NULL",
            [(now, user_id, ns, key) for ns, key in refs],
        )

    def _get(
        self, conn: Any, user_id: str, ns: str, key: str, refresh: bool, now: float
    ) -> tuple[Any, ...] | None:
        row = conn.execute(
            f"SELECT {_ROW}, ttl FROM store_items WHERE user_id = ? AND namespace = ? "
            "AND key = ? AND (expires_at IS NULL OR expires_at > ?)",
            (user_id, ns, key, now),
        ).fetchone()
        if row is not None and refresh and row[5] is not None:
            self._refresh(conn, user_id, [(ns, key)], now)
        return tuple(row[:5]) if row is not None else None

    def _delete(self, conn: Any, user_id: str, ns: str, key: str) -> None:
        conn.execute(
            "DELETE FROM store_items WHERE user_id = ? AND namespace = ? AND key = ?",
            (user_id, ns, key),
        )

    def _search(self, conn: Any, search: _Search) -> list[tuple[Any, ...]]:
        sql = (
            f"SELECT {_ROW}, ttl FROM store_items WHERE user_id = ? "
            "AND (expires_at IS NULL OR expires_at > ?)"
        )
        args: list[Any] = [search.user_id, search.now]
        if search.prefix:
            sql += " AND " + _SQLITE_UNDER
            args += _bounds(search.prefix)
        if search.filter is not None:
            sql += " AND agentflow_json_contains(value, ?)"
            args.append(search.filter)
        sql += " ORDER BY updated_at DESC, namespace, key LIMIT ? OFFSET ?"
        rows = conn.execute(sql, [*args, search.limit, search.offset]).fetchall()
        if search.refresh:
            timed = [(r[0], r[1]) for r in rows if r[5] is not None]
            if timed:
                self._refresh(conn, search.user_id, timed, search.now)
        return [tuple(r[:5]) for r in rows]

    def _namespaces(self, conn: Any, user_id: str, head: str, now: float) -> list[str]:
        sql = (
            "SELECT DISTINCT namespace FROM store_items WHERE user_id = ? "
            "AND (expires_at IS NULL OR expires_at > ?)"
        )
        args: list[Any] = [user_id, now]
        if head:
            sql += " AND " + _SQLITE_UNDER
            args += _bounds(head)
        return [r[0] for r in conn.execute(sql, args).fetchall()]


# -- Postgres ----------------------------------------------------------------------------------


class PgItemStore(ItemStore):
    """Items in a PgCheckpointer's schema (table `store_items`, migration 7), through its
    pool. The namespace column sorts bytewise (COLLATE "C"), so a prefix is an index range;
    `filter` is `value @> filter`, served by a GIN index."""

    def __init__(self, store: Any) -> None:
        super().__init__()
        self.store = store
        self.s = store.s

    def _under(self, first: int) -> str:
        a, b, c = (f"${first + i}" for i in range(3))
        return f"(namespace = {a} OR (namespace > {b} AND namespace < {c}))"

    async def _put(self, conn: asyncpg.Connection, put: _Put, purge: bool) -> None:
        if purge:
            await conn.execute(f"DELETE FROM {self.s}.store_items WHERE expires_at <= $1", put.now)
        await conn.execute(
            f"INSERT INTO {self.s}.store_items AS i (user_id, namespace, key, value, "
            "created_at, updated_at, ttl, expires_at) VALUES ($1, $2, $3, $4::jsonb, $5, $5, "
            "$6::double precision, $5 + $6 * 60) "
            "ON CONFLICT (user_id, namespace, key) DO UPDATE SET value = EXCLUDED.value, "
            "updated_at = EXCLUDED.updated_at, ttl = EXCLUDED.ttl, "
            "expires_at = EXCLUDED.expires_at, created_at = CASE WHEN "
            "i.expires_at <= EXCLUDED.updated_at THEN EXCLUDED.created_at ELSE i.created_at END",
            put.user_id, put.namespace, put.key, put.value, put.now, put.ttl,
        )  # fmt: skip

    async def _get(
        self, conn: asyncpg.Connection, user_id: str, ns: str, key: str, refresh: bool, now: float
    ) -> tuple[Any, ...] | None:
        live = (
            "user_id = $1 AND namespace = $2 AND key = $3 AND (expires_at IS NULL OR "
            "expires_at > $4)"
        )
        if not refresh:
            row = await conn.fetchrow(
                f"SELECT {_ROW} FROM {self.s}.store_items WHERE {live}", user_id, ns, key, now
            )
            return tuple(row) if row is not None else None
        # One round trip: the read, and the ttl of a timed item renewed (an item without a
        # ttl is not written, so reads never bloat the table).
        row = await conn.fetchrow(
            f"WITH touched AS (UPDATE {self.s}.store_items SET expires_at = $4 + ttl * 60 "
            f"WHERE {live} AND ttl IS NOT NULL) "
            f"SELECT {_ROW} FROM {self.s}.store_items WHERE {live}",
            user_id, ns, key, now,
        )  # fmt: skip
        return tuple(row) if row is not None else None

    async def _delete(self, conn: asyncpg.Connection, user_id: str, ns: str, key: str) -> None:
        await conn.execute(
            f"DELETE FROM {self.s}.store_items WHERE user_id = $1 AND namespace = $2 AND key = $3",
            user_id, ns, key,
        )  # fmt: skip

    async def _search(self, conn: asyncpg.Connection, search: _Search) -> list[tuple[Any, ...]]:
        sql = (
            f"SELECT {_ROW}, ttl FROM {self.s}.store_items WHERE user_id = $1 "
            "AND (expires_at IS NULL OR expires_at > $2)"
        )
        args: list[Any] = [search.user_id, search.now]
        if search.prefix:
            sql += " AND " + self._under(len(args) + 1)
            args += _bounds(search.prefix)
        if search.filter is not None:
            args.append(search.filter)
            sql += f" AND value @> ${len(args)}::jsonb"
        sql += f" ORDER BY updated_at DESC, namespace, key LIMIT ${len(args) + 1} "
        sql += f"OFFSET ${len(args) + 2}"
        rows = await conn.fetch(sql, *args, search.limit, search.offset)
        timed = [(r[0], r[1]) for r in rows if r[5] is not None]
        if search.refresh and timed:
            await conn.execute(
                f"UPDATE {self.s}.store_items AS i SET expires_at = $2 + i.ttl * 60 "
                "FROM unnest($3::text[], $4::text[]) AS t(namespace, key) WHERE "
                "i.user_id = $1 AND i.namespace = t.namespace AND i.key = t.key",
                search.user_id, search.now, [t[0] for t in timed], [t[1] for t in timed],
            )  # fmt: skip
        return [tuple(r[:5]) for r in rows]

    async def _namespaces(
        self, conn: asyncpg.Connection, user_id: str, head: str, now: float
    ) -> list[str]:
        sql = (
            f"SELECT DISTINCT namespace FROM {self.s}.store_items WHERE user_id = $1 "
            "AND (expires_at IS NULL OR expires_at > $2)"
        )
        args: list[Any] = [user_id, now]
        if head:
            sql += " AND " + self._under(3)
            args += _bounds(head)
        return [r[0] for r in await conn.fetch(sql, *args)]


# -- which one ---------------------------------------------------------------------------------

_STORES: weakref.WeakKeyDictionary[Checkpointer, ItemStore] = weakref.WeakKeyDictionary()


def item_store(checkpointer: Checkpointer) -> ItemStore:
    """The item store kept with `checkpointer`: in its SQLite file or Postgres schema, or,
    for an InMemoryCheckpointer, beside it in memory. The same one for every call."""
    found = _STORES.get(checkpointer)
    if found is None:
        found = _STORES[checkpointer] = _new_item_store(checkpointer)
    return found


def _new_item_store(checkpointer: Checkpointer) -> ItemStore:
    if isinstance(checkpointer, InMemoryCheckpointer):
        return MemoryItemStore()
    if isinstance(checkpointer, SqliteCheckpointer):
        return SqliteItemStore(checkpointer)
    from agentflow.checkpointer.postgres import PgCheckpointer

    if isinstance(checkpointer, PgCheckpointer):
        return PgItemStore(checkpointer)
    raise CheckpointerError(
        f"{type(checkpointer).__name__} keeps no store items; use an InMemoryCheckpointer, "
        "a SqliteCheckpointer or a PgCheckpointer (checkpointer: memory, sqlite or postgres)"
    )
