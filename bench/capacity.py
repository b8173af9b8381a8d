"""Capacity: how many concurrent agent runs one worker holds against a slow streaming model.

    .venv/bin/python bench/capacity.py [--levels 50,200,1000,5000] [--duration 15]
        [--checkpointers memory,sqlite,postgres] [--no-langgraph]
        [--deltas 10] [--model-duration 2.0] [--json bench/results/capacity.json]

Started here, all on 127.0.0.1 and stopped by PID at the end (also on Ctrl-C or an error):
- bench/mock_model.py: an OpenAI-compatible endpoint (aiohttp) that streams `--deltas`
  content deltas over `--model-duration` seconds per call, then usage and [DONE].
- one `agentflow api` per checkpointer (memory, sqlite, postgres in its own schema per run,
  postgres+redis on request), one worker, LOG_LEVEL=WARNING, serving
  `create_react_agent(OpenAIChat("mock-model-2024-01-01", base_url=<mock>/v1), [])`.
- `langgraph dev` (in-memory runtime, from bench/.venv-langgraph, made once with
  langgraph-cli[inmem] and langchain-openai from the index) serving langgraph.prebuilt's
  `create_react_agent(ChatOpenAI(..., base_url=<mock>/v1, streaming=True), tools=[])`,
  with --n-jobs-per-worker at the highest level (its default runs one run at a time).

Per level C, for each server and for the mock alone (the ceiling): a closed loop of C
aiohttp clients (one ClientSession, TCPConnector(limit=0)), each doing back-to-back
streamed runs on a fresh thread for `--warmup` + `--duration` seconds (the clients start
evenly over the warm-up, not all at once and not in lockstep waves); runs still going at
the end finish on their own, each bounded by `--run-timeout`. Ours: POST /v1/graph/stream
to the `end` event. LangGraph: POST /threads/{new id}/runs/stream with if_not_exists=create
and stream_mode messages-tuple (what langgraph-sdk's runs.stream sends), to the end of the
stream. The mock alone: POST /v1/chat/completions with stream=true, to [DONE].

Reported per level: runs/s (runs that ended well inside the measured window); over every
run that ended after the warm-up (slow ones that outlive the window included): latency
added to the mock's own duration p50/p95/p99, time to first token added to the mock's
first delay p50/p95, errors by kind (HTTP status + error code, SSE error events, client
timeouts, connection errors) and refusals (503 with Retry-After; that client waits as long,
at most 5 s, before its next run). Per server: peak RSS (VmRSS sampled every 0.25 s; VmHWM
in the JSON), CPU ms per run (/proc/PID/stat across the window / runs completed in it),
and GET /ping (langgraph: /ok) p50/p99 every 50 ms on a connection of its own, from a
separate process, corrected for coordinated omission. Between measurements the script
waits until the mock has no call in flight and the server is idle (a server still busy
after 60 s is restarted). The machine's TCP listen-queue overflows during a level are in the
JSON (`listen_overflows`): a client turned away there retries its connection after 1, 3,
7 ... s, or sees a reset. RLIMIT_NOFILE is raised to the hard limit here and inherited by
every process started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH / "capacity")]

from http_bench import (  # noqa: E402
    checkpointer_config,
    cpu_seconds,
    drop_pg_schema,
    percentile,
)
from loadgen import (  # noqa: E402
    OK,
    Target,
    Window,
    agentflow_target,
    closed_loop,
    langgraph_target,
    model_target,
)
from mock_model import raise_nofile_limit  # noqa: E402
from processes import (  # noqa: E402
    LANGGRAPH_VENV,
    MODEL_NAME,
    Process,
    agentflow_server,
    ensure_langgraph_venv,
    get_json,
    langgraph_server,
    mock_model,
    status_mb,
)
from report import error_lines, markdown_table, summarise, table_rows  # noqa: E402

CHECKPOINTERS = ("memory", "sqlite", "postgres", "postgres+redis")
PG_SCHEMA = f"bench_capacity_{os.getpid()}"
SETTLE_TIMEOUT = 60.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="50,200,1000,5000", help="concurrent clients")
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds a level")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument("--run-timeout", type=float, default=60.0, help="client timeout a run")
    parser.add_argument(
        "--checkpointers",
        default="memory,sqlite,postgres",
        help=f"comma-separated, of {', '.join(CHECKPOINTERS)}",
    )
    parser.add_argument("--no-langgraph", action="store_true", help="skip langgraph dev")
    parser.add_argument(
        "--langgraph-jobs",
        type=int,
        default=None,
        help="langgraph dev --n-jobs-per-worker (default: highest level)",
    )
    parser.add_argument("--deltas", type=int, default=10, help="mock: content deltas a call")
    parser.add_argument("--model-duration", type=float, default=2.0, help="mock: seconds a call")
    parser.add_argument("--pg-dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/0",
        help="for the postgres+redis checkpointer",
    )
    parser.add_argument("--json", type=Path, default=BENCH / "results/capacity.json")
    args = parser.parse_args()
    try:
        args.levels = [int(x) for x in args.levels.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--levels takes comma-separated integers, got {args.levels!r}")
    args.checkpointers = [x.strip() for x in args.checkpointers.split(",") if x.strip()]
    unknown = sorted(set(args.checkpointers) - set(CHECKPOINTERS))
    if unknown:
        parser.error(f"unknown checkpointer {unknown[0]!r}; known: {', '.join(CHECKPOINTERS)}")
    if not args.levels or min(args.levels) < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("--levels must be positive, --duration > 0 and --warmup >= 0")
    if args.deltas < 1 or args.model_duration <= 0:
        parser.error("--deltas must be >= 1 and --model-duration > 0")
    args.langgraph_jobs = args.langgraph_jobs or max(args.levels)
    return args


# --- one measurement -----------------------------------------------------------------------


def listen_overflows() -> int:
    """TcpExt ListenOverflows of the machine: connections a full accept queue turned away
    (their clients retry after 1, 3, 7 ... s, or see a reset)."""
    heads, values = [
        line.split() for line in Path("/proc/net/netstat").read_text().splitlines()[:2]
    ]
    return int(values[heads.index("ListenOverflows")])


async def watch_server(pid: int, window: Window, stop: asyncio.Event) -> dict[str, Any]:
    """Peak VmRSS sampled every 0.25 s until `stop`; CPU seconds across the window, read
    when it starts and when it ends (the times of the reads are kept, for CPU per run)."""
    peak, reads = 0.0, []
    while not stop.is_set():
        now = time.perf_counter()
        try:
            peak = max(peak, status_mb(pid, "VmRSS"))
            if len(reads) < 2 and now >= (window.t0, window.t_end)[len(reads)]:
                reads.append((now, cpu_seconds(pid)))
        except FileNotFoundError:
            return {"died": True, "rss_peak_mb": round(peak, 1)}
        boundary = (window.t0, window.t_end, float("inf"))[len(reads)]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, min(0.25, boundary - now)))
    result: dict[str, Any] = {"rss_peak_mb": round(peak, 1), "vm_hwm_mb": None, "cpu": reads}
    try:
        result["vm_hwm_mb"] = round(status_mb(pid, "VmHWM"), 1)
    except FileNotFoundError:
        result["died"] = True
    return result


async def ping_series(url: str, path: str, window: Window) -> dict[str, Any]:
    """GET `path` every 50 ms on a connection of its own, from a separate process
    (bench/capacity/pinger.py: the load client's busy loop never delays a sample; stalls
    are corrected for coordinated omission); the samples of the measured window."""
    warmup = max(0.0, window.t0 - time.perf_counter())
    argv = [sys.executable, str(BENCH / "capacity" / "pinger.py"), url, path]
    argv += [f"{warmup:.3f}", f"{window.t_end - window.t0:.3f}"]
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
    try:
        out, _ = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    data = json.loads(out)
    latencies = data["latencies_ms"]
    return {
        "requests": data["requests"],
        "p50_ms": round(percentile(latencies, 50), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 99), 1) if latencies else None,
        "max_ms": max(latencies, default=None),
        "failures": data["failures"],
    }


async def measure(
    target: Target, clients: int, args: argparse.Namespace, server: Process | None,
    ping_path: str | None,
) -> dict[str, Any]:  # fmt: skip
    overflows = listen_overflows()
    window = Window.from_now(args.warmup, args.duration)
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_server(server.pid, window, stop)) if server else None
    pinger = (
        asyncio.create_task(ping_series(server.url, ping_path, window))
        if server and ping_path else None
    )  # fmt: skip
    try:
        ramp = args.warmup or args.model_duration
        runs = await closed_loop(target, clients, window, args.run_timeout, ramp)
    finally:
        stop.set()
    step = args.model_duration / args.deltas
    result = summarise(runs, window, args.model_duration, step)
    result["listen_overflows"] = listen_overflows() - overflows
    if watcher is not None:
        stats = await watcher
        reads = stats.pop("cpu", [])
        if len(reads) == 2:
            (t0, cpu0), (t1, cpu1) = reads
            done = sum(1 for r in runs if r.outcome == OK and t0 <= r.ended <= t1)
            stats["cpu_ms_per_run"] = round((cpu1 - cpu0) / done * 1000, 2) if done else None
            stats["cpu_cores"] = round((cpu1 - cpu0) / (t1 - t0), 2)
        result["server"] = stats
    if pinger is not None:
        result["ping"] = await pinger
    return result


async def settle(mock: Process, server: Process | None) -> dict[str, Any]:
    """Wait until no model call is in flight and the server is idle (runs that clients gave
    up on may still be going). A server still busy after SETTLE_TIMEOUT seconds is
    restarted, so its backlog cannot load the next measurement."""
    started = time.monotonic()
    alive = server is not None and server.proc is not None and server.proc.poll() is None
    while time.monotonic() - started < SETTLE_TIMEOUT:
        cpu0 = cpu_seconds(server.pid) if alive and server else 0.0
        await asyncio.sleep(0.5)
        cores = (cpu_seconds(server.pid) - cpu0) / 0.5 if alive and server else 0.0
        stats = await asyncio.to_thread(get_json, mock.url + "/stats")
        if stats["in_flight"] == 0 and cores < 0.05:
            return {"settle_s": round(time.monotonic() - started, 1)}
    if alive and server:
        print(f"  {server.name} still busy after {SETTLE_TIMEOUT:.0f} s: restarting it", flush=True)
        await asyncio.to_thread(server.stop)
        await asyncio.to_thread(server.start)
    return {"settle_s": round(time.monotonic() - started, 1), "restarted": alive}


def describe(name: str, level: int, result: dict[str, Any]) -> str:
    server = result.get("server") or {}
    ping = result.get("ping") or {}
    parts = [
        f"  {name:<22} {level:>6,} clients: {result['runs_per_s']:>7,.1f} runs/s",
        f"added p50 {result['added_p50_ms']} p99 {result['added_p99_ms']} ms",
        f"1st token +{result['first_token_added_p50_ms']} ms",
        f"errors {result['errors']:,} refused {result['refused']:,}",
    ]
    if server:
        parts.append(
            f"RSS {server.get('rss_peak_mb')} MB CPU {server.get('cpu_ms_per_run')} ms/run"
        )
    if ping:
        parts.append(f"/ping p99 {ping['p99_ms']} ms")
    if result["listen_overflows"]:
        parts.append(f"listen queue overflows {result['listen_overflows']:,}")
    return ", ".join(parts)


# --- the run --------------------------------------------------------------------------------


async def run_levels(args: argparse.Namespace, mock: Process, servers: dict[str, Process]
                     ) -> dict[str, dict[int, Any]]:  # fmt: skip
    results: dict[str, dict[int, Any]] = {"model": {}, **{name: {} for name in servers}}
    targets = {
        name: langgraph_target(s.url) if name == "langgraph" else agentflow_target(s.url)
        for name, s in servers.items()
    }
    for level in args.levels:
        print(f"{level:,} concurrent runs", flush=True)
        result = await measure(model_target(mock.url, MODEL_NAME), level, args, None, None)
        result.update(await settle(mock, None))
        results["model"][level] = result
        print(describe("model alone", level, result), flush=True)
        for name, server in servers.items():
            if server.proc is None or server.proc.poll() is not None:
                results[name][level] = None
                print(f"  {name}: the server is gone (see {server.log})", flush=True)
                continue
            ping = "/ok" if name == "langgraph" else "/ping"
            result = await measure(targets[name], level, args, server, ping)
            result.update(await settle(mock, server))
            results[name][level] = result
            print(describe(server.name, level, result), flush=True)
    return results


def make_servers(args: argparse.Namespace, tmp: Path, mock_url: str) -> dict[str, Process]:
    servers: dict[str, Process] = {}
    for kind in args.checkpointers:
        servers[kind] = agentflow_server(
            tmp, kind, checkpointer_config(kind, args, PG_SCHEMA), mock_url
        )
    if not args.no_langgraph:
        venv = ensure_langgraph_venv(LANGGRAPH_VENV)
        servers["langgraph"] = langgraph_server(tmp, venv, args.langgraph_jobs, mock_url)
    return servers


def print_tables(args: argparse.Namespace, results: dict[str, dict[int, Any]]) -> None:
    langgraph = results.get("langgraph", {})
    for kind in args.checkpointers:
        print(f"\n### {kind} checkpointer (mock: {args.deltas} deltas over "
              f"{args.model_duration:g} s; {args.duration:g} s a level)\n")  # fmt: skip
        print(markdown_table(table_rows(args.levels, results[kind], langgraph, results["model"])))
    lines = [line for name, r in results.items() for line in error_lines(name, r)]
    if lines:
        print("\nerrors by kind (runs that ended after the warm-up):")
        print("\n".join(lines))


def code_version() -> dict[str, Any]:
    """The commit served, and the server files that differed from it (a dirty tree)."""
    root = BENCH.parent

    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=root, capture_output=True, text=True)
        return done.stdout.strip()

    changed = git("status", "--porcelain", "--", "runtime", "agentflow_cli").splitlines()
    return {"commit": git("rev-parse", "HEAD"), "uncommitted": [line[3:] for line in changed]}


def run_servers(
    prefix: str,
    deltas: int,
    model_duration: float,
    make: Callable[[Path, str], dict[str, Process]],
    levels: Callable[[Process, dict[str, Process]], Coroutine[Any, Any, dict[str, dict[int, Any]]]],
    *,
    cleanup: Callable[[], object] = lambda: None,
    keep_logs: Path | None = None,
) -> dict[str, dict[int, Any]]:
    """Start the mock model and the servers `make` builds (in a temporary directory), run
    `levels` against them, and stop every one by PID, also on Ctrl-C or an error; then
    `cleanup` (a Postgres schema), and the servers' logs copied to `keep_logs`."""
    with tempfile.TemporaryDirectory(prefix=prefix) as name:
        tmp = Path(name)
        mock = mock_model(tmp, deltas, model_duration)
        servers: dict[str, Process] = {}
        try:
            mock.start()
            servers = make(tmp, mock.url)
            for server in servers.values():
                server.start()
            return asyncio.run(levels(mock, servers))
        except KeyboardInterrupt:
            print("interrupted: stopping what was started", file=sys.stderr)
            sys.exit(130)
        finally:
            for process in [*servers.values(), mock]:
                process.stop()
            cleanup()
            if keep_logs is not None:
                keep_logs.mkdir(parents=True, exist_ok=True)
                for server in servers.values():
                    if server.log.exists():
                        shutil.copy(server.log, keep_logs / server.log.name)


def write_report(
    args: argparse.Namespace, results: dict[str, dict[int, Any]], **extra: Any
) -> None:
    """The run as JSON at args.json: code version, machine, options, `extra`, results."""
    report = {
        "code": code_version(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version(), "loadavg": os.getloadavg()},
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        **extra,
        "results": {name: {str(level): r for level, r in by_level.items()}
                    for name, by_level in results.items()},
    }  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.json}")


def main() -> None:
    args = parse_args()
    raise_nofile_limit()
    postgres = any(kind.startswith("postgres") for kind in args.checkpointers)
    results = run_servers(
        "agentflow-capacity-", args.deltas, args.model_duration,
        lambda tmp, mock_url: make_servers(args, tmp, mock_url),
        lambda mock, servers: run_levels(args, mock, servers),
        cleanup=lambda: drop_pg_schema(args.pg_dsn, PG_SCHEMA) if postgres else None,
    )  # fmt: skip
    print_tables(args, results)
    write_report(args, results)


if __name__ == "__main__":
    main()
