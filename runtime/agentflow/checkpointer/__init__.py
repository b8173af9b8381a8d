"""Where thread state lives: the Checkpointer interface and its backends."""

from __future__ import annotations

from pathlib import Path

from agentflow.checkpointer.base import (
    Checkpoint,
    Checkpointer,
    ConflictError,
    IdempotencyRecord,
    InvalidCursorError,
    Page,
    ThreadInfo,
    ThreadSnapshot,
)
from agentflow.checkpointer.memory import InMemoryCheckpointer
from agentflow.checkpointer.sqlite import DEFAULT_PATH, SqliteCheckpointer
from agentflow.graph.errors import CheckpointerError

__all__ = [
    "Checkpoint",
    "Checkpointer",
    "CheckpointerError",
    "ConflictError",
    "IdempotencyRecord",
    "InMemoryCheckpointer",
    "InvalidCursorError",
    "Page",
    "SqliteCheckpointer",
    "ThreadInfo",
    "ThreadSnapshot",
    "open_checkpointer",
]


def open_checkpointer(spec: str) -> Checkpointer:
    """Build a checkpointer from a short spec: ``memory``, ``sqlite`` (the default file
    `.agentflow/state.db`), or ``sqlite:PATH`` / ``sqlite:///ABSOLUTE/PATH``."""
    kind, _, rest = spec.partition(":")
    if kind == "memory" and not rest:
        return InMemoryCheckpointer()
    if kind == "sqlite":
        if not rest:
            return SqliteCheckpointer(DEFAULT_PATH)
        path = rest[2:] if rest.startswith("//") else rest
        return SqliteCheckpointer(Path(path))
    raise CheckpointerError(
        f"unknown checkpointer {spec!r}; use 'memory', 'sqlite' or 'sqlite:PATH'"
    )
