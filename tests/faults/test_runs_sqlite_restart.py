"""A background run on SQLite survives its process: SIGKILL the server mid-run, start it
again on the same file, and the run is continued from its last step and joinable."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.cli.test_api import GRAPH
from tests.faults.conftest import Server, launch, wait_running
from tests.runtime.conftest import free_port


def serve(project: Path, name: str, port: int) -> Server:
    environ = {
        k: v for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "WEB_CONCURRENCY", "AGENTFLOW_CONFIG")
    }  # fmt: skip
    environ.update(LOG_LEVEL="WARNING", NO_COLOR="1", PYTHONUNBUFFERED="1")
    server = launch(project, name, port, environ, project.parent / f"{name}.log")
    server.wait_ready()
    return server


def test_a_killed_processs_background_run_is_continued_on_restart(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "graph").mkdir(parents=True)
    (project / "graph" / "__init__.py").write_text("")
    (project / "graph" / "react.py").write_text(GRAPH)
    config = {"graph": "graph.react:app",
              "checkpointer": {"kind": "sqlite", "path": str(tmp_path / "state.db")}}  # fmt: skip
    (project / "agentflow.json").write_text(json.dumps(config))
    port = free_port()
    first = serve(project, "first", port)
    try:
        body = {"messages": [{"role": "user", "content": "sleep 2"}]}
        started = first.request("POST", "/v1/threads/t1/runs", json=body)
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        wait_running(first, "t1")  # its input is stored
    finally:
        first.kill()
    second = serve(project, "second", port)
    try:
        joined = second.request("GET", f"/v1/threads/t1/runs/{run_id}/join", timeout=20)
        assert joined.status_code == 200, joined.text + second.output()
        assert [m["content"] for m in second.messages("t1")] == ["sleep 2", "echo: sleep 2"]
        run = second.request("GET", f"/v1/threads/t1/runs/{run_id}").json()
        assert run["status"] == "success"
        assert "took over run" in second.output()
    finally:
        second.terminate()
