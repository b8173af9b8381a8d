from __future__ import annotations

import re
import subprocess
import sys

from typer.testing import CliRunner

from agentflow import __version__
from agentflow_cli.main import app

runner = CliRunner()


def agentflow(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentflow_cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin", "COLUMNS": "120"},
    )


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"agentflow {__version__}"


def test_help_lists_every_command() -> None:
    result = agentflow("--help")
    assert result.returncode == 0
    for command in ("init", "doctor", "play", "api", "build"):
        assert command in result.stdout


def test_a_user_error_is_one_line_and_a_hint() -> None:
    result = agentflow("build", "--config", "no/such/agentflow.json")
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot build: no configuration file at no/such")
    assert "\nhint: " in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_command_is_a_usage_error() -> None:
    result = agentflow("frobnicate")
    assert result.returncode == 2
    assert "No such command" in result.stderr


def test_debug_shows_the_traceback() -> None:
    result = agentflow("--debug", "build", "--config", "no/such/agentflow.json")
    assert result.returncode == 1
    assert "Traceback" in result.stderr


# Every option that takes a value, and the default its help must show.
DEFAULTS = {
    "init": {"path": "the current directory", "--template": "react",
             "--name": "the directory's name"},
    "doctor": {"--config": "the nearest one"},
    "play": {"--host": "127.0.0.1", "--port": "8000", "--config": "the nearest one"},
    "api": {"--host": "HOST or 127.0.0.1", "--port": "PORT or 8000",
            "--workers": "WEB_CONCURRENCY or 1", "--log-level": "LOG_LEVEL or INFO"},
    "build": {"--output": "the project's", "--python": "3.11"},
}  # fmt: skip


def test_every_command_help_shows_its_defaults() -> None:
    for command, defaults in DEFAULTS.items():
        result = agentflow(command, "--help")
        assert result.returncode == 0
        text = " ".join(result.stdout.replace("│", " ").split())
        assert not re.search(r"\w \.", text), f"{command}: a default was swallowed: {text}"
        for option, default in defaults.items():
            after = text.split(f" {option} ", 1)[1]
            shown = after.split("[default:", 1)[1].split("]", 1)[0]
            assert default in shown, f"{command} {option}: {shown!r}"
