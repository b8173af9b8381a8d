"""What one load level measured, and the tables bench/capacity.py prints."""

from __future__ import annotations

from collections import Counter
from typing import Any

from http_bench import percentile
from loadgen import OK, REFUSED, Run, Window


def pct_ms(values: list[float], pct: float) -> float | None:
    return round(percentile(values, pct) * 1000, 1) if values else None


def summarise(
    runs: list[Run], window: Window, model_s: float, first_delta_s: float
) -> dict[str, Any]:
    """Runs/s counts the runs that ended well inside the measured window. Latencies, first
    tokens, errors and refusals are over every run that ended after the warm-up, those
    still going when the window closed included, so a slow run is never left out (a run
    that started in the warm-up and outlived the window counts too). Added = minus the
    mock's own duration (first token: minus its first delta's delay)."""
    duration = window.t_end - window.t0
    measured = [r for r in runs if r.ended >= window.t0]
    ok = [r for r in measured if r.outcome == OK]
    done_in_window = sum(
        1 for r in runs if r.outcome == OK and window.t0 <= r.ended <= window.t_end
    )
    added = [r.latency - model_s for r in ok]
    first = [r.first_token - first_delta_s for r in ok if r.first_token is not None]
    errors = Counter(r.outcome for r in measured if r.outcome not in (OK, REFUSED))
    return {
        "runs_measured": len(measured),
        "runs_ok": len(ok),
        "runs_ended_ok_in_window": done_in_window,
        "runs_per_s": round(done_in_window / duration, 1),
        "latency_p50_ms": pct_ms([r.latency for r in ok], 50),
        "added_p50_ms": pct_ms(added, 50),
        "added_p95_ms": pct_ms(added, 95),
        "added_p99_ms": pct_ms(added, 99),
        "added_max_ms": round(max(added) * 1000, 1) if added else None,
        "first_token_added_p50_ms": pct_ms(first, 50),
        "first_token_added_p95_ms": pct_ms(first, 95),
        "no_first_token": len(ok) - len(first),
        "errors": sum(errors.values()),
        "errors_by_kind": dict(errors.most_common()),
        "refused": sum(1 for r in measured if r.outcome == REFUSED),
        "runs_after_window": sum(1 for r in runs if r.started < window.t_end < r.ended),
        "last_run_ended_s_after_window": round(max((r.ended for r in runs), default=0.0)
                                               - window.t_end, 1),
    }  # fmt: skip


def fmt(value: Any, spec: str = ",.0f") -> str:
    if value is None:
        return "-"
    return format(value, spec)


def ms_as_s(value: float | None) -> str:
    """Latencies in the table: ms below a second, seconds above."""
    if value is None:
        return "-"
    return f"{value:,.0f} ms" if abs(value) < 1000 else f"{value / 1000:,.1f} s"


COLUMNS = [
    "concurrent", "ours runs/s", "added p50", "added p99", "1st token added p50", "errors",
    "refused", "RSS MB", "CPU ms/run", "/ping p99", "langgraph dev runs/s", "lg added p50",
    "lg errors", "model alone runs/s",
]  # fmt: skip


def table_rows(levels: list[int], ours: dict[int, Any], langgraph: dict[int, Any],
               model: dict[int, Any]) -> list[list[str]]:  # fmt: skip
    rows = []
    for level in levels:
        o, lg, m = ours.get(level) or {}, langgraph.get(level) or {}, model.get(level) or {}
        server = o.get("server") or {}
        ping = o.get("ping") or {}
        rows.append([
            f"{level:,}", fmt(o.get("runs_per_s"), ",.1f"), ms_as_s(o.get("added_p50_ms")),
            ms_as_s(o.get("added_p99_ms")), ms_as_s(o.get("first_token_added_p50_ms")),
            fmt(o.get("errors"), ","), fmt(o.get("refused"), ","),
            fmt(server.get("rss_peak_mb"), ",.0f"), fmt(server.get("cpu_ms_per_run"), ",.2f"),
            ms_as_s(ping.get("p99_ms")), fmt(lg.get("runs_per_s"), ",.1f"),
            ms_as_s(lg.get("added_p50_ms")), fmt(lg.get("errors"), ","),
            fmt(m.get("runs_per_s"), ",.1f"),
        ])  # fmt: skip
    return rows


def markdown_table(rows: list[list[str]], columns: list[str] = COLUMNS) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def error_lines(name: str, results: dict[int, Any]) -> list[str]:
    """One line per level whose runs failed: how many of each kind."""
    lines = []
    for level, result in results.items():
        kinds = (result or {}).get("errors_by_kind") or {}
        if kinds:
            detail = ", ".join(f"{count:,} {kind}" for kind, count in kinds.items())
            lines.append(f"  {name} at {level:,}: {detail}")
    return lines
