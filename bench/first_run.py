"""A newcomer's first run: `make demo` in a fresh clone, timed to the first streamed answer.

    python3 bench/first_run.py [--rounds 1] [--keep]

Clones this checkout's HEAD into a temporary directory, runs `make demo` there on a free port
and times, from the start of `make`, until `/v1/graph/stream` sends its first `delta` or
`message` event. Reports the seconds, the size of the clone's `.venv`, and (baseline, same
run) the time of `pip install -e .` alone in a fresh venv, the part no project can avoid.
Needs git, make and the package index (or a warm pip cache). Target (issue 14): under 30 s.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TIMEOUT = 300.0
QUESTION = {"messages": [{"role": "user", "content": "what time is it"}], "thread_id": "bench"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def first_event(base: str, deadline: float) -> str | None:
    """The first `delta` or `message` event of a stream, or None while the server is down."""
    request = urllib.request.Request(
        base + "/v1/graph/stream",
        data=json.dumps(QUESTION).encode(),
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=max(1.0, deadline - time.time())) as reply:
            for raw in reply:
                line = raw.decode().strip()
                if line in ("event: delta", "event: message"):
                    return line.removeprefix("event: ")
    except OSError:
        return None
    return None


def directory_mb(path: Path) -> float:
    total = sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() or p.is_symlink())
    return total / 1e6


def demo_round(workdir: Path) -> dict[str, Any]:
    clone = workdir / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    port = free_port()
    env = {**os.environ, "PORT": str(port), "NO_COLOR": "1"}
    env.pop("OPENAI_API_KEY", None)
    base = f"http://127.0.0.1:{port}"
    started = time.time()
    deadline = started + TIMEOUT
    proc = subprocess.Popen(
        ["make", "demo"], cwd=clone, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        event = None
        while event is None and time.time() < deadline and proc.poll() is None:
            event = first_event(base, deadline)
            if event is None:
                time.sleep(0.1)
        elapsed = time.time() - started
        if event is None:
            raise SystemExit(f"make demo gave no streamed answer (exit {proc.poll()})")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    return {"seconds": round(elapsed, 1), "first_event": event,
            "venv_mb": round(directory_mb(clone / ".venv"), 1)}  # fmt: skip


def baseline_round(workdir: Path) -> float:
    """pip install -e . of this checkout into a fresh venv: the floor of any first run."""
    venv = workdir / "baseline-venv"
    started = time.time()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", "-e", str(ROOT)], check=True,
    )  # fmt: skip
    return round(time.time() - started, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    options = parser.parse_args()
    rows = []
    for _ in range(options.rounds):
        with tempfile.TemporaryDirectory(prefix="agentflow-first-run-") as tmp:
            row = demo_round(Path(tmp))
            row["baseline_pip_install_s"] = baseline_round(Path(tmp))
            rows.append(row)
            print(
                f"make demo -> first streamed {row['first_event']}: {row['seconds']} s "
                f"(.venv {row['venv_mb']} MB); pip install -e . alone: "
                f"{row['baseline_pip_install_s']} s",
                flush=True,
            )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "first_run.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
