"""Tools the agent can call: typed functions whose docstrings the model reads."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from langchain_core.tools import tool


def _number(value: float) -> float:
    """42.0 -> 42: whole results read as whole numbers."""
    return int(value) if float(value).is_integer() else value


@tool
def add(a: float, b: float) -> float:
    """Add two numbers: a + b."""
    return _number(a + b)


@tool
def subtract(a: float, b: float) -> float:
    """Subtract one number from another: a - b."""
    return _number(a - b)


@tool
def multiply(a: float, b: float) -> float:
    """Multiply two numbers: a * b."""
    return _number(a * b)


@tool
def divide(a: float, b: float) -> float:
    """Divide one number by another: a / b (b not zero)."""
    if b == 0:
        raise ValueError("cannot divide by zero")
    return _number(a / b)


@tool
def current_time(timezone: str = "UTC") -> str:
    """The current date and time (ISO-8601) in an IANA time zone (UTC, Europe/Paris)."""
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


TOOLS = [add, subtract, multiply, divide, current_time]
