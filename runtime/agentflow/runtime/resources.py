"""What /health reports about the process and the models: memory against its limit (the
container's cgroup, else the machine), whether a provider is configured, and the models the
graph answers with — names and presence only, never a value."""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Any

from agentflow.graph.compiled import CompiledGraph
from agentflow.models import ModelInfo, models_in_graph

MEMORY_WARN_FRACTION = 0.9
_UNLIMITED = 1 << 60
_CGROUP_LIMITS = (
    Path("/sys/fs/cgroup/memory.max"),  # cgroup v2
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),  # cgroup v1
)


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def rss_bytes() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def memory_limit_bytes() -> tuple[int | None, str]:
    """The limit that applies to this process and where it comes from."""
    for path in _CGROUP_LIMITS:
        value = _read_int(path)
        if value is not None and value < _UNLIMITED:
            return value, "cgroup"
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "machine"
    except (ValueError, OSError, AttributeError):
        return None, "unknown"


def memory_check() -> dict[str, Any]:
    rss = rss_bytes()
    limit, source = memory_limit_bytes()
    check: dict[str, Any] = {"status": "ok", "limit_source": source}
    if rss is not None:
        check["rss_mb"] = round(rss / 2**20, 1)
    if limit is not None:
        check["limit_mb"] = round(limit / 2**20, 1)
    if rss is not None and limit:
        check["used_fraction"] = round(rss / limit, 3)
        if rss / limit >= MEMORY_WARN_FRACTION:
            check["status"] = "degraded"
    return check


def model_provider_check() -> dict[str, Any]:
    """Whether an OpenAI-compatible provider is configured (presence only)."""
    key = bool(os.environ.get("OPENAI_API_KEY"))
    base_url = bool(os.environ.get("OPENAI_BASE_URL"))
    return {
        "status": "ok" if key or base_url else "not_configured",
        "api_key_set": key,
        "base_url_set": base_url,
        "model_set": bool(os.environ.get("OPENAI_MODEL")),
    }


_MODELS: weakref.WeakKeyDictionary[CompiledGraph, list[ModelInfo]] = weakref.WeakKeyDictionary()


def graph_models(graph: CompiledGraph) -> list[ModelInfo]:
    """The models the graph's nodes hold, looked up once per graph."""
    if graph not in _MODELS:
        _MODELS[graph] = models_in_graph(graph)
    return _MODELS[graph]


def offline_models_warning(graph: CompiledGraph, *, production: bool) -> str | None:
    """The startup warning when an offline model (canned answers) serves the graph."""
    offline = [m.label for m in graph_models(graph) if m.offline]
    if not offline:
        return None
    which = ", ".join(offline)
    fix = (
        "set OPENAI_API_KEY (and OPENAI_MODEL, OPENAI_BASE_URL) if the graph picks its model "
        "from the environment, as the agentflow templates do, or give the graph a real model"
    )
    if production:
        return (
            f"MODE=production, but the graph answers with an offline model ({which}): every "
            f"reply is canned, no real model is called. {fix[0].upper()}{fix[1:]}; "
            "`agentflow doctor --production` reports this as AF-GRAPH-002."
        )
    return f"the graph answers with an offline model ({which}), not a real one: {fix}."


def models_check(graph: CompiledGraph, *, production: bool) -> dict[str, Any]:
    """The models in use (class, name, offline or not); degraded when an offline model
    serves production."""
    models = graph_models(graph)
    check: dict[str, Any] = {"status": "ok", "models": [m.to_dict() for m in models]}
    if production and any(m.offline for m in models):
        check["status"] = "degraded"
        check["reason"] = "an offline model answers in production"
    return check
