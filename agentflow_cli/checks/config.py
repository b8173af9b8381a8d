"""Config checks: agentflow.json is there, parses, has only declared keys, and loads."""

from __future__ import annotations

from agentflow.runtime import ConfigError
from agentflow.utils import unknown_keys
from agentflow_cli.checks import Check, Outcome, Skipped
from agentflow_cli.checks.context import Context


def _found(ctx: Context) -> Outcome:
    if ctx.locate_error is not None:
        return Outcome("error", ctx.locate_error.problem, ctx.locate_error.fix or "")
    return Outcome("ok", f"using {ctx.config_path}")


def _valid_json(ctx: Context) -> Outcome | Skipped:
    if ctx.config_path is None:
        return Skipped("there is no agentflow.json to read")
    if ctx.parse_error is not None:
        return Outcome("error", ctx.parse_error.problem, ctx.parse_error.fix or "")
    return Outcome("ok", f"a JSON object with {len(ctx.data or {})} keys")


def _known_keys(ctx: Context) -> Outcome:
    """Every key at any depth is one a setting declares (agentflow.utils.config)."""
    found = unknown_keys(ctx.data or {})
    if not found:
        return Outcome("ok", "every key is one agentflow reads")
    details = [
        f"{key!r}" + (f" (did you mean {meant!r}?)" if meant else "") for key, meant, _ in found
    ]
    fixes = [
        f"rename {key!r} to {meant!r}"
        if meant
        else f"remove {key!r} (known there: {', '.join(known)})"
        for key, meant, known in found
    ]
    return Outcome(
        "error",
        f"unknown key{'s' if len(found) > 1 else ''} {', '.join(details)}: agentflow refuses "
        "to start until the setting you meant is spelt as it reads it",
        "; ".join(fixes),
    )


def settings_error_owner(exc: Exception) -> str:
    """The code of the check that reports this settings error (a more specific one than
    AF-CONFIG-004 when there is one)."""
    if not isinstance(exc, ConfigError):
        return LOADS.code
    where = exc.where or ""
    if exc.problem.startswith("unknown key "):
        return "AF-CONFIG-003"
    if where.endswith(": env"):
        return "AF-ENV-001"
    if "refers to ${" in exc.problem:
        return "AF-ENV-003"
    if ": auth" in where or exc.problem.startswith("JWT_"):
        return "AF-SEC-004"
    return LOADS.code


def _loads(ctx: Context) -> Outcome | Skipped:
    exc = ctx.settings_error
    if exc is None:
        assert ctx.settings is not None
        s = ctx.settings
        auth = s.auth.kind if s.auth else "none"
        return Outcome("ok", f"mode {s.mode}, {s.checkpointer.kind} checkpointer, auth {auth}")
    owner = settings_error_owner(exc)
    if owner != LOADS.code:
        return Skipped(f"the settings do not load: see {owner}")
    if isinstance(exc, ConfigError):
        where = f"{exc.where}: " if exc.where else ""
        return Outcome("error", where + exc.problem, exc.fix or "correct that value")
    return Outcome(
        "error",
        f"the settings loader failed with {type(exc).__name__}: {exc}",
        "check the types of the values in agentflow.json against the README",
    )


LOADS = Check("AF-CONFIG-004", "config", "settings load", _loads)
CHECKS = (
    Check("AF-CONFIG-001", "config", "agentflow.json found", _found, needs_config=False),
    Check("AF-CONFIG-002", "config", "valid JSON", _valid_json, needs_config=False),
    Check("AF-CONFIG-003", "config", "known keys", _known_keys),
    LOADS,
)
