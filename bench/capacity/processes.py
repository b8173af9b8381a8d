"""The processes bench/capacity.py starts: the mock model, `agentflow api`, `langgraph dev`.

Each is a subprocess on a free 127.0.0.1 port, stopped by its PID (SIGTERM, then SIGKILL).
They inherit the raised RLIMIT_NOFILE of the bench process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from http_bench import free_port, stop_process

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
ROOT = BENCH.parent
BIN = Path(sys.executable).parent
LANGGRAPH_VENV = BENCH / ".venv-langgraph"
LANGGRAPH_PACKAGES = ["langgraph-cli[inmem]", "langchain-openai"]
MODEL_NAME = "mock-model-2024-01-01"


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without agentflow/uvicorn settings of the caller, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTFLOW_", "UVICORN"))}
    return {**env, **extra}


def status_mb(pid: int, key: str) -> float:
    """A memory line of /proc/PID/status (VmRSS: now; VmHWM: the peak so far) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} for pid {pid}")


@dataclass
class Process:
    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    port: int
    log: Path
    ready_path: str  # answers 200 once the server serves
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} is not started"
        return self.proc.pid

    def start(self, timeout: float = 120.0) -> None:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}; its log "
                    f"({self.log}):\n{self.log.read_text()[-4000:]}"
                )
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name} did not answer {self.ready_path} within {timeout:.0f} s; its "
                    f"log ({self.log}):\n{self.log.read_text()[-4000:]}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        stop_process(self.proc, grace=15)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def mock_model(tmp: Path, deltas: int, duration: float) -> Process:
    port = free_port()
    argv = [str(BIN / "python"), str(BENCH / "mock_model.py"), "--port", str(port)]
    argv += ["--deltas", str(deltas), "--duration", str(duration)]
    return Process("mock model", argv, clean_env(), tmp, port, tmp / "mock.log", "/ping")


def agentflow_server(tmp: Path, kind: str, checkpointer: Any, mock_url: str) -> Process:
    project = tmp / f"agentflow-{kind}"
    project.mkdir()
    shutil.copy(HERE / "agentflow_graph.py", project / "agentflow_graph.py")
    config = project / "agentflow.json"
    config.write_text(json.dumps({"graph": "agentflow_graph:app", "checkpointer": checkpointer}))
    port = free_port()
    argv = [str(BIN / "agentflow"), "api", "--config", str(config), "--port", str(port)]
    env = clean_env(LOG_LEVEL="WARNING", CAPACITY_MOCK_URL=mock_url)
    return Process(f"agentflow {kind}", argv, env, project, port, tmp / f"{kind}.log", "/ping")


def langgraph_server(tmp: Path, venv: Path, jobs: int, mock_url: str) -> Process:
    project = tmp / "langgraph"
    project.mkdir()
    shutil.copy(HERE / "langgraph_graph.py", project / "langgraph_graph.py")
    graphs = {"agent": "./langgraph_graph.py:graph"}
    (project / "langgraph.json").write_text(json.dumps({"dependencies": ["."], "graphs": graphs}))
    port = free_port()
    argv = [str(venv / "bin" / "langgraph"), "dev", "--no-browser", "--no-reload"]
    # `langgraph dev` runs one run at a time unless told otherwise (N_JOBS_PER_WORKER=1)
    argv += ["--port", str(port), "--n-jobs-per-worker", str(jobs)]
    env = clean_env(
        CAPACITY_MOCK_URL=mock_url, LANGSMITH_TRACING="false", LANGCHAIN_TRACING_V2="false",
        LANGGRAPH_CLI_NO_ANALYTICS="1", LOG_LEVEL="WARNING",
    )  # fmt: skip
    argv += ["--server-log-level", "WARNING"]
    return Process("langgraph dev", argv, env, project, port, tmp / "langgraph.log", "/ok")


def ensure_venv(venv: Path, packages: list[str], probe: str, instead: str) -> Path:
    """`venv` with `pip install <packages>` from the index, made once: remade when `probe`
    (Python code run in it) fails. `instead`: what to do when pip fails."""
    python = venv / "bin" / "python"
    if (
        python.exists()
        and subprocess.run(
            [str(python), "-c", probe], capture_output=True, env=clean_env()
        ).returncode
        == 0
    ):
        return venv
    print(f"creating {venv} with {' '.join(packages)} (once) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    (venv / ".gitignore").write_text("*\n")  # never committed (Python >= 3.13 does this itself)
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", *packages], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"pip install {' '.join(packages)} into {venv} failed ({done.returncode}):\n"
            f"{done.stderr[-4000:]}\nfix the cause (is the index reachable?), or {instead}"
        )
    return venv


def ensure_langgraph_venv(venv: Path) -> Path:
    """A venv with langgraph-cli[inmem] and langchain-openai from the index, made once."""
    probe = "import langgraph_api, langgraph_runtime_inmem, langchain_openai, langgraph.prebuilt"
    return ensure_venv(venv, LANGGRAPH_PACKAGES, probe, "run with --no-langgraph")
