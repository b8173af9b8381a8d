"""Graph check: the import path in agentflow.json resolves to a compiled graph.

`doctor` imports the user's code in a subprocess (with a timeout), so a slow, hanging or
crashing import cannot take the doctor down with it; `agentflow api` imports it in process,
as it is about to serve it anyway. Both go through `import_outcome`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from agentflow_cli.checks import Check, Outcome, Skipped
from agentflow_cli.checks.context import Context

PROBE_TIMEOUT = 20.0  # seconds
RESULT_PREFIX = "agentflow-graph-probe: "


def import_outcome(spec: str, project_dir: Path) -> Outcome:
    """Import `spec` in this process the way the server does."""
    from agentflow.runtime.loader import load_graph
    from agentflow.runtime.settings import ConfigError

    started = time.perf_counter()
    try:
        graph = load_graph(spec, project_dir)
    except ConfigError as exc:
        return Outcome("error", exc.problem, exc.fix or "fix the graph module, then run again")
    except SystemExit as exc:
        return Outcome(
            "error",
            f"importing {spec} called sys.exit({exc.code!r})",
            "do not exit at import time; raise an exception that says what is missing",
        )
    took = time.perf_counter() - started
    nodes = len(graph.spec.nodes)
    return Outcome(
        "ok", f"{spec} is a compiled graph with {nodes} node{'s' * (nodes != 1)} ({took:.1f} s)"
    )


def probe_outcome(
    spec: str, project_dir: Path, environ: Mapping[str, str], timeout: float
) -> Outcome:
    """Run `import_outcome` in a fresh interpreter with `environ`, within `timeout`."""
    command = [sys.executable, "-m", "agentflow_cli.graph_probe", str(project_dir), spec]
    try:
        done = subprocess.run(
            command, cwd=project_dir, env=dict(environ), capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return Outcome(
            "error",
            f"importing {spec} did not finish within {timeout:g} s",
            "move slow work (network calls, model downloads, waiting on services) out of "
            "module import time, e.g. into the first node or a lazily built client",
        )
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
            return Outcome(result["severity"], result["detail"], result["fix"])
    tail = " | ".join(done.stderr.strip().splitlines()[-3:]) or "no output"
    return Outcome(
        "error",
        f"importing {spec} crashed the interpreter (exit code {done.returncode}): {tail}",
        f'reproduce with: python -c "import {spec.partition(":")[0]}" in {project_dir}',
    )


def graph_spec(ctx: Context) -> str | None:
    if ctx.settings is not None:
        return ctx.settings.graph
    value = (ctx.data or {}).get("graph")
    return value if isinstance(value, str) and ":" in value.strip(":") else None


def _graph(ctx: Context) -> Outcome | Skipped:
    spec = graph_spec(ctx)
    if spec is None or ctx.project_dir is None:
        return Skipped("agentflow.json names no valid graph: see AF-CONFIG-004")
    return probe_outcome(spec, ctx.project_dir, ctx.environ_all, PROBE_TIMEOUT)


GRAPH = Check("AF-GRAPH-001", "graph", "graph import", _graph)
CHECKS = (GRAPH,)
