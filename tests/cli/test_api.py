"""`agentflow api`: flags reach the server, blocking problems stop it before binding, and
SIGTERM drains in-flight runs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from agentflow.runtime import Settings
from agentflow_cli.main import app
from tests.runtime.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()

GRAPH = """
import asyncio
from agentflow.graph import END, START, Message, StateGraph

async def respond(state):
    text = state.context[-1].text
    if text.startswith("sleep "):
        await asyncio.sleep(float(text.split()[1]))
    return Message.assistant("echo: " + text)

graph = StateGraph()
graph.add_node("respond", respond)
graph.add_edge(START, "respond")
graph.add_edge("respond", END)
app = graph.compile()
"""


def make_project(tmp_path: Path, config: dict[str, Any], graph: str = GRAPH) -> Path:
    (tmp_path / "graph").mkdir(exist_ok=True)
    (tmp_path / "graph" / "__init__.py").write_text("")
    (tmp_path / "graph" / "react.py").write_text(graph)
    path = tmp_path / "agentflow.json"
    path.write_text(json.dumps({"graph": "graph.react:app", **config}))
    return path


@pytest.fixture(autouse=True)
def fresh_imports() -> Iterator[None]:
    """Each test's project has its own `graph` package: forget the previous one."""
    path = list(sys.path)
    yield
    sys.path[:] = path
    for name in [m for m in sys.modules if m == "graph" or m.startswith("graph.")]:
        del sys.modules[name]


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    calls: list[Settings] = []

    def fake_serve(settings: Settings, **options: Any) -> None:
        calls.append(settings)

    monkeypatch.setattr("agentflow.runtime.serve", fake_serve)
    return calls


def test_flags_reach_the_server(tmp_path: Path, served: list[Settings]) -> None:
    path = make_project(tmp_path, {"checkpointer": "sqlite"})
    result = runner.invoke(
        app,
        ["api", "--config", str(path), "--host", "0.0.0.0", "--port", "9123",
         "--log-level", "debug"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (settings,) = served
    assert (settings.host, settings.port, settings.log_level) == ("0.0.0.0", 9123, "DEBUG")
    assert settings.checkpointer.path == tmp_path / ".agentflow" / "state.db"


@pytest.mark.parametrize(
    ("config", "graph", "workers", "expected"),
    [
        ({}, "import not_installed_pkg\n", 1,
         "imports 'not_installed_pkg', which is not installed"),
        ({}, "x = 1\n", 1, "has no attribute 'app'"),
        ({}, "raise KeyError('OPENAI_API_KEY')\n", 1,
         "raised KeyError: 'OPENAI_API_KEY' (graph/react.py:1)"),
        ({}, "import os\nKEY = os.environ['WEATHER_API_KEY']\n", 1,
         "needs the environment variable WEATHER_API_KEY, which is not set (graph/react.py:2)"),
        ({"graph": "graphs.nope:app"}, GRAPH, 1, "cannot import module 'graphs.nope'"),
        ({"required_env": ["AGENTFLOW_TEST_UNSET_VAR"]}, GRAPH, 1, "AGENTFLOW_TEST_UNSET_VAR"),
        ({"checkpointer": "sqlite"}, GRAPH, 2, "cannot share the sqlite checkpointer"),
        ({"checkpointer": "memory"}, GRAPH, 3, "cannot share the memory checkpointer"),
        ({"auth": "jwt"}, GRAPH, 1, "needs a shared secret"),
    ],
)  # fmt: skip
def test_blocking_problems_exit_3_before_binding(
    tmp_path: Path,
    served: list[Settings],
    config: dict[str, Any],
    graph: str,
    workers: int,
    expected: str,
) -> None:
    path = make_project(tmp_path, config, graph)
    env = {"JWT_SECRET_KEY": ""}
    args = ["api", "--config", str(path), "--workers", str(workers), "--port", str(free_port())]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 3, result.output
    assert expected in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert served == []


def test_a_missing_variable_read_at_import_says_where_to_set_it(
    tmp_path: Path, served: list[Settings]
) -> None:
    path = make_project(tmp_path, {}, "import os\nKEY = os.environ['WEATHER_API_KEY']\n")
    result = runner.invoke(app, ["api", "--config", str(path), "--port", str(free_port())])
    assert result.exit_code == 3
    output = " ".join(result.output.split())
    assert "set WEATHER_API_KEY in the project's dotenv file" in output
    assert '"required_env"' in output and "KeyError" not in output


@pytest.mark.parametrize(("command", "fix"), [("api", "--port"), ("play", "--port"),
                                               ("demo", "PORT=8001 make demo")])  # fmt: skip
def test_a_taken_port_is_one_line_before_any_banner(tmp_path: Path, command: str, fix: str) -> None:
    path = make_project(tmp_path, {})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = {
            "api": ["agentflow_cli", "api", "--config", str(path), "--port", str(port)],
            "play": ["agentflow_cli", "play", "--config", str(path), "--port", str(port),
                     "--no-browser"],
            "demo": ["agentflow_cli.demo"],  # make demo; PORT picks the port
        }[command]  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", *args], cwd=tmp_path, capture_output=True, text=True,
            env={**os.environ, "NO_COLOR": "1", "PORT": str(port), "PYTHONPATH": str(ROOT)},
            timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert done.stdout == ""  # no banner, no URL pointing at the other server
    first, hint = done.stderr.splitlines()
    assert f"port {port} is already in use on 127.0.0.1" in first
    assert fix in hint


def test_missing_config_is_exit_3_with_a_hint(tmp_path: Path, served: list[Settings]) -> None:
    result = runner.invoke(app, ["api", "--config", str(tmp_path / "none.json")])
    assert result.exit_code == 3
    assert "agentflow init" in result.output


def wait_for(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} did not come up")


def test_sigterm_drains_in_flight_runs_then_exits_0(tmp_path: Path) -> None:
    path = make_project(tmp_path, {"checkpointer": "sqlite"})
    port = free_port()
    env = {**os.environ, "SHUTDOWN_GRACE": "10", "LOG_LEVEL": "INFO", "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentflow_cli", "api", "--config", str(path), "--port", str(port)],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(base + "/ping")
        result: dict[str, httpx.Response] = {}

        def slow_call() -> None:
            body = {"messages": [{"role": "user", "content": "sleep 1.5"}], "thread_id": "t1"}
            result["r"] = httpx.post(base + "/v1/graph/invoke", json=body, timeout=30)

        caller = threading.Thread(target=slow_call)
        caller.start()
        time.sleep(0.5)  # the run is in flight
        proc.send_signal(signal.SIGTERM)
        caller.join(30)
        assert result["r"].status_code == 200
        assert result["r"].json()["messages"][-1]["content"] == "echo: sleep 1.5"
        assert proc.wait(timeout=20) == 0
        with pytest.raises(httpx.TransportError):
            httpx.get(base + "/ping", timeout=1)
    finally:
        if proc.poll() is None:
            proc.kill()
        output, _ = proc.communicate(timeout=10)
    assert "Traceback" not in output


def test_the_server_accepts_a_burst_of_connections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn's default backlog (2,048) reset clients when 5,000 connected at once."""
    from agentflow.runtime.server import serve

    configs: list[dict[str, Any]] = []
    monkeypatch.setattr(
        "agentflow.runtime.server.serve_one",
        lambda settings, parts, options: configs.append(options),
    )
    monkeypatch.setattr("signal.signal", lambda *args: None)
    settings = Settings(project_dir=tmp_path, config_path=None, graph="graph.react:app")
    serve(settings)
    assert configs[0]["backlog"] >= 8192


def test_a_graph_error_never_prints_a_secret_value(tmp_path: Path, served: list[Settings]) -> None:
    """The graph's own error is scrubbed like every other blocking problem."""
    value = "hunter2-very-private-value"
    graph = "import os\nraise RuntimeError('cannot log in with ' + os.environ['MY_API_KEY'])\n"
    path = make_project(tmp_path, {"required_env": ["AGENTFLOW_TEST_UNSET_VAR"]}, graph)
    args = ["api", "--config", str(path), "--port", str(free_port())]
    result = runner.invoke(app, args, env={"MY_API_KEY": value})
    assert result.exit_code == 3, result.output
    output = " ".join(result.output.split())
    assert "cannot log in with [REDACTED]" in output and value not in output
    assert "AGENTFLOW_TEST_UNSET_VAR [AF-ENV-002]" in output
