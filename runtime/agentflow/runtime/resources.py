"""What /health reports about the process and the model provider: memory against its limit
(the container's cgroup, else the machine), and whether a provider is configured — names and
presence only, never a value."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

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
