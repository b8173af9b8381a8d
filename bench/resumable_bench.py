"""Resumable streams: events/s and time to first event through a run's RunLog, one run.

    .venv/bin/python bench/resumable_bench.py [--levels 1,50,200] [--deltas 200]
        [--interval 0.01] [--duration 6] [--redis] [--pg-dsn URL]
        [--json bench/results/resumable_bench.json] [--logs DIR]

Needs Postgres (`make services`). Started here, all on 127.0.0.1 and stopped by PID at the
end: three `agentflow api` servers (one worker each, LOG_LEVEL=WARNING) serving a one-node
graph whose node sends `--deltas` token deltas (`emit_delta`, each carrying the server's
wall clock), one every `--interval` seconds (each at its own deadline from the node's
start, so a busy loop delays deltas but does not stretch the stream), then the whole
answer: `memory` (memory checkpointer), and `pg-A`, `pg-B` on one Postgres schema made for
this run and dropped at the end (with `--redis`, both also on Redis; frames never go
through Redis: it only holds thread locks and stop signals).

Scenarios, each at every level C (concurrent streams):
- direct: POST /v1/graph/stream on `memory`, read to the `end` event (the baseline);
- resumable: POST /v1/threads/{id}/runs on `memory` (202: a background run), then GET
  .../runs/{run_id}/stream on the same server (its in-memory RunLog);
- reconnect: POST /v1/graph/stream on `memory`, read half the deltas, drop the connection,
  GET the stream_url with Last-Event-ID = the last id read;
- pg direct: as direct, on `pg-A` (every streamed run there also copies its frames into
  Postgres: FrameWriter), the baseline of the two below;
- pg same worker: as resumable, started and read on `pg-A`;
- pg cross-worker: started on `pg-A` (POST .../runs), read on `pg-B` (GET .../stream):
  B polls the frames A copies into Postgres (follow_stored, every 0.1 s).

Load: C aiohttp clients (one ClientSession, TCPConnector(limit=0)) in a closed loop, each
starting its next stream when the last one ended, on a new thread each; client i starts at
i/C of a stream's length, so the streams do not start and end in lockstep. A warm-up of one
stream's length, then `--duration` seconds measured; streams still going then finish.

Reported per scenario and level: SSE events delivered to clients per second (frames
received inside the measured window, all clients), time to first event (from the first
request of a stream to its first complete frame: the POST for direct and reconnect, the
POST .../runs for the others) and to the first delta, p50/p95; delivery lag of deltas
(the client's wall clock on receipt minus the server's when the node emitted it), p50/p99;
for GET-read streams the attach time (GET sent to its first frame; for reconnect: the
resume); gaps and duplicates (every stream's ids must be 1..n once each, in order, ending
with `end`, with every delta), errors by kind; server CPU ms per stream (all servers the
scenario uses), cores the bench client and the whole machine used. Ratios are against the
direct path of the same run (memory scenarios against direct, pg ones against pg direct).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH / "capacity")]

from http_bench import cpu_seconds, drop_pg_schema, free_port, percentile  # noqa: E402
from mock_model import raise_nofile_limit  # noqa: E402
from processes import BIN, Process, clean_env  # noqa: E402

PG_SCHEMA = f"bench_resumable_{os.getpid()}"
SETTLE_TIMEOUT = 30.0
# What a worker logs when it takes over a run it believes nobody runs (background.py).
TAKEOVER = b"took over run"
RUN_TIMEOUT = 120.0  # seconds a client waits for one stream
JSON_HEADERS = {"Content-Type": "application/json"}
SSE_HEADERS = {"Accept": "text/event-stream"}
MESSAGES = [{"role": "user", "content": "hello"}]

GRAPH_MODULE = '''
import asyncio
import os
import time

from agentflow.graph import END, START, AgentState, Message, StateGraph, emit_delta

DELTAS = int(os.environ["RBENCH_DELTAS"])
INTERVAL = float(os.environ["RBENCH_INTERVAL"])
TOKEN = "tok "


async def talk(state: AgentState) -> Message:
    """DELTAS token deltas, one every INTERVAL seconds, each at its own deadline from the
    start (a busy loop delays them but does not stretch the stream), then the answer."""
    message_id = f"m-{time.monotonic_ns()}"
    start = time.monotonic()
    for i in range(DELTAS):
        await asyncio.sleep(max(0.0, start + (i + 1) * INTERVAL - time.monotonic()))
        emit_delta(TOKEN, message_id=message_id, data={"t": time.time()})
    return Message.assistant(TOKEN * DELTAS)


graph = StateGraph()
graph.add_node("talk", talk)
graph.add_edge(START, "talk")
graph.add_edge("talk", END)
app = graph.compile()
'''

# scenario -> (server that starts the run, server the client reads, how, its baseline)
SCENARIOS: dict[str, tuple[str, str, str, str]] = {
    "direct": ("memory", "memory", "direct", "direct"),
    "resumable": ("memory", "memory", "background", "direct"),
    "reconnect": ("memory", "memory", "reconnect", "direct"),
    "pg direct": ("pg-A", "pg-A", "direct", "pg direct"),
    "pg same worker": ("pg-A", "pg-A", "background", "pg direct"),
    "pg cross-worker": ("pg-A", "pg-B", "background", "pg direct"),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--levels", default="1,50,200", help="concurrent streams")
    parser.add_argument("--deltas", type=int, default=200, help="token deltas a stream")
    parser.add_argument("--interval", type=float, default=0.01, help="seconds between deltas")
    parser.add_argument("--duration", type=float, default=6.0, help="measured seconds a level")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated")
    parser.add_argument("--redis", action="store_true", help="pg-A and pg-B also on Redis")
    parser.add_argument("--pg-dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--json", type=Path, default=BENCH / "results/resumable_bench.json")
    parser.add_argument("--logs", type=Path, help="copy the servers' logs into this directory")
    args = parser.parse_args()
    try:
        args.levels = [int(x) for x in args.levels.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--levels takes comma-separated integers, got {args.levels!r}")
    args.scenarios = [x.strip() for x in args.scenarios.split(",") if x.strip()]
    unknown = sorted(set(args.scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario {unknown[0]!r}; known: {', '.join(SCENARIOS)}")
    if not args.levels or min(args.levels) < 1 or args.duration <= 0:
        parser.error("--levels must be positive and --duration > 0")
    if args.deltas < 2 or args.interval < 0:
        parser.error("--deltas must be >= 2 and --interval >= 0")
    return args


# --- one stream, as a client sees it ---------------------------------------------------------


@dataclass
class Window:
    """The clock of one measurement and what clients received inside it."""

    t0: float
    t_end: float
    events: int = 0
    lags: list[float] = field(default_factory=list)

    def inside(self, now: float) -> bool:
        return self.t0 <= now < self.t_end


@dataclass(slots=True)
class Stream:
    started: float
    first_event: float | None = None  # seconds after `started`
    first_delta: float | None = None
    attach_sent: float | None = None  # when the GET of the stream was sent
    attach: float | None = None  # seconds from `attach_sent` to its first frame
    ended: float = 0.0
    ids: list[int] = field(default_factory=list)
    deltas: int = 0
    end_seen: bool = False
    error: str = ""
    stream_url: str = ""


def on_frame(frame: bytes, stream: Stream, window: Window, now: float, wall: float) -> None:
    event = data = b""
    event_id = None
    for line in frame.split(b"\n"):
        if line.startswith(b"id:"):
            event_id = int(line[3:])
        elif line.startswith(b"event:"):
            event = line[6:].strip()
        elif line.startswith(b"data:"):
            data = line[5:].strip()
    if not event:
        return  # a heartbeat comment
    if stream.first_event is None:
        stream.first_event = now - stream.started
    if stream.attach_sent is not None and stream.attach is None:
        stream.attach = now - stream.attach_sent
    if event_id is not None:
        stream.ids.append(event_id)
    inside = window.inside(now)
    if inside:
        window.events += 1
    if event == b"delta":
        stream.deltas += 1
        if stream.first_delta is None:
            stream.first_delta = now - stream.started
        if inside:
            window.lags.append(wall - json.loads(data)["t"])
    elif event == b"metadata":
        stream.stream_url = json.loads(data)["stream_url"]
    elif event == b"end":
        stream.end_seen = True
    elif event == b"error" and not stream.error:
        stream.error = f"SSE error {json.loads(data).get('code')}"


async def consume(
    response: aiohttp.ClientResponse, stream: Stream, window: Window, until_deltas: int = 0
) -> None:
    """Read SSE frames to the end of the response (or until `until_deltas` deltas)."""
    if response.status != 200:
        stream.error = f"HTTP {response.status} on {response.method} {response.url.path}"
        return
    buffer = b""
    async for chunk in response.content.iter_any():
        now, wall = time.perf_counter(), time.time()
        *frames, buffer = (buffer + chunk).split(b"\n\n")
        for frame in frames:
            on_frame(frame, stream, window, now, wall)
        if until_deltas and stream.deltas >= until_deltas:
            return


async def direct(session: aiohttp.ClientSession, start: str, read: str, window: Window,
                 deltas: int) -> Stream:  # fmt: skip
    stream = Stream(time.perf_counter())
    body = {"messages": MESSAGES, "thread_id": f"rb-{uuid.uuid4().hex}"}
    async with session.post(start + "/v1/graph/stream", json=body, headers=SSE_HEADERS) as r:
        await consume(r, stream, window)
    return stream


async def background(session: aiohttp.ClientSession, start: str, read: str, window: Window,
                     deltas: int) -> Stream:  # fmt: skip
    stream = Stream(time.perf_counter())
    thread_id = f"rb-{uuid.uuid4().hex}"
    url = f"{start}/v1/threads/{thread_id}/runs"
    async with session.post(url, json={"messages": MESSAGES}, headers=JSON_HEADERS) as r:
        if r.status != 202:
            stream.error = f"HTTP {r.status} on POST .../runs"
            return stream
        run_id = (await r.json())["run_id"]
    stream.attach_sent = time.perf_counter()
    url = f"{read}/v1/threads/{thread_id}/runs/{run_id}/stream"
    async with session.get(url, headers=SSE_HEADERS) as r:
        await consume(r, stream, window)
    return stream


async def reconnect(session: aiohttp.ClientSession, start: str, read: str, window: Window,
                    deltas: int) -> Stream:  # fmt: skip
    stream = Stream(time.perf_counter())
    body = {"messages": MESSAGES, "thread_id": f"rb-{uuid.uuid4().hex}"}
    async with session.post(start + "/v1/graph/stream", json=body, headers=SSE_HEADERS) as r:
        await consume(r, stream, window, until_deltas=deltas // 2)
        r.close()  # drop the connection mid-stream (not returned to the pool)
    if stream.error or stream.end_seen or not stream.ids:
        return stream
    headers = {**SSE_HEADERS, "Last-Event-ID": str(stream.ids[-1])}
    stream.attach_sent = time.perf_counter()
    async with session.get(read + stream.stream_url, headers=headers) as r:
        await consume(r, stream, window)
    return stream


Reader = Callable[[aiohttp.ClientSession, str, str, Window, int], Awaitable[Stream]]
READERS: dict[str, Reader] = {"direct": direct, "background": background, "reconnect": reconnect}


async def one_stream(reader: Reader, session: aiohttp.ClientSession, start: str, read: str,
                     window: Window, deltas: int) -> Stream:  # fmt: skip
    started = time.perf_counter()
    try:
        stream = await reader(session, start, read, window, deltas)
    except TimeoutError:
        stream = Stream(started, error=f"timeout ({RUN_TIMEOUT:.0f} s, client)")
    except aiohttp.ClientError as exc:
        stream = Stream(started, error=f"connection {type(exc).__name__}")
    stream.ended = time.perf_counter()
    return stream


def check(stream: Stream, deltas: int) -> tuple[int, int, str]:
    """(missing ids, duplicate ids, what else is wrong) of a finished stream."""
    seen = Counter(stream.ids)
    top = max(seen, default=0)
    missing = sum(1 for i in range(1, top + 1) if i not in seen)
    duplicates = sum(n - 1 for n in seen.values())
    if stream.error:
        return missing, duplicates, stream.error
    if not stream.end_seen:
        return missing, duplicates, "no end event"
    if stream.ids != sorted(stream.ids):
        return missing, duplicates, "ids out of order"
    if stream.deltas != deltas:
        return missing, duplicates, f"{stream.deltas} deltas, not {deltas}"
    return missing, duplicates, ""


# --- one measurement -------------------------------------------------------------------------


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores, /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def cpu_reading(pids: list[int]) -> tuple[float, float, float, list[float]]:
    """(time, machine busy s, this process's CPU s, each server's CPU s)."""
    return time.perf_counter(), machine_busy(), time.process_time(), [cpu_seconds(p) for p in pids]


async def measure(scenario: str, level: int, servers: dict[str, Process],
                  args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    start_name, read_name, how, _ = SCENARIOS[scenario]
    reader = READERS[how]
    start, read = servers[start_name].url, servers[read_name].url
    pids = sorted({servers[start_name].pid, servers[read_name].pid})
    length = args.deltas * args.interval  # of one stream, at the node's pace
    warmup = max(length, 0.5)
    now = time.perf_counter()
    window = Window(now + warmup, now + warmup + args.duration)
    streams: list[Stream] = []
    readings: list[tuple[float, float, float, list[float]]] = []

    async def client(i: int, session: aiohttp.ClientSession) -> None:
        await asyncio.sleep(i / level * length)
        while time.perf_counter() < window.t_end:
            streams.append(await one_stream(reader, session, start, read, window, args.deltas))

    async def clock() -> None:
        for boundary in (window.t0, window.t_end):
            await asyncio.sleep(max(0.0, boundary - time.perf_counter()))
            readings.append(cpu_reading(pids))

    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=RUN_TIMEOUT)  # a request, not the session
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(clock(), *(client(i, session) for i in range(level)))
    (t0, busy0, own0, cpu0), (t1, busy1, own1, cpu1) = readings
    seconds = t1 - t0
    inside = [s for s in streams if window.t0 <= s.started < window.t_end]
    done_inside = [s for s in streams if t0 <= s.ended <= t1]
    checks = [check(s, args.deltas) for s in streams]
    problems = Counter(problem for _, _, problem in checks if problem)

    def ms(values: list[float | None], pct: float) -> float | None:
        present = [v for v in values if v is not None]
        return round(percentile(present, pct) * 1000, 1) if present else None

    server_cpu = sum(cpu1) - sum(cpu0)
    return {
        "scenario": scenario,
        "level": level,
        "streams": len(streams),
        "streams_started_in_window": len(inside),
        "streams_ended_in_window": len(done_inside),
        "events": window.events,
        "events_per_s": round(window.events / seconds, 1),
        # what the node emits at its pace (every frame of a stream, over its length)
        "offered_events_per_s": round(level * args.frames / length, 1) if length else None,
        "first_event_p50_ms": ms([s.first_event for s in inside], 50),
        "first_event_p95_ms": ms([s.first_event for s in inside], 95),
        "first_delta_p50_ms": ms([s.first_delta for s in inside], 50),
        "first_delta_p95_ms": ms([s.first_delta for s in inside], 95),
        "attach_p50_ms": ms([s.attach for s in inside], 50),
        "attach_p95_ms": ms([s.attach for s in inside], 95),
        "lag_p50_ms": ms(list(window.lags), 50),
        "lag_p99_ms": ms(list(window.lags), 99),
        "stream_p50_s": round(percentile([s.ended - s.started for s in inside], 50), 3)
        if inside
        else None,
        "missing_ids": sum(m for m, _, _ in checks),
        "duplicate_ids": sum(d for _, d, _ in checks),
        "failed_streams": sum(problems.values()),
        "problems": dict(problems),
        "server_cpu_ms_per_stream": round(server_cpu / len(done_inside) * 1000, 2)
        if done_inside
        else None,
        "server_cores": round(server_cpu / seconds, 2),
        "client_cores": round((own1 - own0) / seconds, 2),
        "machine_cores": round((busy1 - busy0) / seconds, 2),
    }


async def settle(servers: list[Process]) -> float:
    """Wait until the servers are idle (runs whose client left may still be going)."""
    started = time.monotonic()
    while time.monotonic() - started < SETTLE_TIMEOUT:
        before = [cpu_seconds(s.pid) for s in servers]
        await asyncio.sleep(0.5)
        busy = max(cpu_seconds(s.pid) - b for s, b in zip(servers, before, strict=True))
        if busy / 0.5 < 0.05:
            break
    return round(time.monotonic() - started, 1)


async def run_all(args: argparse.Namespace, servers: dict[str, Process]) -> list[dict[str, Any]]:
    await smoke(servers, args)
    results = []
    for k, level in enumerate(args.levels):
        print(f"{level:,} concurrent streams", flush=True)
        # the order rotates by level, so no scenario always runs first
        order = (
            args.scenarios[k % len(args.scenarios) :] + args.scenarios[: k % len(args.scenarios)]
        )
        for scenario in order:
            logged = {name: s.log.stat().st_size for name, s in servers.items()}
            result = await measure(scenario, level, servers, args)
            result["settle_s"] = await settle(list(servers.values()))
            result["takeovers"] = sum(
                count_in_log(servers[name].log, offset, TAKEOVER) for name, offset in logged.items()
            )
            results.append(result)
            print(describe(result), flush=True)
    return sorted(results, key=lambda r: (r["level"], args.scenarios.index(r["scenario"])))


def count_in_log(log: Path, offset: int, text: bytes) -> int:
    """Lines of `log` after byte `offset` that contain `text`."""
    with log.open("rb") as f:
        f.seek(offset)
        return sum(1 for line in f if text in line)


async def smoke(servers: dict[str, Process], args: argparse.Namespace) -> None:
    """One stream of each scenario, checked, before anything is measured; `args.frames`:
    the frames a stream has."""
    far = time.perf_counter() + 3600
    window = Window(far, far)
    async with aiohttp.ClientSession() as session:
        for scenario in args.scenarios:
            start_name, read_name, how, _ = SCENARIOS[scenario]
            stream = await one_stream(
                READERS[how], session, servers[start_name].url, servers[read_name].url,
                window, args.deltas,
            )  # fmt: skip
            missing, duplicates, problem = check(stream, args.deltas)
            if problem or missing or duplicates:
                raise RuntimeError(
                    f"{scenario}: a single stream failed its check ({problem or 'ids'}: "
                    f"{missing} missing, {duplicates} duplicated); see the server logs"
                )
            args.frames = len(stream.ids)


def describe(r: dict[str, Any]) -> str:
    parts = [
        f"  {r['scenario']:<16} {r['level']:>4}: {r['events_per_s']:>9,.0f} events/s",
        f"first event p50 {r['first_event_p50_ms']} ms p95 {r['first_event_p95_ms']} ms",
        f"lag p50 {r['lag_p50_ms']} p99 {r['lag_p99_ms']} ms",
        f"{r['streams']} streams, {r['failed_streams']} failed",
        f"gaps {r['missing_ids']} dups {r['duplicate_ids']} takeovers {r['takeovers']}",
        f"server {r['server_cpu_ms_per_stream']} ms/stream ({r['server_cores']} cores)",
        f"client {r['client_cores']} machine {r['machine_cores']} cores",
    ]
    if r["attach_p50_ms"] is not None:
        parts.insert(2, f"attach p50 {r['attach_p50_ms']} ms")
    return ", ".join(parts)


# --- the table -------------------------------------------------------------------------------


def with_ratios(results: list[dict[str, Any]]) -> None:
    """Each result's events/s and first event p50 against its baseline at the same level."""
    by_key = {(r["scenario"], r["level"]): r for r in results}
    for r in results:
        base = by_key.get((SCENARIOS[r["scenario"]][3], r["level"]))
        r["events_ratio"] = r["first_event_ratio"] = None
        if base is None:
            continue
        if base["events_per_s"]:
            r["events_ratio"] = round(r["events_per_s"] / base["events_per_s"], 3)
        if base["first_event_p50_ms"] and r["first_event_p50_ms"] is not None:
            r["first_event_ratio"] = round(r["first_event_p50_ms"] / base["first_event_p50_ms"], 2)


def markdown_table(results: list[dict[str, Any]]) -> str:
    head = [
        "scenario", "streams", "events/s", "vs direct", "1st event p50", "p95", "vs direct",
        "1st delta p50", "attach p50", "lag p50", "lag p99", "gaps / dups / failed",
        "takeovers",
        "server CPU ms/stream", "client cores", "machine cores",
    ]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def num(value: Any, unit: str = "", digits: int = 1) -> str:
        if value is None:
            return "-"
        return f"{value:,.{digits}f}{unit}"

    for r in results:
        cells = [
            r["scenario"], str(r["level"]), num(r["events_per_s"], digits=0),
            num(r["events_ratio"], "x", 2), num(r["first_event_p50_ms"], " ms"),
            num(r["first_event_p95_ms"], " ms"), num(r["first_event_ratio"], "x", 2),
            num(r["first_delta_p50_ms"], " ms"), num(r["attach_p50_ms"], " ms"),
            num(r["lag_p50_ms"], " ms"), num(r["lag_p99_ms"], " ms"),
            f"{r['missing_ids']} / {r['duplicate_ids']} / {r['failed_streams']}",
            str(r["takeovers"]),
            num(r["server_cpu_ms_per_stream"], digits=2), num(r["client_cores"], digits=2),
            num(r["machine_cores"], digits=2),
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --- the servers and the run -----------------------------------------------------------------


def make_servers(tmp: Path, args: argparse.Namespace) -> dict[str, Process]:
    pg: dict[str, Any] = {"kind": "postgres", "dsn": args.pg_dsn, "schema": PG_SCHEMA}
    if args.redis:
        pg["redis"] = args.redis_url
    needed = {name for s in args.scenarios for name in SCENARIOS[s][:2]}
    servers = {}
    for name, checkpointer in (("memory", "memory"), ("pg-A", pg), ("pg-B", pg)):
        if name not in needed:
            continue
        project = tmp / name
        project.mkdir()
        (project / "rbench_graph.py").write_text(GRAPH_MODULE.lstrip())
        config = project / "agentflow.json"
        config.write_text(json.dumps({"graph": "rbench_graph:app", "checkpointer": checkpointer}))
        port = free_port()
        argv = [str(BIN / "agentflow"), "api", "--config", str(config), "--port", str(port)]
        env = clean_env(
            LOG_LEVEL="WARNING", RBENCH_DELTAS=str(args.deltas), RBENCH_INTERVAL=str(args.interval)
        )
        servers[name] = Process(name, argv, env, project, port, tmp / f"{name}.log", "/ping")
    return servers


def code_version() -> dict[str, Any]:
    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=BENCH, capture_output=True, text=True)
        return done.stdout.strip()

    changed = git("status", "--porcelain", "--", "../runtime").splitlines()
    return {"commit": git("rev-parse", "HEAD"), "uncommitted": [line[3:] for line in changed]}


def main() -> None:
    args = parse_args()
    raise_nofile_limit()
    started = time.monotonic()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="agentflow-resumable-bench-") as name:
        tmp = Path(name)
        servers = make_servers(tmp, args)
        try:
            for server in servers.values():  # one at a time: the first migrates the schema
                server.start()
            results = asyncio.run(run_all(args, servers))
        except KeyboardInterrupt:
            print("interrupted: stopping what was started", file=sys.stderr)
            sys.exit(130)
        finally:
            for server in servers.values():
                server.stop()
                if args.logs is not None:
                    args.logs.mkdir(parents=True, exist_ok=True)
                    shutil.copy(server.log, args.logs / server.log.name)
            if "pg-A" in servers:
                drop_pg_schema(args.pg_dsn, PG_SCHEMA)
    with_ratios(results)
    length = args.deltas * args.interval
    print(f"\n### resumable streams ({args.deltas} deltas every {args.interval:g} s, "
          f"{length:g} s a stream; {args.duration:g} s measured a level"
          f"{'; pg servers on Redis' if args.redis else ''})\n")  # fmt: skip
    print(markdown_table(results))
    report = {
        "benchmark": "resumable_bench",
        "code": code_version(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version(), "loadavg": os.getloadavg()},
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "wall_s": round(time.monotonic() - started, 1),
        "results": results,
    }  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.json} ({report['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
