"""`agentflow play`: hot reload picks up graph edits, a broken graph keeps the server up with
a readable error, and fixing it recovers. A real server process watching a real directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.cli.test_api import wait_for
from tests.runtime.conftest import free_port

GRAPH = """
from agentflow.graph import END, START, Message, StateGraph


async def reply(state):
    return Message.assistant("{prefix}: " + state.context[-1].text)


graph = StateGraph()
graph.add_node("reply", reply)
graph.add_edge(START, "reply")
graph.add_edge("reply", END)
app = graph.compile()
"""


def write_graph(project: Path, prefix: str) -> None:
    (project / "graph" / "react.py").write_text(GRAPH.replace("{prefix}", prefix))


def ask(base: str, text: str) -> httpx.Response:
    body = {"messages": [{"role": "user", "content": text}]}
    return httpx.post(base + "/v1/graph/invoke", json=body, timeout=10)


def reply(base: str, text: str) -> str | None:
    """The graph's answer; None while the server restarts (a draining server answers 503)."""
    response = ask(base, text)
    return response.json()["messages"][-1]["content"] if response.status_code == 200 else None


def eventually(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.TransportError:
            pass  # the server is restarting
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "graph").mkdir()
    (tmp_path / "graph" / "__init__.py").write_text("")
    write_graph(tmp_path, "v1")
    (tmp_path / "agentflow.json").write_text(
        json.dumps({"graph": "graph.react:app", "checkpointer": "sqlite"})
    )
    return tmp_path


@contextmanager
def running_play(project: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    env = {**os.environ, "NO_COLOR": "1", "SHUTDOWN_GRACE": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentflow_cli", "play", "--config",
         str(project / "agentflow.json"), "--port", str(port), "--no-browser"],
        env=env, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(base + "/ping")
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def play(project: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    with running_play(project) as (base, proc):
        yield base, proc
    proc.communicate(timeout=10)


def test_edit_break_and_fix_the_graph(
    project: Path, play: tuple[str, subprocess.Popen[str]]
) -> None:
    base, proc = play
    assert reply(base, "hi") == "v1: hi"
    assert httpx.get(base + "/playground", timeout=5).status_code == 200

    write_graph(project, "v2")  # an edit: the next request runs the new code
    eventually(lambda: reply(base, "hi") == "v2: hi")

    react = project / "graph" / "react.py"
    react.write_text(react.read_text() + "\ndef broken(:\n")  # a syntax error
    eventually(lambda: httpx.get(base + "/health", timeout=5).status_code == 503)
    assert httpx.get(base + "/ping", timeout=5).json() == {"status": "ok"}  # still up
    health = httpx.get(base + "/health", timeout=5).json()
    assert health["checks"]["graph"]["status"] == "error"
    assert "SyntaxError" in health["checks"]["graph"]["error"]
    assert "graph/react.py:" in health["checks"]["graph"]["error"]
    failed = ask(base, "hi")
    assert failed.status_code == 503
    assert failed.json()["error"]["code"] == "graph_load_failed"
    assert httpx.get(base + "/playground", timeout=5).status_code == 200  # shows the error

    write_graph(project, "v3")  # fixed: it recovers by itself
    eventually(lambda: ask(base, "hi").status_code == 200)
    assert reply(base, "again") == "v3: again"
    assert proc.poll() is None


def test_state_files_do_not_trigger_reloads(
    project: Path, play: tuple[str, subprocess.Popen[str]]
) -> None:
    base, proc = play
    for i in range(5):  # every invoke writes .agentflow/state.db and its WAL
        assert ask(base, f"turn {i}").status_code == 200
    (project / "server.log").write_text("noise\n")
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert "Reloading" not in output
    assert "agentflow play" in output and "/playground" in output
    assert "Traceback" not in output


def write_config(project: Path, **config: object) -> None:
    (project / "agentflow.json").write_text(json.dumps({"graph": "graph.react:app", **config}))


def test_play_runs_without_a_dotenv_file_and_says_so_once(project: Path) -> None:
    write_config(project, env=".env")  # as `agentflow init` writes it; .env is not made yet
    with running_play(project) as (base, proc):
        assert reply(base, "hi") == "v1: hi"
        (project / "graph" / "tools.py").write_text("X = 1\n")  # a reload reads settings again
        time.sleep(1.5)
        assert ask(base, "again").status_code == 200
    output, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert output.count("'.env' does not exist yet") == 1, output
    assert "copy .env.example to .env" in output


def test_an_invalid_config_keeps_play_up_and_the_fix_recovers(
    project: Path, play: tuple[str, subprocess.Popen[str]]
) -> None:
    base, proc = play
    config = project / "agentflow.json"
    good = config.read_text()
    time.sleep(1)  # on a busy machine the reloader's watcher can start after /ping answers
    config.write_text('{"graph": "graph.react:app",')  # saved half-way through an edit
    eventually(lambda: httpx.get(base + "/health", timeout=5).status_code == 503)
    assert httpx.get(base + "/ping", timeout=5).json() == {"status": "ok"}
    health = httpx.get(base + "/health", timeout=5).json()
    assert health["checks"]["config"]["status"] == "error"
    assert "invalid JSON at line 1" in health["checks"]["config"]["error"]
    failed = ask(base, "hi")
    assert failed.status_code == 503 and failed.json()["error"]["code"] == "config_invalid"
    assert httpx.get(base + "/playground", timeout=5).status_code == 200

    write_config(project, checkpointer="mongo")  # valid JSON, a wrong value
    eventually(lambda: "unknown checkpointer 'mongo'" in httpx.get(base + "/health").text)

    config.write_text(good)
    eventually(lambda: ask(base, "hi").status_code == 200)
    assert reply(base, "back") == "v1: back"
    assert proc.poll() is None


def test_play_honours_required_env(project: Path) -> None:
    write_config(project, env=".env", required_env=["AGENTFLOW_PLAY_TOKEN"])
    env = {k: v for k, v in os.environ.items() if k != "AGENTFLOW_PLAY_TOKEN"}
    done = subprocess.run(
        [sys.executable, "-m", "agentflow_cli", "play", "--no-browser", "--port",
         str(free_port())], cwd=project, env={**env, "NO_COLOR": "1"}, capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 3 and done.stdout == ""
    assert "cannot start the playground" in done.stderr
    assert "AGENTFLOW_PLAY_TOKEN" in done.stderr and "Traceback" not in done.stderr

    (project / ".env").write_text("AGENTFLOW_PLAY_TOKEN=t0ken\n")
    with running_play(project) as (base, proc):
        assert ask(base, "hi").status_code == 200
        (project / ".env").write_text("# emptied while it runs\n")  # a reload sees the edit
        eventually(lambda: "AGENTFLOW_PLAY_TOKEN" in httpx.get(base + "/health").text)
        assert ask(base, "hi").json()["error"]["code"] == "graph_load_failed"
        (project / ".env").write_text("AGENTFLOW_PLAY_TOKEN=t0ken\n")
        eventually(lambda: ask(base, "hi").status_code == 200)
    output, _ = proc.communicate(timeout=10)
    assert "t0ken" not in output


def test_the_browser_opens_once_the_server_answers(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentflow_cli.play import open_when_ready

    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    with running_play(project) as (base, proc):
        open_when_ready(base + "/playground", base + "/ping", timeout=10)
        eventually(lambda: opened == [base + "/playground"], timeout=10)
    proc.communicate(timeout=10)
