"""Servers the conformance tests drive with `langgraph_sdk`, each a real process on a free
127.0.0.1 port, started once per session and stopped by its PID (its own process group):

- `langgraph dev` (langgraph-cli[inmem], in its own venv `<repo>/.venv-langgraph`, made here
  when missing) serving project/langgraph.json: the LangGraph graphs `agent` and `approve`;
- `agentflow api` serving the same graph files plus the agentflow graph `echo`
  (project/agentflow.json's `graphs`), on SQLite, and on a fresh Postgres schema with
  WEB_CONCURRENCY=2 workers.

Every start is bounded in time. A service that cannot start fails the test; only a missing
shared Postgres or no way to install langgraph-cli skips, and under CI=true those fail too.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.faults.conftest import (
    PG_DSN,
    pg_execute,
    require_shared_postgres,
    require_shared_redis,
    unavailable,
)
from tests.runtime.conftest import free_port

# The scenarios' asserts explain themselves (values compared) like a test module's.
pytest.register_assert_rewrite("tests.runtime.lgapi.scenarios")

HERE = Path(__file__).resolve().parent
PROJECT = HERE / "project"
REPO = HERE.parents[2]
LANGGRAPH_VENV = REPO / ".venv-langgraph"
LANGGRAPH_CLI = "langgraph-cli[inmem]==0.4.40"
START_TIMEOUT = 60.0  # seconds until a server must answer its readiness path
GRAPHS = {"agent": "lg_graph:agent", "approve": "lg_graph:approve", "echo": "af_graph:app"}
# Settings of the caller's environment that would change what the servers do.
FOREIGN_ENV = ("DATABASE_URL", "REDIS_URL", "WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR",
               "MODE", "AGENTFLOW_CONFIG", "AGENTFLOW_OVERRIDES", "PORT", "HOST",
               "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY", "LANGGRAPH_API_KEY")  # fmt: skip


@dataclass
class Service:
    """A server process in a session of its own, its output in `log`."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-6000:]
        return ""

    def wait_ready(self, path: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode} before answering {path}; "
                    f"its output ({self.log}):\n{self.output()}"
                )
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.url + path, timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"{self.name} did not answer {path} within {timeout:.0f} s; its output "
            f"({self.log}):\n{self.output()}"
        )

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM to the process, then SIGKILL to its own process group after `grace`."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only ours
            self.proc.wait(10)


def start_service(
    name: str, argv: list[str], cwd: Path, env: dict[str, str], log: Path, ready: str
) -> Service:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    service = Service(name, int(argv[argv.index("--port") + 1]), proc, log)
    service.wait_ready(ready)
    return service


def server_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
    env.update(LOG_LEVEL="WARNING", NO_COLOR="1", PYTHONUNBUFFERED="1", **extra)
    return env


# -- langgraph dev -----------------------------------------------------------------------------


def ensure_langgraph_venv(venv: Path = LANGGRAPH_VENV) -> Path:
    """A venv with langgraph-cli[inmem] from the index, made once (again if it is broken)."""
    python = venv / "bin" / "python"
    probe = "import langgraph_api, langgraph_runtime_inmem, langchain_core"
    if (venv / "bin" / "langgraph").exists() and subprocess.run(
        [str(python), "-c", probe], capture_output=True, timeout=60
    ).returncode == 0:
        return venv
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=120)
    (venv / ".gitignore").write_text("*\n")
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", LANGGRAPH_CLI],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if done.returncode != 0:
        unavailable(
            f"pip install {LANGGRAPH_CLI} into {venv} failed ({done.returncode}): "
            f"{done.stderr[-3000:]}; fix the cause (network to PyPI?) or delete {venv}"
        )
    return venv


_MAKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="langgraph-venv")
_VENV: Future[Path] | None = None


def langgraph_venv_in_background() -> Future[Path]:
    """Start making the venv (once): tests/conftest.py does so as soon as the run is known
    to need it, so pip works while other tests run."""
    global _VENV
    if _VENV is None:
        _VENV = _MAKER.submit(ensure_langgraph_venv)
    return _VENV


@pytest.fixture(scope="session")
def langgraph_venv() -> Path:
    return langgraph_venv_in_background().result()


@pytest.fixture(scope="session")
def langgraph_dev(langgraph_venv: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of `langgraph dev` serving project/langgraph.json (`agent`, `approve`)."""
    base = tmp_path_factory.mktemp("langgraph-dev")
    project = base / "project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("__pycache__"))
    port = free_port()
    argv = [str(langgraph_venv / "bin" / "langgraph"), "dev", "--no-browser", "--no-reload",
            "--port", str(port), "--n-jobs-per-worker", "10",
            "--server-log-level", "WARNING"]  # fmt: skip
    env = server_env(
        LANGSMITH_TRACING="false", LANGCHAIN_TRACING_V2="false", LANGGRAPH_CLI_NO_ANALYTICS="1"
    )
    # the venv's own interpreter, not the one running the tests
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    service = start_service("langgraph dev", argv, project, env, base / "server.log", "/ok")
    yield service.url
    service.stop()


# -- agentflow api -----------------------------------------------------------------------------


def agentflow_project(base: Path, checkpointer: object) -> Path:
    project = base / "project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("__pycache__"))
    config = {"graphs": GRAPHS, "checkpointer": checkpointer}
    (project / "agentflow.json").write_text(json.dumps(config, indent=2))
    return project


def start_agentflow(name: str, project: Path, env: dict[str, str]) -> Service:
    port = free_port()
    argv = [sys.executable, "-m", "agentflow_cli", "api", "--config",
            str(project / "agentflow.json"), "--port", str(port)]  # fmt: skip
    # the graph modules are imported from the project directory (the process's cwd)
    return start_service(name, argv, project, env, project.parent / "server.log", "/ping")


@pytest.fixture(scope="session")
def agentflow_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of `agentflow api` on SQLite serving `agent`, `approve` and `echo`."""
    project = agentflow_project(tmp_path_factory.mktemp("agentflow-sqlite"), "sqlite")
    service = start_agentflow("agentflow api (sqlite)", project, server_env())
    yield service.url
    service.stop()


@pytest.fixture(scope="session")
def agentflow_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same on a fresh schema of the shared Postgres with Redis (the production setup:
    a stop reaches the other worker at once), with two worker processes."""
    require_shared_postgres()
    redis = require_shared_redis()
    schema = "lgapi_" + uuid.uuid4().hex[:12]
    base = tmp_path_factory.mktemp("agentflow-postgres")
    checkpointer = {"kind": "postgres", "dsn": PG_DSN, "schema": schema, "redis": redis}
    project = agentflow_project(base, checkpointer)
    metrics = base / "prometheus"
    metrics.mkdir()
    env = server_env(WEB_CONCURRENCY="2", PROMETHEUS_MULTIPROC_DIR=str(metrics))
    try:
        service = start_agentflow("agentflow api (postgres, 2 workers)", project, env)
        yield service.url
        service.stop()
    finally:
        pg_execute(PG_DSN, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
