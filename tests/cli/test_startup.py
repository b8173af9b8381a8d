"""One startup path: `agentflow api` builds the graph once per process (the user's factory is
called once by one worker, once by the parent and once by each of several workers) and the
state store's schema is migrated once, before the workers start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

from tests.cli.test_api import ROOT, wait_for
from tests.faults.conftest import PG_DSN, pg_schema  # noqa: F401 - the fixture
from tests.runtime.conftest import free_port

FACTORY = """
import os
from pathlib import Path

from agentflow.graph import END, START, Message, StateGraph

print("imported", os.getpid(), flush=True)


def make():
    with Path(os.environ["FACTORY_LOG"]).open("a") as log:
        log.write(f"{os.getpid()}\\n")

    async def respond(state):
        return Message.assistant("echo: " + state.context[-1].text)

    graph = StateGraph()
    graph.add_node("respond", respond)
    graph.add_edge(START, "respond")
    graph.add_edge("respond", END)
    return graph.compile()
"""


def serve_and_stop(project: Path, workers: int, env: dict[str, str]) -> tuple[Counter[str], str]:
    """Start `agentflow api`, run one request, stop it; the factory calls by process id and
    the server's output."""
    port = free_port()
    calls = project / "factory.log"
    args = [sys.executable, "-m", "agentflow_cli", "api", "--port", str(port)]
    proc = subprocess.Popen(
        [*args, "--workers", str(workers)],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(ROOT), "FACTORY_LOG": str(calls), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/ping", timeout=60)
        expected = 1 if workers == 1 else 1 + workers  # the parent's preflight, each worker
        deadline = time.monotonic() + 30
        while len(read_calls(calls)) < expected and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(2 * workers):
            reply = httpx.post(
                f"http://127.0.0.1:{port}/v1/graph/invoke",
                json={"messages": [{"role": "user", "content": "hi"}]},
                timeout=10,
            )
            assert reply.status_code == 200, reply.text
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    return Counter(read_calls(calls)), output


def read_calls(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def make_project(tmp_path: Path, checkpointer: object) -> Path:
    (tmp_path / "graph").mkdir()
    (tmp_path / "graph" / "__init__.py").write_text("")
    (tmp_path / "graph" / "react.py").write_text(FACTORY)
    config = {"graph": "graph.react:make", "checkpointer": checkpointer}
    (tmp_path / "agentflow.json").write_text(json.dumps(config))
    return tmp_path


def test_one_worker_calls_the_factory_once(tmp_path: Path) -> None:
    project = make_project(tmp_path, "sqlite")
    calls, output = serve_and_stop(project, 1, {"LOG_LEVEL": "INFO"})
    assert list(calls.values()) == [1], output  # one process, one call
    assert output.count("imported") == 1


def test_workers_call_the_factory_once_each_and_migrate_once(
    tmp_path: Path,
    pg_schema: str,  # noqa: F811 - the fixture
) -> None:
    checkpointer = {"kind": "postgres", "dsn": PG_DSN, "schema": pg_schema}
    project = make_project(tmp_path, checkpointer)
    calls, output = serve_and_stop(project, 2, {"LOG_LEVEL": "INFO"})
    # The parent (its preflight) and each of the two workers: three processes, one call each.
    assert sorted(calls.values()) == [1, 1, 1], output
    assert output.count(f"migrating schema {pg_schema}") == 1, output


def test_play_without_reload_stays_up_with_a_broken_graph(tmp_path: Path) -> None:
    """Without the reloader `play` serves in one process too; a graph that fails to import
    is shown by the server (503 on runs), not a failed start."""
    project = make_project(tmp_path, "memory")
    (project / "graph" / "react.py").write_text("raise RuntimeError('half-written')\n")
    port = free_port()
    args = ["play", "--no-reload", "--no-browser", "--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentflow_cli", *args],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/ping", timeout=60)
        reply = httpx.post(
            f"http://127.0.0.1:{port}/v1/graph/invoke",
            json={"messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
        assert reply.status_code == 503
        assert "half-written" in reply.text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
