"""Graph checks: the import path in agentflow.json resolves to a compiled graph, and the models
it answers with are real ones in production.

`doctor` imports the user's code once, in a subprocess (with a timeout), so a slow, hanging or
crashing import cannot take the doctor down with it; that probe also reports the models the
graph uses. `agentflow api` imports it in process, as it is about to serve it anyway. Both go
through `inspect_graph`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agentflow_cli.checks import Check, Outcome, Skipped
from agentflow_cli.checks.context import Context

if TYPE_CHECKING:
    from agentflow.models import ModelInfo

PROBE_TIMEOUT = 20.0  # seconds
RESULT_PREFIX = "agentflow-graph-probe: "
REAL_MODEL_FIX = (
    "set OPENAI_API_KEY (and OPENAI_MODEL, OPENAI_BASE_URL) in the production environment "
    "if the graph picks its model from the environment, as the agentflow templates do; "
    "otherwise give the graph a real model such as OpenAIChat"
)


@dataclass(frozen=True, slots=True)
class GraphProbe:
    """The outcome of importing the graph, and the models it uses (when it imported)."""

    outcome: Outcome
    models: list[ModelInfo] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "severity": self.outcome.severity,
            "detail": self.outcome.detail,
            "fix": self.outcome.fix,
            "models": [m.to_dict() for m in self.models],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GraphProbe:
        from agentflow.models import ModelInfo

        outcome = Outcome(data["severity"], data["detail"], data["fix"])
        return cls(outcome, [ModelInfo.from_dict(m) for m in data.get("models", [])])


def inspect_graph(spec: str, project_dir: Path) -> GraphProbe:
    """Import `spec` in this process the way the server does."""
    from agentflow.graph import CompiledGraph
    from agentflow.models import models_in_graph
    from agentflow.runtime import ConfigError, load_served_graph

    started = time.perf_counter()
    try:
        graph = load_served_graph(spec, project_dir)
    except ConfigError as exc:
        fix = exc.fix or "fix the graph module, then run again"
        return GraphProbe(Outcome("error", exc.problem, fix))
    except SystemExit as exc:
        return GraphProbe(
            Outcome(
                "error",
                f"importing {spec} called sys.exit({exc.code!r})",
                "do not exit at import time; raise an exception that says what is missing",
            )
        )
    took = time.perf_counter() - started
    if not isinstance(graph, CompiledGraph):
        nodes = len(graph.node_names())
        detail = (
            f"{spec} is a LangGraph compiled graph with {nodes} node{'s' * (nodes != 1)} "
            f"({took:.1f} s), served by the LangGraph API with its state in agentflow's store"
        )
        return GraphProbe(Outcome("ok", detail))
    nodes = len(graph.spec.nodes)
    detail = f"{spec} is a compiled graph with {nodes} node{'s' * (nodes != 1)} ({took:.1f} s)"
    return GraphProbe(Outcome("ok", detail), models_in_graph(graph))


def import_outcome(spec: str, project_dir: Path) -> Outcome:
    """Whether `spec` imports in this process (for `agentflow api`)."""
    return inspect_graph(spec, project_dir).outcome


def probe_graph(
    spec: str, project_dir: Path, environ: Mapping[str, str], timeout: float
) -> GraphProbe:
    """Run `inspect_graph` in a fresh interpreter with `environ`, within `timeout`."""
    command = [sys.executable, "-m", "agentflow_cli.graph_probe", str(project_dir), spec]
    try:
        done = subprocess.run(
            command, cwd=project_dir, env=dict(environ), capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return GraphProbe(
            Outcome(
                "error",
                f"importing {spec} did not finish within {timeout:g} s",
                "move slow work (network calls, model downloads, waiting on services) out of "
                "module import time, e.g. into the first node or a lazily built client",
            )
        )
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return GraphProbe.from_json(json.loads(line[len(RESULT_PREFIX) :]))
    tail = " | ".join(done.stderr.strip().splitlines()[-3:]) or "no output"
    return GraphProbe(
        Outcome(
            "error",
            f"importing {spec} crashed the interpreter (exit code {done.returncode}): {tail}",
            f'reproduce with: python -c "import {spec.partition(":")[0]}" in {project_dir}',
        )
    )


def graph_spec(ctx: Context) -> str | None:
    if ctx.settings is not None:
        return ctx.settings.graph
    value = (ctx.data or {}).get("graph")
    return value if isinstance(value, str) and ":" in value.strip(":") else None


def probe_project_graph(ctx: Context) -> GraphProbe | Skipped:
    """The probe of the project's graph (Context.graph_probe runs it once per doctor run)."""
    spec = graph_spec(ctx)
    if spec is None or ctx.project_dir is None:
        return Skipped("agentflow.json names no valid graph: see AF-CONFIG-004")
    specs = [s for _, s in ctx.settings.graphs] if ctx.settings and ctx.settings.graphs else [spec]
    probes = [probe_graph(s, ctx.project_dir, ctx.environ_all, PROBE_TIMEOUT) for s in specs]
    failed = next((p for p in probes if p.outcome.severity != "ok"), None)
    if failed is not None or len(probes) == 1:
        return failed or probes[0]
    details = "; ".join(p.outcome.detail for p in probes)  # several graphs (`graphs`)
    return GraphProbe(Outcome("ok", details), [m for p in probes for m in p.models])


def _graph(ctx: Context) -> Outcome | Skipped:
    probe = ctx.graph_probe
    return probe if isinstance(probe, Skipped) else probe.outcome


def models_outcome(models: list[ModelInfo], *, production: bool) -> Outcome:
    """Whether the graph answers with real models (an offline one is an error in production)."""
    if not models:
        return Outcome("ok", "no chat model found in the graph's nodes")
    used = ", ".join(m.label + (" (offline)" if m.offline else "") for m in models)
    offline = [m.label for m in models if m.offline]
    if not offline:
        return Outcome("ok", f"the graph answers with {used}")
    if production:
        return Outcome(
            "error",
            f"the graph answers with an offline model in production ({', '.join(offline)}): "
            "every reply would be canned, no real model is called",
            REAL_MODEL_FIX,
        )
    return Outcome(
        "ok", f"the graph answers with {used}: fine for development, an error in production"
    )


def _models(ctx: Context) -> Outcome | Skipped:
    probe = ctx.graph_probe
    if isinstance(probe, Skipped) or probe.outcome.severity == "error":
        return Skipped("the graph does not import: see AF-GRAPH-001")
    return models_outcome(probe.models, production=ctx.production)


GRAPH = Check("AF-GRAPH-001", "graph", "graph import", _graph)
MODELS = Check("AF-GRAPH-002", "graph", "real models in production", _models)
CHECKS = (GRAPH, MODELS)
