"""`agentflow api`: check the blocking problems, then serve."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentflow_cli.output import EXIT_SERVER_FAILED, CliError, config_hint, err_console, print_error

if TYPE_CHECKING:
    from agentflow.runtime import Settings
    from agentflow_cli.checks import Finding


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
    from agentflow.runtime.settings import export_dotenv

    overrides: dict[str, Any] = {
        k: v
        for k, v in {"host": host, "port": port, "workers": workers, "log_level": log_level}.items()
        if v is not None
    }
    try:
        settings = load_settings(config, **overrides)
        for warning in settings.warnings:
            err_console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
        export_dotenv(settings)  # the graph and required_env see the dotenv file's values
        refuse_blocking_problems(settings)
        preflight(settings)  # the last line of defence: auth objects, checkpointer setup
    except AgentflowError as exc:
        raise CliError(
            f"cannot start the server: {getattr(exc, 'problem', None) or exc}",
            hint=config_hint(exc),
            code=EXIT_SERVER_FAILED,
        ) from exc
    serve(settings, overrides=overrides)


def blocking_problems(settings: Settings) -> list[Finding]:
    """The cheap error-severity checks of `agentflow doctor` that would make every request
    fail. The graph is imported in this process: the server is about to import it anyway.
    The settings loader has already refused a missing or short JWT secret and a bad
    algorithm. Reaching the checkpointer is left to `preflight`, which retries while the
    database starts (one quick probe would fail a stack that starts app and database
    together)."""
    from agentflow_cli.checks import (
        environment,
        graph,
        persistence,
        scrubbed,
        secret_values,
        settings_secrets,
    )

    outcomes = [
        (persistence.WORKERS, persistence.workers_outcome(settings)),
        (environment.REQUIRED_ENV,
         environment.required_env_outcome(settings.required_env, os.environ)),
        (persistence.SQLITE, persistence.sqlite_outcome(settings.checkpointer)),
        (graph.GRAPH, graph.import_outcome(settings.graph, settings.project_dir)),
    ]  # fmt: skip
    secrets = secret_values(os.environ, settings.required_env) + settings_secrets(settings)
    return [
        scrubbed(check.finding(outcome), secrets)
        for check, outcome in outcomes
        if outcome is not None and outcome.severity == "error"
    ]


def refuse_blocking_problems(settings: Settings) -> None:
    """Print every blocking problem and stop (exit 3) before binding the port."""
    problems = blocking_problems(settings)
    if not problems:
        return
    *others, last = problems
    for finding in others:
        print_error(f"cannot start the server: {finding.detail} [{finding.code}]", finding.fix)
    raise CliError(
        f"cannot start the server: {last.detail} [{last.code}]",
        hint=last.fix or "run `agentflow doctor` for a full check",
        code=EXIT_SERVER_FAILED,
    )
