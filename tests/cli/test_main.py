from __future__ import annotations

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
