"""Errors raised by the graph core. They are defined in `agentflow.errors` (the one error tree,
drawn there) and re-exported here, so `agentflow.graph.errors` keeps working."""

from __future__ import annotations

from agentflow.errors import (
    AgentflowError,
    CheckpointerError,
    GraphError,
    GraphRecursionError,
    InvalidInputError,
    NodeError,
    NothingToResumeError,
)

__all__ = [
    "AgentflowError",
    "CheckpointerError",
    "GraphError",
    "GraphRecursionError",
    "InvalidInputError",
    "NodeError",
    "NothingToResumeError",
]
