"""`agentflow api`: check the blocking problems, then serve."""

from __future__ import annotations

import json
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
        show_warnings(settings)
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


def show_warnings(settings: Settings) -> None:
    """Print the settings' warnings once: the server processes are told they were shown."""
    from agentflow.runtime import env

    for warning in settings.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
    os.environ[env.SHOWN_WARNINGS] = json.dumps(list(settings.warnings))


def project_environ(settings: Settings) -> dict[str, str]:
    """What the server will see: the dotenv file's values, real variables winning. Read,
    not exported: `play`'s reloaded workers must see later edits of the file."""
    from agentflow.runtime.settings import read_dotenv

    env_file = settings.env_file
    dotenv = read_dotenv(env_file) if env_file is not None and env_file.is_file() else {}
    return {**dotenv, **os.environ}


def blocking_problems(settings: Settings, *, import_graph: bool = True) -> list[Finding]:
    """The cheap error-severity checks of `agentflow doctor` that would make every request
    fail, and a port the server cannot bind. The graph is imported in this process (unless
    `import_graph` is false: `play` shows a broken graph in the page instead): the server
    is about to import it anyway. The settings loader has already refused a missing or
    short JWT secret and a bad algorithm. Reaching the checkpointer is left to `preflight`,
    which retries while the database starts (one quick probe would fail a stack that starts
    app and database together)."""
    from agentflow_cli.checks import (
        Outcome,
        environment,
        graph,
        persistence,
        runtime,
        scrubbed,
        secret_values,
        settings_secrets,
    )

    environ = project_environ(settings)
    port = runtime.port_outcome(settings.host, settings.port)
    taken = None if port.severity == "ok" else Outcome("error", port.detail, port.fix)
    outcomes = [
        (runtime.PORT, taken),
        (persistence.WORKERS, persistence.workers_outcome(settings)),
        (environment.REQUIRED_ENV,
         environment.required_env_outcome(settings.required_env, environ)),
        (persistence.SQLITE, persistence.sqlite_outcome(settings.checkpointer)),
    ]  # fmt: skip
    if import_graph:
        outcomes.append((graph.GRAPH, graph.import_outcome(settings.graph, settings.project_dir)))
    secrets = secret_values(environ, settings.required_env) + settings_secrets(settings)
    return [
        scrubbed(check.finding(outcome), secrets)
        for check, outcome in outcomes
        if outcome is not None and outcome.severity == "error"
    ]


def refuse_blocking_problems(
    settings: Settings, *, import_graph: bool = True, what: str = "the server"
) -> None:
    """Print every blocking problem and stop (exit 3) before binding the port."""
    problems = blocking_problems(settings, import_graph=import_graph)
    if not problems:
        return
    *others, last = problems
    for finding in others:
        print_error(f"cannot start {what}: {finding.detail} [{finding.code}]", finding.fix)
    raise CliError(
        f"cannot start {what}: {last.detail} [{last.code}]",
        hint=last.fix or "run `agentflow doctor` for a full check",
        code=EXIT_SERVER_FAILED,
    )
