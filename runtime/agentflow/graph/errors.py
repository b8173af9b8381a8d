"""Errors raised by the graph core.

AgentflowError
 └── GraphError                 the graph definition is wrong (raised at build/compile time)
      ├── InvalidInputError     input or a node's return value has the wrong shape
      ├── GraphRecursionError   a run took more steps than its recursion_limit
      ├── NodeError             a node raised; the original exception is __cause__
      └── CheckpointerError     storage failed or is misconfigured
"""

from __future__ import annotations


class AgentflowError(Exception):
    """Base class of every error agentflow raises on purpose."""


class GraphError(AgentflowError):
    """The graph is defined or used wrongly; the message names the node and the fix."""


class InvalidInputError(GraphError):
    """Input (or a node's return value) has the wrong shape."""


class NothingToResumeError(InvalidInputError):
    """A resume (or `Command(resume=...)`) on a thread with no pending interrupt."""


class GraphRecursionError(GraphError):
    """A run exceeded its recursion_limit."""


class NodeError(GraphError):
    """A node raised an exception; the original is chained as __cause__."""

    def __init__(self, node: str, error: BaseException) -> None:
        super().__init__(f"node {node!r} failed: {type(error).__name__}: {error}")
        self.node = node
        self.error = error


class CheckpointerError(AgentflowError):
    """The checkpointer could not read or write state."""
