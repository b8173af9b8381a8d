"""Where thread state lives: the Checkpointer interface and its backends."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentflow.checkpointer.items import (
    Item,
    ItemStore,
    MemoryItemStore,
    PgItemStore,
    SqliteItemStore,
    item_store,
)
from agentflow.checkpointer.memory import InMemoryCheckpointer
from agentflow.checkpointer.pg_schema import migrations
from agentflow.checkpointer.sqlite import SqliteCheckpointer
from agentflow.errors import InvalidItemError
from agentflow.graph.errors import CheckpointerError
from agentflow.graph.storage import (
    Checkpoint,
    Checkpointer,
    ConflictError,
    IdempotencyRecord,
    InvalidCursorError,
    Page,
    ThreadInfo,
    ThreadSnapshot,
)

if TYPE_CHECKING:
    from agentflow.checkpointer.langgraph import LangGraphSaver
    from agentflow.checkpointer.langgraph_store import LangGraphStore
    from agentflow.checkpointer.postgres import PgCheckpointer

__all__ = [
    "Checkpoint",
    "Checkpointer",
    "CheckpointerError",
    "ConflictError",
    "IdempotencyRecord",
    "InMemoryCheckpointer",
    "InvalidCursorError",
    "InvalidItemError",
    "Item",
    "ItemStore",
    "LangGraphSaver",
    "LangGraphStore",
    "MemoryItemStore",
    "Page",
    "PgCheckpointer",
    "PgItemStore",
    "SqliteCheckpointer",
    "SqliteItemStore",
    "ThreadInfo",
    "ThreadSnapshot",
    "item_store",
    "migrations",
    "open_checkpointer",
]


def __getattr__(name: str) -> Any:
    # The Postgres backend (asyncpg, redis) loads only when it is used, and the LangGraph
    # saver and store only then too (they need the `langgraph` extra).
    if name == "PgCheckpointer":
        from agentflow.checkpointer.postgres import PgCheckpointer

        return PgCheckpointer
    if name == "LangGraphSaver":
        from agentflow.checkpointer.langgraph import LangGraphSaver

        return LangGraphSaver
    if name == "LangGraphStore":
        from agentflow.checkpointer.langgraph_store import LangGraphStore

        return LangGraphStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_checkpointer(spec: str) -> Checkpointer:
    """Build a checkpointer from a short spec: ``memory``, ``sqlite`` (the default file
    `.agentflow/state.db`), ``sqlite:PATH`` / ``sqlite:///ABSOLUTE/PATH``, or a Postgres URL
    ``postgresql://user:pass@host/db`` (``?agentflow_schema=NAME`` picks the schema and
    ``&agentflow_redis=redis://...`` adds the Redis cache)."""
    kind, _, rest = spec.partition(":")
    if kind in ("postgres", "postgresql") and rest.startswith("//"):
        from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

        from agentflow.checkpointer.postgres import PgCheckpointer

        parts = urlsplit(spec)
        query = dict(parse_qsl(parts.query))
        schema = query.pop("agentflow_schema", "agentflow")
        redis_url = query.pop("agentflow_redis", None)
        dsn = urlunsplit(parts._replace(query=urlencode(query)))
        return PgCheckpointer(dsn, schema=schema, redis_url=redis_url)
    if kind == "memory" and not rest:
        return InMemoryCheckpointer()
    if kind == "sqlite":
        if not rest:
            return SqliteCheckpointer()
        path = rest[2:] if rest.startswith("//") else rest
        return SqliteCheckpointer(Path(path))
    raise CheckpointerError(
        f"unknown checkpointer {kind!r}; use 'memory', 'sqlite', 'sqlite:PATH' or a "
        "postgresql:// URL"
    )
