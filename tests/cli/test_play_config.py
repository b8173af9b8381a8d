"""`agentflow play` refuses an unknown key at any depth: at start (exit 3, the key's path and a
did-you-mean) and after an edit (the config error page, until the key is fixed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.cli.test_play import ask, eventually, play, project, write_config  # noqa: F401
from tests.runtime.conftest import free_port


def test_play_refuses_to_start_on_an_unknown_nested_key(project: Path) -> None:  # noqa: F811
    write_config(project, limits={"run_timout": 5})
    done = subprocess.run(
        [sys.executable, "-m", "agentflow_cli", "play", "--no-browser", "--port",
         str(free_port())], cwd=project, env={**os.environ, "NO_COLOR": "1"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    error = " ".join(done.stderr.split())
    assert done.returncode == 3 and "Traceback" not in error
    assert "cannot start the playground: unknown key 'run_timout' (did you mean" in error
    assert "agentflow.json: limits.run_timout" in error


def test_an_unknown_key_saved_while_play_runs_shows_the_config_error(
    project: Path,  # noqa: F811
    play: tuple[str, subprocess.Popen[str]],  # noqa: F811
) -> None:
    base, proc = play
    config = project / "agentflow.json"
    good = config.read_text()
    config.write_text(json.dumps({**json.loads(good), "auth": {"audiance": "a"}}))
    eventually(lambda: "config" in httpx.get(base + "/health", timeout=5).json()["checks"])
    health = httpx.get(base + "/health", timeout=5).json()["checks"]["config"]
    assert health["status"] == "error"
    assert "auth.audiance: unknown key 'audiance' (did you mean 'audience'?)" in health["error"]
    assert ask(base, "hi").json()["error"]["code"] == "config_invalid"
    config.write_text(good)
    eventually(lambda: ask(base, "hi").status_code == 200)
    assert proc.poll() is None
