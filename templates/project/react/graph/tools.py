"""Tools the agent can call: typed functions whose docstrings the model reads."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agentflow.tools import tool


@tool(read_only=True)
def add(a: float, b: float) -> float:
    """Add two numbers: a + b.

    Args:
        a: the first number
        b: the second number
    """
    return a + b


@tool(read_only=True)
def subtract(a: float, b: float) -> float:
    """Subtract one number from another: a - b.

    Args:
        a: the number to subtract from
        b: the number to subtract
    """
    return a - b


@tool(read_only=True)
def multiply(a: float, b: float) -> float:
    """Multiply two numbers: a * b.

    Args:
        a: the first number
        b: the second number
    """
    return a * b


@tool(read_only=True)
def divide(a: float, b: float) -> float:
    """Divide one number by another: a / b.

    Args:
        a: the dividend
        b: the divisor, not zero
    """
    if b == 0:
        raise ValueError("cannot divide by zero")
    return a / b


@tool(read_only=True)
def current_time(timezone: str = "UTC") -> str:
    """The current date and time (ISO-8601) in a time zone: what time it is now.

    Args:
        timezone: an IANA time zone name such as UTC, Europe/Paris or America/New_York
    """
    if timezone.upper() in ("UTC", "Z"):
        zone: dt.tzinfo = dt.timezone.utc
    else:
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {timezone!r}; use an IANA name such as Europe/Paris"
            ) from None
    return dt.datetime.now(zone).isoformat(timespec="seconds")
