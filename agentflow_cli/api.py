"""`agentflow api`: check the blocking problems, then serve."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentflow_cli.output import EXIT_SERVER_FAILED, CliError, config_hint, err_console, print_error

if TYPE_CHECKING:
    from agentflow.runtime import Components, Settings
    from agentflow_cli.checks import Finding


def run_api(
    *,
    config: Path | None,
    host: str | None,
    port: int | None,
    workers: int | None,
    log_level: str | None,
) -> None:
    from agentflow.graph import AgentflowError
    from agentflow.runtime import export_dotenv, load_settings, serve

    overrides: dict[str, Any] = {
        k: v
        for k, v in {"host": host, "port": port, "workers": workers, "log_level": log_level}.items()
        if v is not None
    }
    try:
        settings = load_settings(config, **overrides)
        show_warnings(settings)
        export_dotenv(settings)  # the graph and required_env see the dotenv file's values
        components = build_or_refuse(settings)
        # One worker serves these components; the state store is opened (and migrated)
        # before the port is bound, and its errors stop the start here too.
        serve(settings, overrides=overrides, components=components)
    except AgentflowError as exc:
        code = getattr(exc, "code", None)
        problem = getattr(exc, "problem", None) or exc
        raise CliError(
            f"cannot start the server: {problem}" + (f" [{code}]" if code else ""),
            hint=config_hint(exc),
            code=EXIT_SERVER_FAILED,
        ) from exc


def build_or_refuse(settings: Settings) -> Components:
    """Build the server's components (the graph is imported here, once), or print every
    blocking problem, the graph's with the others, and stop (exit 3) before binding."""
    from agentflow.runtime import ConfigError, ImportFromStringError, build_components
    from agentflow_cli.checks import error_finding

    components, found = None, []
    try:
        components = build_components(settings)
    except ConfigError as exc:
        where = exc.where or ""
        graph = isinstance(exc, ImportFromStringError) and (
            where.endswith(": graph") or ": graphs." in where
        )
        code = "AF-GRAPH-001" if graph else "AF-CONFIG-004"
        found.append(error_finding(code, exc.problem, config_hint(exc)))
    refuse_blocking_problems(settings, also=found)
    assert components is not None
    return components


def show_warnings(settings: Settings) -> None:
    """Print the settings' warnings once: the server processes are told they were shown."""
    from agentflow.runtime import SHOWN_WARNINGS

    for warning in settings.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", soft_wrap=True)
    os.environ[SHOWN_WARNINGS] = json.dumps(list(settings.warnings))


def project_environ(settings: Settings) -> dict[str, str]:
    """What the server will see: the dotenv file's values, real variables winning. Read,
    not exported: `play`'s reloaded workers must see later edits of the file."""
    from agentflow.runtime import read_dotenv

    env_file = settings.env_file
    dotenv = read_dotenv(env_file) if env_file is not None and env_file.is_file() else {}
    return {**dotenv, **os.environ}


def blocking_problems(settings: Settings, environ: dict[str, str]) -> list[Finding]:
    """The runtime's own startup checks (the ones `agentflow doctor` reports under the same
    codes), and a port the server cannot bind, as error findings. The graph is imported next
    (`build_or_refuse`); the settings loader has already refused a missing or short JWT
    secret and a bad algorithm."""
    from agentflow.runtime import startup_problems
    from agentflow_cli.checks import error_finding, runtime

    port = runtime.port_outcome(settings.host, settings.port)
    found = [] if port.severity == "ok" else [runtime.PORT.finding(port)]
    return found + [
        error_finding(p.code, p.problem, p.fix) for p in startup_problems(settings, environ)
    ]


def refuse_blocking_problems(
    settings: Settings, *, also: list[Finding] | None = None, what: str = "the server"
) -> None:
    """Print every blocking problem (and the `also` ones), secrets scrubbed, and stop (exit
    3) before binding the port."""
    from agentflow_cli.checks import scrubbed, secret_values, settings_secrets

    environ = project_environ(settings)
    secrets = secret_values(environ, settings.required_env) + settings_secrets(settings)
    found = blocking_problems(settings, environ) + (also or [])
    problems = [scrubbed(finding, secrets) for finding in found]
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
