"""The Typer app. Command bodies import what they need, so `agentflow --help` stays fast and
never loads the server stack or the user's graph."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from agentflow import __version__
from agentflow_cli.output import EXIT_INTERRUPTED, CliError, print_error

app = typer.Typer(
    name="agentflow",
    help="Scaffold, check, run and deploy AI agent graphs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state = {"debug": False}
NEAREST = "the nearest one, here or above"
F = TypeVar("F", bound=Callable[..., Any])


def reports_errors(fn: F) -> F:
    """Turn a command's CliError into one red line plus a hint and its exit code (the
    traceback only with --debug)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CliError as exc:
            if _state["debug"]:
                raise
            print_error(exc.message, exc.hint)
            raise typer.Exit(exc.code) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"agentflow {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug


@app.command()
@reports_errors
def init(
    path: Annotated[
        Path,
        typer.Argument(
            help="Directory to create the project in.", show_default="the current directory"
        ),
    ] = Path("."),
    template: Annotated[
        str | None,
        typer.Option(
            "--template",
            "-t",
            help="react, langgraph, minimal or production.",
            show_default="react",
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Project name.", show_default="the directory's name")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Use defaults; never prompt.")] = False,
    force: Annotated[
        bool, typer.Option(help="Write into a non-empty directory (never deletes files).")
    ] = False,
) -> None:
    """Create a new agent project from a template."""
    from agentflow_cli.init import run_init

    run_init(path=path, template=template, name=name, yes=yes, force=force)


@app.command()
@reports_errors
def doctor(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Path to agentflow.json.", show_default=NEAREST),
    ] = None,
    production: Annotated[
        bool, typer.Option("--production", help="Check as if MODE=production.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail too (exit 1).")] = False,
    offline: Annotated[
        bool, typer.Option("--offline", help="Skip checks that connect to services.")
    ] = False,
) -> None:
    """Check a project for what would break it in production."""
    from agentflow_cli.doctor import run_doctor

    code = run_doctor(
        config=config, production=production, json_output=json_output, strict=strict,
        offline=offline,
    )  # fmt: skip
    raise typer.Exit(code)


@app.command()
@reports_errors
def play(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Path to agentflow.json.", show_default=NEAREST),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.", min=0, max=65535)] = 8000,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Do not open the playground in a browser.")
    ] = False,
    no_reload: Annotated[
        bool, typer.Option("--no-reload", help="Do not restart when project files change.")
    ] = False,
    terminal: Annotated[
        bool, typer.Option("--terminal", help="Chat in this terminal instead of a browser.")
    ] = False,
) -> None:
    """Run the project locally with hot reload and a web playground."""
    from agentflow_cli.play import run_play

    run_play(
        config=config, host=host, port=port, no_browser=no_browser, no_reload=no_reload,
        terminal=terminal,
    )  # fmt: skip


@app.command()
@reports_errors
def api(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Path to agentflow.json.", show_default=NEAREST),
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Interface to bind.", show_default="HOST or 127.0.0.1")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port.", min=0, max=65535, show_default="PORT or 8000")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Worker processes.", min=1, show_default="WEB_CONCURRENCY or 1"),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(
            "--log-level", help="DEBUG, INFO, WARNING or ERROR.", show_default="LOG_LEVEL or INFO"
        ),
    ] = None,
) -> None:
    """Serve the project in production: HTTP API, streaming, auth, durable state."""
    from agentflow_cli.api import run_api

    run_api(config=config, host=host, port=port, workers=workers, log_level=log_level)


@app.command()
@reports_errors
def build(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Path to agentflow.json.", show_default=NEAREST),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Directory.", show_default="the project's"),
    ] = None,
    docker_compose: Annotated[
        bool, typer.Option("--docker-compose", help="Also write docker-compose.yml.")
    ] = False,
    k8s: Annotated[bool, typer.Option("--k8s", help="Also write Kubernetes manifests.")] = False,
    python: Annotated[
        str | None, typer.Option("--python", help="Python X.Y of the image.", show_default="3.11")
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite files that exist.")] = False,
) -> None:
    """Write deployment files: Dockerfile, compose, Kubernetes."""
    from agentflow_cli.build import run_build

    run_build(
        config=config, output=output, docker_compose=docker_compose, k8s=k8s, python=python,
        force=force,
    )  # fmt: skip


def run() -> None:
    """Console-script entry: turn expected errors into one readable line and an exit code.
    Usage errors are Typer's (exit 2); anything unexpected gets a one-line report unless
    --debug asks for the traceback."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        if _state["debug"]:
            raise
        print_error(
            f"unexpected {type(exc).__name__}: {exc}",
            "run again with --debug for the traceback, and report it if it persists",
        )
        sys.exit(1)
