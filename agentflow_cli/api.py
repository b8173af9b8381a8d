"""`agentflow api`: check the blocking problems, then serve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentflow_cli.output import EXIT_SERVER_FAILED, CliError, err_console


def run_api(
    *,
    config: Path | None,
    host: str | None,
    port: int | None,
    workers: int | None,
    log_level: str | None,
) -> None:
    from agentflow.graph.errors import AgentflowError
    from agentflow.runtime import load_settings, preflight, serve

    overrides: dict[str, Any] = {
        k: v
        for k, v in {"host": host, "port": port, "workers": workers, "log_level": log_level}.items()
        if v is not None
    }
    try:
        settings = load_settings(config, **overrides)
        for warning in settings.warnings:
            err_console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
        preflight(settings)
    except AgentflowError as exc:
        raise CliError(
            f"cannot start the server: {getattr(exc, 'problem', None) or exc}",
            hint=_hint(exc),
            code=EXIT_SERVER_FAILED,
        ) from exc
    serve(settings, overrides=overrides)


def _hint(exc: Exception) -> str | None:
    where = getattr(exc, "where", None)
    fix = getattr(exc, "fix", None)
    parts = [f"in {where}" if where else None, fix]
    return "; ".join(p for p in parts if p) or "run `agentflow doctor` for a full check"
