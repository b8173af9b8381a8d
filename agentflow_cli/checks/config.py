"""Config checks: agentflow.json is there, parses, has no misspelt keys, and loads."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from agentflow.runtime.settings import KNOWN_KEYS, ConfigError
from agentflow_cli.checks import Check, Outcome, Skipped
from agentflow_cli.checks.context import Context

# Keys of the nested objects the settings loader reads with .get() (unknown ones are silently
# ignored there, so a typo would never be noticed). Mirrors runtime/agentflow/runtime/settings.py.
NESTED_KEYS = {
    "limits": frozenset({"max_body_bytes", "run_timeout", "recursion_limit", "max_active_runs"}),
    "auth": frozenset({"type", "kind", "path", "algorithm", "secret", "public_key"})
    | {"jwks_url", "audience", "issuer", "leeway"},
}


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


def unknown_keys(data: dict[str, object]) -> list[tuple[str, str | None]]:
    """(dotted key, closest known key or None) for every key the loader would ignore."""
    found = [(key, _closest(key, KNOWN_KEYS)) for key in data if key not in KNOWN_KEYS]
    for section, known in NESTED_KEYS.items():
        value = data.get(section)
        if isinstance(value, dict):
            found += [
                (f"{section}.{key}", _closest(key, known)) for key in value if key not in known
            ]
    return found


def _closest(key: str, known: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _known_keys(ctx: Context) -> Outcome:
    found = unknown_keys(ctx.data or {})
    if not found:
        return Outcome("ok", "every key is one agentflow reads")
    details, fixes = [], []
    for key, suggestion in found:
        hint = f" (did you mean {suggestion!r}?)" if suggestion else ""
        details.append(f"{key!r}{hint}")
        fixes.append(f"rename {key!r} to {suggestion!r}" if suggestion else f"remove {key!r}")
    return Outcome(
        "warning",
        f"unknown key{'s' if len(found) > 1 else ''} {', '.join(details)}: ignored, so the "
        "setting you meant does not apply",
        "; ".join(fixes) + f" (known keys: {', '.join(sorted(KNOWN_KEYS))})",
    )


def settings_error_owner(exc: Exception) -> str:
    """The code of the check that reports this settings error (a more specific one than
    AF-CONFIG-004 when there is one)."""
    if not isinstance(exc, ConfigError):
        return LOADS.code
    where = exc.where or ""
    if where.endswith(": env"):
        return "AF-ENV-001"
    if "refers to ${" in exc.problem:
        return "AF-ENV-003"
    if ": auth" in where or exc.problem.startswith("JWT_SECRET_KEY"):
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
