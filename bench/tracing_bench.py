"""Tracing cost in the capacity setting: 200 concurrent streamed runs, tracing off vs on.

    .venv/bin/python bench/tracing_bench.py [--clients 200] [--duration 20] [--warmup 5]
        [--rounds 3] [--deltas 10] [--model-duration 2.0] [--on-env NAME=VALUE ...]
        [--json bench/results/tracing_bench.json]

Needs the otel extra (`pip install -e '.[otel]'`). The setting is bench/capacity.py's, whose
modules it imports: the mock model (bench/mock_model.py: 10 deltas over 2 s a call), C
aiohttp clients in a closed loop on `POST /v1/graph/stream` (a new thread each run), each
server an `agentflow api` subprocess (one worker, memory checkpointer, LOG_LEVEL=WARNING)
serving `create_react_agent(OpenAIChat(<mock>), [])`. Two servers run side by side:

- off: no OTEL_* / AGENTFLOW_* variables (nothing from opentelemetry is imported);
- on: OTEL_EXPORTER_OTLP_ENDPOINT=<collector>, the SDK's default sampler (parent-based
  always-on: every run is sampled, 100%) and BatchSpanProcessor settings: every run
  exports 3 spans (the request, agentflow.run, agentflow.model) over OTLP/HTTP protobuf;
  `--on-env` adds variables to it (e.g. OTEL_BSP_MAX_EXPORT_BATCH_SIZE=16).

The collector is a separate process (this script with --collector: aiohttp, decodes every
POST /v1/traces with opentelemetry.proto and counts the spans by name). Each round measures
both servers, one after the other, alternating which goes first (off first in rounds 1, 3,
...); between measurements the script waits until the mock has no call in flight, the server
is idle and (after the on server) the collector has the spans of every run (3 per model
call the mock served; at most 30 s, then 1 s without a new one: the SDK exports its queue
every 5 s or 512 spans). Per round: runs/s, latency added to the mock's 2 s (p50/p99),
server CPU ms per run, and the spans the collector received against those expected.
Target (issue 17): tracing costs < 3% of runs/s and < 20 ms of added p99 (means over the
rounds of the paired differences). Each measurement also reports the CPU cores that
processes other than the bench's used meanwhile (a shared machine's noise: p99 moves by
hundreds of ms under other load).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH / "capacity")]

from capacity import code_version, describe, measure, settle  # noqa: E402
from http_bench import cpu_seconds, free_port  # noqa: E402
from loadgen import agentflow_target  # noqa: E402
from mock_model import raise_nofile_limit  # noqa: E402
from processes import BIN, Process, agentflow_server, clean_env, get_json, mock_model  # noqa: E402

SPANS_PER_RUN = 3  # request, agentflow.run, agentflow.model
TARGET_RUNS = 0.03
TARGET_P99_MS = 20.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200, help="concurrent runs")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument("--rounds", type=int, default=3, help="off/on pairs")
    parser.add_argument("--run-timeout", type=float, default=60.0, help="client timeout a run")
    parser.add_argument("--deltas", type=int, default=10, help="mock: content deltas a call")
    parser.add_argument("--model-duration", type=float, default=2.0, help="mock: seconds a call")
    parser.add_argument(
        "--on-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="more environment for the on server (e.g. OTEL_BSP_MAX_EXPORT_BATCH_SIZE=64)",
    )
    parser.add_argument("--json", type=Path, default=BENCH / "results/tracing_bench.json")
    parser.add_argument("--collector", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.clients < 1 or args.duration <= 0 or args.warmup < 0 or args.rounds < 1:
        parser.error("--clients and --rounds must be >= 1, --duration > 0, --warmup >= 0")
    if any("=" not in item for item in args.on_env):
        parser.error("--on-env takes NAME=VALUE")
    args.on_env = dict(item.split("=", 1) for item in args.on_env)
    return args


# --- the collector (its own process) ------------------------------------------------------


def serve_collector(port: int) -> None:
    """POST /v1/traces (OTLP/HTTP protobuf): decode, count spans by name; GET /stats."""
    from aiohttp import web
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )

    counts: Counter[str] = Counter()
    exports = {"requests": 0, "last_at": 0.0}

    async def traces(request: web.Request) -> web.Response:
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        for resource_spans in message.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                counts.update(span.name for span in scope_spans.spans)
        exports["requests"] += 1
        exports["last_at"] = time.time()
        body = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, content_type="application/x-protobuf")

    async def stats(request: web.Request) -> web.Response:
        spans = sum(counts.values())
        return web.json_response({"spans": spans, "by_name": counts, **exports})

    async def ping(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/traces", traces)
    app.router.add_get("/stats", stats)
    app.router.add_get("/ping", ping)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def collector_process(tmp: Path) -> Process:
    port = free_port()
    argv = [str(BIN / "python"), str(Path(__file__).resolve()), "--collector", str(port)]
    return Process("collector", argv, clean_env(), tmp, port, tmp / "collector.log", "/ping")


def exports_drained(collector: Process, expected: int, limit: float = 30.0) -> int:
    """The spans the collector holds once it has `expected` (at most `limit` seconds, then
    1 s without a new one): the on server exports its queue every OTEL_BSP_SCHEDULE_DELAY
    (5 s by default) or 512 spans, also after the load stops."""
    deadline = time.monotonic() + limit
    spans = get_json(collector.url + "/stats")["spans"]
    while spans < expected and time.monotonic() < deadline:
        time.sleep(0.1)
        spans = get_json(collector.url + "/stats")["spans"]
    while True:
        time.sleep(1.0)
        now = get_json(collector.url + "/stats")["spans"]
        if now == spans:
            return spans
        spans = now


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores, /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class OtherLoad:
    """CPU cores used by processes other than this bench's (the machine's busy time minus
    ours) while a measurement ran: a shared machine's noise, reported next to each result."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.start = self.read()

    def read(self) -> tuple[float, float, float]:
        ours = sum(cpu_seconds(pid) for pid in self.pids) + cpu_seconds(os.getpid())
        return time.monotonic(), machine_busy(), ours

    def cores(self) -> float:
        (t0, busy0, ours0), (t1, busy1, ours1) = self.start, self.read()
        return round(max(0.0, (busy1 - busy0) - (ours1 - ours0)) / (t1 - t0), 2)


# --- the servers and the rounds -----------------------------------------------------------


def servers(tmp: Path, mock_url: str, collector_url: str, on_env: dict[str, str]
            ) -> dict[str, Process]:  # fmt: skip
    made = {}
    for mode in ("off", "on"):
        (tmp / mode).mkdir()
        server = agentflow_server(tmp / mode, "memory", "memory", mock_url)
        server.name = f"agentflow tracing {mode}"
        server.env = {k: v for k, v in server.env.items() if not k.startswith("OTEL_")}
        if mode == "on":
            server.env.update(
                OTEL_EXPORTER_OTLP_ENDPOINT=collector_url, OTEL_SERVICE_NAME="agentflow-bench"
            )
            server.env.update(on_env)
        made[mode] = server
    return made


async def one_round(
    round_no: int, args: argparse.Namespace, mock: Process, collector: Process,
    made: dict[str, Process],
) -> dict[str, Any]:  # fmt: skip
    order = ["on", "off"] if round_no % 2 else ["off", "on"]
    results: dict[str, Any] = {"order": order}
    for mode in order:
        server = made[mode]
        calls0 = get_json(mock.url + "/stats")["calls"]
        spans0 = get_json(collector.url + "/stats")["spans"]
        other = OtherLoad([server.pid, mock.pid, collector.pid])
        result = await measure(agentflow_target(server.url), args.clients, args, server, "/ping")
        result["other_load_cores"] = other.cores()
        result.update(await settle(mock, server))
        result["model_calls"] = get_json(mock.url + "/stats")["calls"] - calls0
        expected = spans0 + SPANS_PER_RUN * result["model_calls"] if mode == "on" else spans0
        spans = await asyncio.to_thread(exports_drained, collector, expected)
        result["spans_received"] = spans - spans0
        results[mode] = result
        spans = f"spans received {result['spans_received']:,} for {result['model_calls']:,} "
        spans += f"runs, other processes {result['other_load_cores']} cores"
        print(describe(server.name, args.clients, result) + ", " + spans, flush=True)
    return results


def paired(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per round on vs off, and their means (with min..max) over the rounds."""

    def spread(values: list[float], digits: int) -> dict[str, Any]:
        return {"mean": round(statistics.fmean(values), digits),
                "min": round(min(values), digits), "max": round(max(values), digits)}  # fmt: skip

    def mean(mode: str, key: str, sub: str | None = None) -> float:
        values = [(r[mode][sub] if sub else r[mode])[key] for r in rounds]
        return round(statistics.fmean(values), 2)

    runs_cost = [1 - r["on"]["runs_per_s"] / r["off"]["runs_per_s"] for r in rounds]
    p99_added = [r["on"]["added_p99_ms"] - r["off"]["added_p99_ms"] for r in rounds]
    cpu_added = [
        r["on"]["server"]["cpu_ms_per_run"] - r["off"]["server"]["cpu_ms_per_run"] for r in rounds
    ]
    expected = sum(SPANS_PER_RUN * r["on"]["model_calls"] for r in rounds)
    received = sum(r["on"]["spans_received"] for r in rounds)
    summary = {
        "runs_per_s": {"off": mean("off", "runs_per_s"), "on": mean("on", "runs_per_s")},
        "runs_per_s_cost": spread(runs_cost, 4),
        "added_p99_ms": {"off": mean("off", "added_p99_ms"), "on": mean("on", "added_p99_ms")},
        "added_p99_ms_on_minus_off": spread(p99_added, 1),
        "added_p50_ms": {"off": mean("off", "added_p50_ms"), "on": mean("on", "added_p50_ms")},
        "cpu_ms_per_run": {
            "off": mean("off", "cpu_ms_per_run", "server"),
            "on": mean("on", "cpu_ms_per_run", "server"),
        },
        "cpu_ms_per_run_on_minus_off": spread(cpu_added, 2),
        "ping_p99_ms": {"off": mean("off", "p99_ms", "ping"), "on": mean("on", "p99_ms", "ping")},
        "errors": {m: sum(r[m]["errors"] for r in rounds) for m in ("off", "on")},
        "spans_expected": expected,
        "spans_received": received,
    }
    summary["target_met"] = (
        summary["runs_per_s_cost"]["mean"] < TARGET_RUNS
        and summary["added_p99_ms_on_minus_off"]["mean"] < TARGET_P99_MS
    )
    return summary


def print_summary(args: argparse.Namespace, rounds: list[dict[str, Any]], s: dict[str, Any]
                  ) -> None:  # fmt: skip
    print(f"\n### tracing off vs on, {args.clients} concurrent streamed runs "
          f"(mock {args.deltas} deltas over {args.model_duration:g} s; {args.rounds} rounds "
          f"of {args.duration:g} s)\n")  # fmt: skip
    print("| round | order | runs/s off | runs/s on | cost | added p99 off | added p99 on "
          "| p99 on-off | CPU ms/run off | on | spans received / expected "
          "| other load off / on |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for k, r in enumerate(rounds, 1):
        off, on = r["off"], r["on"]
        cost = 1 - on["runs_per_s"] / off["runs_per_s"]
        print(f"| {k} | {'/'.join(r['order'])} | {off['runs_per_s']:.1f} | "
              f"{on['runs_per_s']:.1f} | {cost:+.1%} | {off['added_p99_ms']:.0f} ms | "
              f"{on['added_p99_ms']:.0f} ms | {on['added_p99_ms'] - off['added_p99_ms']:+.0f} ms"
              f" | {off['server']['cpu_ms_per_run']} | {on['server']['cpu_ms_per_run']} | "
              f"{on['spans_received']:,} / {SPANS_PER_RUN * on['model_calls']:,} | "
              f"{off['other_load_cores']} / {on['other_load_cores']} cores |")  # fmt: skip
    cost, p99 = s["runs_per_s_cost"], s["added_p99_ms_on_minus_off"]
    print(
        f"\nruns/s off {s['runs_per_s']['off']} on {s['runs_per_s']['on']}: cost "
        f"{cost['mean']:+.2%} ({cost['min']:+.2%}..{cost['max']:+.2%}; target < 3%)"
    )
    print(
        f"added p99 off {s['added_p99_ms']['off']} ms on {s['added_p99_ms']['on']} ms: "
        f"{p99['mean']:+.1f} ms ({p99['min']:+.1f}..{p99['max']:+.1f}; target < 20 ms)"
    )
    print(
        f"server CPU ms/run off {s['cpu_ms_per_run']['off']} on {s['cpu_ms_per_run']['on']}"
        f" ({s['cpu_ms_per_run_on_minus_off']['mean']:+.2f} ms a run of 3 spans); /ping p99 "
        f"off {s['ping_p99_ms']['off']} ms on {s['ping_p99_ms']['on']} ms"
    )
    print(f"spans received by the collector: {s['spans_received']:,} of "
          f"{s['spans_expected']:,} expected; errors off {s['errors']['off']} on "
          f"{s['errors']['on']}; target: {'met' if s['target_met'] else 'NOT met'}")  # fmt: skip


def main() -> None:
    args = parse_args()
    if args.collector:
        serve_collector(args.collector)
        return
    raise_nofile_limit()
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="agentflow-tracing-bench-") as name:
        tmp = Path(name)
        mock = mock_model(tmp, args.deltas, args.model_duration)
        collector = collector_process(tmp)
        started: list[Process] = []
        try:
            for process in (mock, collector):
                process.start()
                started.append(process)
            made = servers(tmp, mock.url, collector.url, args.on_env)
            for server in made.values():
                server.start()
                started.append(server)
            for k in range(args.rounds):
                print(f"round {k + 1} of {args.rounds}", flush=True)
                rounds.append(asyncio.run(one_round(k, args, mock, collector, made)))
            by_name = get_json(collector.url + "/stats")["by_name"]
        except KeyboardInterrupt:
            print("interrupted: stopping what was started", file=sys.stderr)
            sys.exit(130)
        finally:
            for process in reversed(started):
                process.stop()
    summary = paired(rounds)
    print_summary(args, rounds, summary)
    report = {
        "code": code_version(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version(), "loadavg": os.getloadavg()},
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "summary": summary,
        "spans_by_name": by_name,
        "rounds": rounds,
    }  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
