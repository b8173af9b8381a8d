"""The README's main job: the react template, made by `agentflow init`, served on SQLite with
the offline model."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.cli.test_api import wait_for
from tests.runtime.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_demo_serves_the_react_project_and_keeps_threads(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    env.pop("OPENAI_API_KEY", None)
    base = f"http://127.0.0.1:{port}"

    def serve() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "agentflow_cli.demo"], cwd=tmp_path, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    proc = serve()
    try:
        wait_for(base + "/ping")
        body = {"messages": [{"role": "user", "content": "what is 12 + 30"}], "thread_id": "d1"}
        reply = httpx.post(base + "/v1/graph/invoke", json=body, timeout=30).json()
        assert reply["messages"][-1]["content"] == "The add tool returned: 42"
        for question, answer in [
            ("what is 2 * 3", "The multiply tool returned: 6"),
            ("1" * 200_000 + "+", "I'm DemoChat, an offline demo model"),  # answered at once
        ]:
            body = {"messages": [{"role": "user", "content": question}]}
            other = httpx.post(base + "/v1/graph/invoke", json=body, timeout=60).json()
            assert other["messages"][-1]["content"].startswith(answer)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        proc.communicate(timeout=5)
        proc = serve()  # a restart keeps the thread (SQLite in .agentflow/demo)
        wait_for(base + "/ping")
        messages = httpx.get(base + "/v1/threads/d1/messages", timeout=10).json()
        assert messages["total"] == 4
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
        output, _ = proc.communicate(timeout=5)
    demo = tmp_path / ".agentflow" / "demo"
    assert (demo / ".agentflow" / "state.db").exists()
    # made by `agentflow init --template react --yes`, then its first next step (.env)
    assert (demo / "pyproject.toml").is_file() and (demo / "tests" / "test_graph.py").is_file()
    assert (demo / ".env").read_text() == (demo / ".env.example").read_text()
    assert output.count("the graph answers with an offline model (DemoChat 'demo')") == 1
    assert "Traceback" not in output
