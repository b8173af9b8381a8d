"""How the CLI talks to people: one red line with the problem, then a hint. No tracebacks
unless --debug."""

from __future__ import annotations

import os
import sys

from rich.console import Console

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_SERVER_FAILED = 3
EXIT_INTERRUPTED = 130


def _no_color() -> bool:
    return bool(os.environ.get("NO_COLOR"))


console = Console(no_color=_no_color(), highlight=False)
err_console = Console(stderr=True, no_color=_no_color(), highlight=False)


class CliError(Exception):
    """An expected failure: printed as `error: <message>` plus an optional hint."""

    def __init__(self, message: str, *, hint: str | None = None, code: int = EXIT_FAILURE):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code


def config_hint(exc: Exception) -> str:
    """The hint line for a configuration error: where it is and how to fix it."""
    where = getattr(exc, "where", None)
    fix = getattr(exc, "fix", None)
    parts = [f"in {where}" if where else None, fix]
    return "; ".join(p for p in parts if p) or "run `agentflow doctor` for a full check"


def print_error(message: str, hint: str | None = None) -> None:
    err_console.print(f"[bold red]error:[/] {message}", markup=True, soft_wrap=True)
    if hint:
        err_console.print(f"[dim]hint:[/] {hint}", markup=True, soft_wrap=True)


def fail(message: str, *, hint: str | None = None, code: int = EXIT_FAILURE) -> None:
    print_error(message, hint)
    sys.exit(code)
