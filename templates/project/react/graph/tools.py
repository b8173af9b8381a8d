"""Tools the agent can call. Each is a typed function; the docstring is what the model sees."""

from __future__ import annotations

import datetime as dt

from agentflow.tools import tool


@tool
def add(a: float, b: float) -> float:
    """Add two numbers.

    Args:
        a: the first number
        b: the second number
    """
    return a + b


@tool(read_only=True)
def utc_time() -> str:
    """The current UTC date and time (ISO-8601): what time or clock it is now."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
