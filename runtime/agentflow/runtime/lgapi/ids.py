"""The ids the LangGraph API gives a served graph's default assistant: the uuid5 of the graph
id, in LangGraph's namespace, so a client that stored one against `langgraph dev` finds the
same assistant here."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

__all__ = ["NAMESPACE_GRAPH", "assistant_id", "assistant_ids"]

NAMESPACE_GRAPH = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")


def assistant_id(graph_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE_GRAPH, graph_id))


def assistant_ids(graph_ids: Iterable[str]) -> list[str]:
    """What names the graphs as assistants: each graph id and its assistant id."""
    names = list(graph_ids)
    return [*names, *(assistant_id(name) for name in names)]
