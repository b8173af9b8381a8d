"""HTTP overhead: the agentflow API server next to a bare Starlette+uvicorn app, one run.

    .venv/bin/python bench/http_bench.py [--duration 10] [--sse-n 300]
                                         [--json bench/results/http_bench.json]

Needs wrk (`apt-get update && apt-get install -y wrk`). Every server is a subprocess started
here, on 127.0.0.1, one worker, with the same uvicorn options: agentflow through its real
CLI (`agentflow api --config DIR/agentflow.json`, LOG_LEVEL=WARNING), which runs uvicorn
with loop/http "auto" (uvloop + httptools when installed); the bare app under
`python -m uvicorn` with the options `agentflow.runtime.server.serve` passes, and the same
loop and HTTP parser (checked in /proc/PID/maps). All of them are killed by PID at the end.

Measured, each next to the bare app:
- POST /v1/graph/invoke on a one-node echo graph (memory, SQLite, Postgres with and without
  Redis checkpointers), against
  a bare POST route that parses the same JSON body and returns a JSON echo: wrk
  `-t2 -c16 -d{duration}s --latency`, Requests/sec and the 50%/99% latency lines. Every
  invoke starts a new thread, as a server does for new chats.
- GET /ping, against a bare GET route returning {"status":"ok"}.
- SSE time to first event: sequential streams over a raw asyncio socket client (one new TCP
  connection per stream, connected before the clock starts): from sending POST
  /v1/graph/stream to holding the first complete `event:` frame; the bare server streams a
  tiny SSE StreamingResponse. Time to first byte and to the end of the stream are recorded
  too. Each stream is read to its end before the next starts.
- Idle RSS (VmRSS in /proc/PID/status) of each server process after startup and one /ping.

wrk and the servers share the machine's cores; both sides get the same treatment. Targets
(from the issue): invoke (memory) >= 30% of bare throughput; SSE first event p95 < 5 ms;
idle RSS < 80 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
INVOKE_BODY = {"messages": [{"role": "user", "content": "hello"}]}
WRK_INSTALL = "apt-get update && apt-get install -y wrk"
# The options agentflow.runtime.server.serve passes to uvicorn, as uvicorn CLI flags.
BARE_UVICORN_OPTIONS = [
    *("--host", "127.0.0.1", "--workers", "1", "--lifespan", "on", "--log-level", "warning"),
    *("--no-access-log", "--no-server-header", "--proxy-headers", "--timeout-keep-alive", "5"),
    *("--forwarded-allow-ips", "127.0.0.1"),
]

GRAPH_MODULE = """
from agentflow.graph import END, START, AgentState, Message, StateGraph


async def echo(state: AgentState) -> Message:
    return Message.assistant(state.context[-1].text)


graph = StateGraph()
graph.add_node("echo", echo)
graph.add_edge(START, "echo")
graph.add_edge("echo", END)
app = graph.compile()
"""

BARE_MODULE = """
import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


async def ping(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def invoke(request: Request) -> Response:
    body = json.loads(await request.body())
    text = body["messages"][-1]["content"]
    return JSONResponse({"messages": [{"role": "assistant", "content": text}]})


async def stream(request: Request) -> Response:
    body = json.loads(await request.body())
    text = body["messages"][-1]["content"]

    async def events():
        yield b'event: message\\ndata: ' + json.dumps({"content": text}).encode() + b'\\n\\n'
        yield b'event: end\\ndata: {}\\n\\n'

    return StreamingResponse(events(), media_type="text/event-stream")


app = Starlette(routes=[
    Route("/ping", ping, methods=["GET"]),
    Route("/v1/graph/invoke", invoke, methods=["POST"]),
    Route("/v1/graph/stream", stream, methods=["POST"]),
])
"""

WRK_POST = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def uvicorn_impl() -> tuple[str, str]:
    """What uvicorn's "auto" picks, made explicit for the bare server."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return loop, http


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loaded_impl(pid: int) -> dict[str, bool]:
    """Which native event loop / HTTP parser the server process really loaded."""
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {"uvloop": "/uvloop/" in maps, "httptools": "/httptools/" in maps}


def stop_process(proc: subprocess.Popen[Any] | None, grace: float) -> None:
    """SIGTERM a process this script started, SIGKILL it after `grace` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@dataclass
class Server:
    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    startup_s: float = 0.0
    idle_rss_mb: float = 0.0
    impl: dict[str, bool] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        out = self.log.open("wb")
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            self.argv, env=self.env, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT
        )
        out.close()
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.log.read_text()}"
                )
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not answer /ping:\n{self.log.read_text()}")
            time.sleep(0.02)
        self.startup_s = time.perf_counter() - started
        time.sleep(1.0)  # let startup garbage settle before reading RSS
        self.idle_rss_mb = rss_mb(self.proc.pid)
        self.impl = loaded_impl(self.proc.pid)

    def stop(self) -> None:
        stop_process(self.proc, grace=10)


def post_json(url: str, body: Any) -> Any:
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


# --- wrk --------------------------------------------------------------------------------

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def parse_wrk(output: str) -> dict[str, Any]:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rps is None:
        raise RuntimeError(f"cannot parse wrk output:\n{output}")
    latency = {
        pct: float(value) * UNITS[unit]
        for pct, value, unit in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
    }
    total = re.search(r"(\d+) requests in", output)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    busy = re.search(r"409 thread busy: (\d+)", output)
    socket_errors = re.search(r"Socket errors:(.*)", output)
    return {
        "requests_per_s": float(rps.group(1)),
        "p50_ms": latency.get("50"),
        "p99_ms": latency.get("99"),
        "requests": int(total.group(1)) if total else None,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "thread_busy_409": int(busy.group(1)) if busy else None,
        "socket_errors": socket_errors.group(1).strip() if socket_errors else None,
    }


def wrk(url: str, duration: int, script: Path | None) -> dict[str, Any]:
    argv = ["wrk", "-t2", "-c16", f"-d{duration}s", "--latency", "--timeout", "10s"]
    if script is not None:
        argv += ["-s", str(script)]
    done = subprocess.run([*argv, url], capture_output=True, text=True, timeout=duration + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr}{done.stdout}")
    result = parse_wrk(done.stdout)
    if result["non_2xx"] or result["socket_errors"]:
        print(f"  warning: {url}: {result['non_2xx']} non-2xx, socket errors "
              f"{result['socket_errors']}", file=sys.stderr)  # fmt: skip
    return result


def load(server: Server, path: str, duration: int, warmup: int, script: Path | None) -> Any:
    url = server.url + path
    if warmup > 0:
        wrk(url, warmup, script)
    assert server.proc is not None
    cpu_before = cpu_seconds(server.proc.pid)
    result = wrk(url, duration, script)
    cpu = cpu_seconds(server.proc.pid) - cpu_before
    result["server_cpu_us_per_request"] = round(cpu / max(1, result["requests"] or 0) * 1e6, 1)
    result["server_cpu_share"] = round(cpu / duration, 2)  # 1.0 = one core busy all along
    print(
        f"  {server.name:<18} {path:<18} {result['requests_per_s']:>9,.0f} req/s  "
        f"p50 {result['p50_ms']:.2f} ms  p99 {result['p99_ms']:.2f} ms  "
        f"server CPU {result['server_cpu_us_per_request']:.0f} us/req "
        f"({result['server_cpu_share']:.2f} cores)",
        flush=True,
    )
    return result


# --- paired comparisons (used by ratelimit_bench.py) -------------------------------------


@contextmanager
def running(servers: dict[str, Server]) -> Iterator[dict[str, Server]]:
    """Start every server of a comparison group; stop all of them on the way out."""
    try:
        for server in servers.values():
            server.start()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def compare(
    servers: dict[str, Server],
    path: str,
    rounds: int,
    duration: int,
    warmup: int,
    script: Path | None,
    settle: Callable[[], None] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Load every (already started) server once per round, in an order rotating by round.

    Round k starts with server k mod n, so no variant always runs first (or right after
    the same neighbour). The warm-up runs only in the first round. `settle` runs after
    each load (e.g. until a server's background work is done, so it cannot steal CPU from
    the next one). Returns each server's
    `load` results, one per round, in round order, each tagged with its round and its
    position inside the round.
    """
    keys = list(servers)
    results: dict[str, list[dict[str, Any]]] = {key: [] for key in keys}
    for k in range(rounds):
        start = k % len(keys)
        order = keys[start:] + keys[:start]
        names = " -> ".join(servers[key].name for key in order)
        print(f"  round {k + 1}/{rounds}: {names}", flush=True)
        for position, key in enumerate(order):
            result = load(servers[key], path, duration, warmup if k == 0 else 0, script)
            result["round"] = k
            result["position"] = position
            results[key].append(result)
            if settle is not None:
                settle()
    return results


def paired_overhead(
    off_rounds: list[dict[str, Any]], on_rounds: list[dict[str, Any]]
) -> dict[str, Any]:
    """Overhead of "on" against "off", paired round by round, summarised over the rounds.

    Per round: throughput overhead 1 - on/off (req/s) and CPU overhead on/off - 1 (server
    CPU us per request), both against the off run of the same round. Reported: the median
    over rounds with min and max, the per-round values, and the median req/s, CPU/request
    and p99 of each side.
    """
    if len(off_rounds) != len(on_rounds) or not off_rounds:
        raise ValueError(f"need the same, non-zero number of rounds: {len(off_rounds)} off, "
                         f"{len(on_rounds)} on")  # fmt: skip
    pairs = list(zip(off_rounds, on_rounds, strict=True))
    throughput = [1 - on["requests_per_s"] / off["requests_per_s"] for off, on in pairs]
    cpu = [
        on["server_cpu_us_per_request"] / off["server_cpu_us_per_request"] - 1 for off, on in pairs
    ]

    def median_of(rounds: list[dict[str, Any]], key: str) -> float | None:
        values = [r[key] for r in rounds if r[key] is not None]
        return round(statistics.median(values), 3) if values else None

    def spread(name: str, values: list[float]) -> dict[str, Any]:
        return {
            name: round(statistics.median(values), 3),
            f"{name}_min": round(min(values), 3),
            f"{name}_max": round(max(values), 3),
            f"{name}_per_round": [round(x, 3) for x in values],
        }

    return {
        "rounds": len(pairs),
        "off_req_s": median_of(off_rounds, "requests_per_s"),
        "on_req_s": median_of(on_rounds, "requests_per_s"),
        **spread("throughput_overhead", throughput),
        "off_cpu_us": median_of(off_rounds, "server_cpu_us_per_request"),
        "on_cpu_us": median_of(on_rounds, "server_cpu_us_per_request"),
        **spread("cpu_overhead", cpu),
        "off_p99_ms": median_of(off_rounds, "p99_ms"),
        "on_p99_ms": median_of(on_rounds, "p99_ms"),
    }


def paired_args(parser: argparse.ArgumentParser, name: str) -> None:
    """The options of a paired-rounds bench; its JSON goes to bench/results/{name}.json."""
    parser.add_argument("--duration", type=int, default=5, help="wrk seconds per run")
    parser.add_argument("--warmup", type=int, default=1, help="wrk warm-up seconds, 0: none")
    parser.add_argument("--rounds", type=int, default=5, help="paired rounds (medians over them)")
    parser.add_argument("--json", type=Path, default=ROOT / f"bench/results/{name}.json")


def check_paired_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse what a paired-rounds bench cannot run with; note the load it starts under."""
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if shutil.which("wrk") is None:
        sys.exit(f"wrk is not installed; install it with: {WRK_INSTALL}")
    args.loadavg = [round(x, 2) for x in os.getloadavg()]


OVERHEAD_TARGET = 0.10


def overhead_row(variant: str, off_rounds: list[Any], on_rounds: list[Any]) -> dict[str, Any]:
    """`paired_overhead` plus the variant's name and the < 10% verdict on the median."""
    row = {"variant": variant, **paired_overhead(off_rounds, on_rounds)}
    row["target_met"] = row["throughput_overhead"] < OVERHEAD_TARGET
    return row


def print_overhead_table(rows: list[dict[str, Any]], width: int = 20) -> None:
    """The summary of `overhead_row` rows: medians over rounds, (min..max) of the overhead."""
    print(
        f"{'variant':<{width}} {'off req/s':>9} {'on req/s':>9} {'overhead (min..max)':>22} "
        f"{'off us/req':>10} {'on us/req':>9} {'CPU +':>7}  target < {OVERHEAD_TARGET:.0%}"
    )
    for r in rows:
        spread = (
            f"{r['throughput_overhead']:.1%} "
            f"({r['throughput_overhead_min']:.1%}..{r['throughput_overhead_max']:.1%})"
        )
        print(
            f"{r['variant']:<{width}} {r['off_req_s']:>9,.0f} {r['on_req_s']:>9,.0f} "
            f"{spread:>22} {r['off_cpu_us']:>10.0f} {r['on_cpu_us']:>9.0f} "
            f"{r['cpu_overhead']:>7.1%}  {'met' if r['target_met'] else 'not met'}"
        )
    rounds = rows[0]["rounds"] if rows else 0
    print(
        f"medians over {rounds} rounds; overhead = 1 - on/off req/s, CPU + = on/off - 1 of\n"
        "server CPU us/request, each paired with the off run of the same round"
    )


# --- SSE ----------------------------------------------------------------------------------


async def one_stream(port: int, body: bytes) -> tuple[float, float, float]:
    """(first byte, first complete event frame, end of stream) in seconds, from the send."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    request = (
        b"POST /v1/graph/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nAccept: text/event-stream\r\n"
        b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    t0 = time.perf_counter()
    writer.write(request)
    first_byte = first_event = None
    raw = b""
    try:
        while first_byte is None:
            data = await reader.read(65536)
            if not data:
                raise RuntimeError("connection closed before any response")
            first_byte = time.perf_counter() - t0
            raw += data
        while b"\r\n\r\n" not in raw:
            data = await reader.read(65536)
            if not data:
                raise RuntimeError("connection closed inside the headers")
            raw += data
        head, _, rest = raw.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"stream answered {head.splitlines()[0]!r}")
        chunked = b"transfer-encoding: chunked" in head.lower()
        body_bytes = b""
        ended = False
        while True:
            if chunked:  # de-chunk what has arrived
                while True:
                    line_end = rest.find(b"\r\n")
                    if line_end < 0:
                        break
                    size = int(rest[:line_end].split(b";")[0], 16)
                    if size == 0:
                        ended = True
                        break
                    if len(rest) < line_end + 2 + size + 2:
                        break
                    body_bytes += rest[line_end + 2 : line_end + 2 + size]
                    rest = rest[line_end + 2 + size + 2 :]
            else:
                body_bytes, rest = body_bytes + rest, b""
            if first_event is None and _has_event(body_bytes):
                first_event = time.perf_counter() - t0
            if ended:
                break
            data = await reader.read(65536)
            if not data:
                break
            rest += data
        if first_event is None:
            raise RuntimeError(f"no SSE event in {body_bytes[:200]!r}")
        return first_byte, first_event, time.perf_counter() - t0
    finally:
        writer.close()
        await writer.wait_closed()


def _has_event(body: bytes) -> bool:
    """A complete frame (ended by a blank line) with an `event:` line."""
    for frame in body.split(b"\n\n")[:-1]:
        if any(line.startswith(b"event:") for line in frame.split(b"\n")):
            return True
    return False


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


async def sse_series(port: int, n: int, warmup: int) -> dict[str, Any]:
    body = json.dumps(INVOKE_BODY).encode()
    for _ in range(warmup):
        await one_stream(port, body)
    samples = [await one_stream(port, body) for _ in range(n)]
    result: dict[str, Any] = {"n": n}
    for index, name in enumerate(("first_byte", "first_event", "complete")):
        ms = [s[index] * 1000 for s in samples]
        result[name] = {
            "p50_ms": round(percentile(ms, 50), 3),
            "p95_ms": round(percentile(ms, 95), 3),
            "p99_ms": round(percentile(ms, 99), 3),
            "mean_ms": round(statistics.fmean(ms), 3),
        }
    return result


# --- the run ------------------------------------------------------------------------------


PG_SCHEMA = f"bench_http_{os.getpid()}"
CHECKPOINTERS = ("memory", "sqlite")  # all served side by side; Postgres: pg_turns


def checkpointer_config(kind: str, args: argparse.Namespace, schema: str = PG_SCHEMA) -> Any:
    """The agentflow.json `checkpointer` of a bench server (Postgres in a schema of its own)."""
    if not kind.startswith("postgres"):
        return kind
    config = {"kind": "postgres", "dsn": args.pg_dsn, "schema": schema}
    if kind == "postgres+redis":
        config["redis"] = args.redis_url
    return config


def drop_pg_schema(dsn: str, schema: str = PG_SCHEMA) -> None:
    subprocess.run(
        ["psql", dsn, "-qc", f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'],
        check=False, capture_output=True,
    )  # fmt: skip


def make_servers(
    tmp: Path, args: argparse.Namespace, kinds: tuple[str, ...] = CHECKPOINTERS
) -> dict[str, Server]:
    loop, http = uvicorn_impl()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTFLOW_", "UVICORN"))}
    (tmp / "bare").mkdir(parents=True)
    (tmp / "bare" / "bare_app.py").write_text(textwrap.dedent(BARE_MODULE))
    servers: dict[str, Server] = {}
    port = free_port()
    servers["bare"] = Server(
        name="bare starlette",
        argv=[
            *(str(BIN / "python"), "-m", "uvicorn", "bare_app:app"),
            *("--app-dir", str(tmp / "bare"), "--port", str(port), "--loop", loop, "--http", http),
            *BARE_UVICORN_OPTIONS,
        ],
        env=base_env,
        cwd=tmp / "bare",
        port=port,
        log=tmp / "bare.log",
    )
    for kind in kinds:
        project = tmp / f"agentflow-{kind}"
        project.mkdir()
        (project / "bench_graph.py").write_text(GRAPH_MODULE.lstrip())
        config = project / "agentflow.json"
        checkpointer = checkpointer_config(kind, args)
        config.write_text(json.dumps({"graph": "bench_graph:app", "checkpointer": checkpointer}))
        port = free_port()
        servers[kind] = Server(
            name=f"agentflow {kind}",
            argv=[str(BIN / "agentflow"), "api", "--config", str(config), "--port", str(port)],
            env={**base_env, "LOG_LEVEL": "WARNING"},
            cwd=project,
            port=port,
            log=tmp / f"agentflow-{kind}.log",
        )
    return servers


# --- Postgres turns: the three paths a client takes ------------------------------------

# A turn naming a thread (wrk Lua): %(thread)s is the id's tail, from the wrk thread's number
# `worker` and its request counter.
# `busy` counts the 409s (the thread had a run already: a turn that outlived its thread's
# next use by the same wrk thread), which done() prints.
WRK_NAMED_THREAD = """
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("worker", #threads)
end
local counter = 0
busy = 0
function request()
  counter = counter + 1
  local body = '{"messages":[{"role":"user","content":"hello"}],"thread_id":"%(prefix)s-'
    .. worker .. '-' .. %(thread)s .. '"}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
function response(status, headers, body)
  if status == 409 then busy = busy + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("busy") end
  io.write("409 thread busy: " .. total .. "\\n")
end
"""
PG_PATHS = ("no id", "new id", "existing")
TURNS_FOR_COUNT = 200  # sequential turns whose Postgres transactions are counted
STATS_SETTLE_S = 11.0  # Postgres flushes an idle backend's counters within 10 s


def pg_transactions(dsn: str) -> int:
    """Committed + rolled-back transactions of the database so far (pg_stat_database)."""
    done = subprocess.run(
        ["psql", dsn, "-XAtc", "SELECT xact_commit + xact_rollback FROM pg_stat_database "
         "WHERE datname = current_database()"],
        check=True, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return int(done.stdout.strip())


def sequential_turns(url: str, bodies: list[dict[str, Any]]) -> None:
    for body in bodies:
        reply = post_json(url + "/v1/graph/invoke", body)
        assert reply["messages"][-1]["content"] == "hello", reply


def path_bodies(path: str, run_id: str, n: int) -> list[dict[str, Any]]:
    """`n` sequential turns of a path (for counting): the existing path's threads exist."""
    if path == "no id":
        return [INVOKE_BODY] * n
    if path == "new id":
        return [{**INVOKE_BODY, "thread_id": f"count-{run_id}-{i}"} for i in range(n)]
    return [{**INVOKE_BODY, "thread_id": f"count-{run_id}-{i % 10}"} for i in range(n)]


def transactions_per_turn(server: Server, dsn: str, path: str, idle: float) -> float:
    """Postgres transactions per turn of `path`: TURNS_FOR_COUNT sequential turns, counters
    read after they settle, less what the idle server does in as long (its sweeps)."""
    run_id = f"{os.getpid()}-{path.replace(' ', '')}"
    if path == "existing":
        sequential_turns(server.url, path_bodies("new id", run_id, 10))  # the threads exist
    time.sleep(STATS_SETTLE_S)
    before, start = pg_transactions(dsn), time.monotonic()
    sequential_turns(server.url, path_bodies(path, run_id, TURNS_FOR_COUNT))
    time.sleep(STATS_SETTLE_S)
    spent = pg_transactions(dsn) - before - 1  # less this count's own read
    return round((spent - idle * (time.monotonic() - start)) / TURNS_FOR_COUNT, 2)


def idle_transactions_per_s(dsn: str) -> float:
    time.sleep(STATS_SETTLE_S)
    before, start = pg_transactions(dsn), time.monotonic()
    time.sleep(2 * STATS_SETTLE_S)
    return (pg_transactions(dsn) - before - 1) / (time.monotonic() - start)


def asyncpg_round_trip_cpu(dsn: str, calls: int = 2000) -> dict[str, float]:
    """What one round trip costs the client process alone: CPU µs per `SELECT $1` through
    asyncpg under uvloop, on one connection and through a pool that skips the reset query
    (as agentflow's does). The floor under every Postgres figure above."""
    import resource

    import asyncpg
    import uvloop

    async def keep(conn: Any) -> None:
        return None

    async def measure() -> dict[str, float]:
        conn = await asyncpg.connect(dsn)
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4, reset=keep)
        results = {}
        try:
            for name, call in (("connection", conn.fetchval), ("pool", pool.fetchval)):
                for _ in range(200):
                    await call("SELECT $1::int", 1)
                before = resource.getrusage(resource.RUSAGE_SELF)
                for _ in range(calls):
                    await call("SELECT $1::int", 1)
                after = resource.getrusage(resource.RUSAGE_SELF)
                cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
                results[f"{name}_us"] = round(cpu / calls * 1e6, 1)
        finally:
            await conn.close()
            await pool.close()
        return results

    return uvloop.run(measure())


def pg_turns(tmp: Path, args: argparse.Namespace, bare: dict[str, Any]) -> dict[str, Any]:
    """req/s, p50/p99 and transactions per turn of each path, for Postgres and Postgres +
    Redis: one server at a time, alone on the database (one worker, LOG_LEVEL=WARNING)."""
    servers = make_servers(tmp / "pg", args, kinds=("postgres", "postgres+redis"))
    run_id = str(os.getpid())
    scripts = {"no id": tmp / "post.lua", "new id": tmp / "new.lua",
               "existing": tmp / "existing.lua"}  # fmt: skip
    # Every request names a thread the server has not seen (a client that makes thread ids).
    new_ids = {"prefix": f"new-{run_id}", "thread": "counter"}
    scripts["new id"].write_text(WRK_NAMED_THREAD % new_ids)
    # The next turn of a conversation: each wrk thread's connections go round its own
    # threads (made by the warm-up), so no two requests in flight name the same thread.
    scripts["existing"].write_text(
        WRK_NAMED_THREAD
        % {"prefix": f"chat-{run_id}", "thread": f"(counter % {args.pg_threads // 2})"}
    )
    floor = asyncpg_round_trip_cpu(args.pg_dsn)
    print(f"  asyncpg alone: {floor['connection_us']:.0f} us of CPU per round trip on one "
          f"connection, {floor['pool_us']:.0f} us through a pool", flush=True)  # fmt: skip
    results: dict[str, Any] = {}
    for kind in ("postgres", "postgres+redis"):
        server = servers[kind]
        server.start()
        try:
            idle = idle_transactions_per_s(args.pg_dsn)
            print(f"  {server.name:<18} idle: {idle:.2f} transactions/s (its sweeps)", flush=True)
            for path in PG_PATHS:
                turn = load(server, "/v1/graph/invoke", args.duration, args.warmup, scripts[path])
                turn["transactions_per_turn"] = transactions_per_turn(
                    server, args.pg_dsn, path, idle
                )
                turn["ratio_to_bare"] = round(turn["requests_per_s"] / bare["requests_per_s"], 3)
                print(f"  {server.name:<18} {path:<9} {turn['transactions_per_turn']:.2f} "
                      "transactions per turn", flush=True)  # fmt: skip
                results[f"{kind} / {path}"] = turn
        finally:
            server.stop()
            drop_pg_schema(args.pg_dsn)
    return {"paths": results, "asyncpg_round_trip_cpu_us": floor}


def print_pg_turns(turns: dict[str, Any], bare: dict[str, Any]) -> None:
    print(f"{'Postgres turn path':<28} {'req/s':>8} {'x bare':>7} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'xacts/turn':>10} {'non-2xx':>8} {'of them 409':>11}")  # fmt: skip
    for name, r in turns["paths"].items():
        busy = "-" if r.get("thread_busy_409") is None else r["thread_busy_409"]
        print(
            f"{name:<28} {r['requests_per_s']:>8,.0f} {r['ratio_to_bare']:>7.3f} "
            f"{r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['transactions_per_turn']:>10.2f} "
            f"{r['non_2xx']:>8} {busy:>11}"
        )
    print(f"{'bare (same run)':<28} {bare['requests_per_s']:>8,.0f}")


def row(metric: str, ours: float | None, bare: float | None, unit: str) -> dict[str, Any]:
    ratio = round(ours / bare, 3) if ours is not None and bare else None
    return {"metric": metric, "agentflow": ours, "bare": bare, "unit": unit, "ratio": ratio}


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="agentflow-http-bench-") as name:
        tmp = Path(name)
        servers = make_servers(tmp, args, kinds=() if args.pg_only else CHECKPOINTERS)
        post = tmp / "post.lua"
        post.write_text(WRK_POST.format(body=json.dumps(json.dumps(INVOKE_BODY))))
        try:
            for server in servers.values():
                server.start()
                assert server.proc is not None
                print(
                    f"  {server.name:<18} pid {server.proc.pid} port {server.port}: ready in "
                    f"{server.startup_s:.2f} s, idle RSS {server.idle_rss_mb:.1f} MB, "
                    f"uvloop={server.impl['uvloop']} httptools={server.impl['httptools']}",
                    flush=True,
                )
            impls = {s.name: s.impl for s in servers.values()}
            if len({json.dumps(i, sort_keys=True) for i in impls.values()}) != 1:
                raise RuntimeError(f"servers run different uvicorn implementations: {impls}")
            for key in servers:  # the echo works before timing it
                reply = post_json(servers[key].url + "/v1/graph/invoke", INVOKE_BODY)
                assert reply["messages"][-1]["content"] == "hello", reply

            d, w = args.duration, args.warmup
            invoke: dict[str, Any] = {}
            for key in servers:
                invoke[key] = load(servers[key], "/v1/graph/invoke", d, w, post)
            if args.pg_only:
                servers["bare"].stop()
                turns = pg_turns(tmp, args, invoke["bare"])
                return {"benchmark": "http_bench --pg-only", "bare": invoke["bare"],
                        "postgres_turns": turns}  # fmt: skip
            ping = {key: load(servers[key], "/ping", d, w, None) for key in ("bare", "memory")}
            sse: dict[str, Any] = {}
            for key in ("bare", "memory", "sqlite"):
                sse[key] = asyncio.run(sse_series(servers[key].port, args.sse_n, args.sse_warmup))
                first = sse[key]["first_event"]
                print(
                    f"  {servers[key].name:<18} SSE first event    p50 {first['p50_ms']:.2f} ms"
                    f"  p95 {first['p95_ms']:.2f} ms  p99 {first['p99_ms']:.2f} ms",
                    flush=True,
                )
            loaded_rss = {key: round(rss_mb(s.proc.pid), 1) for key, s in servers.items() if s.proc}
        finally:
            for server in servers.values():
                server.stop()
        turns = pg_turns(tmp, args, invoke["bare"])

    bare, mem, sql = invoke["bare"], invoke["memory"], invoke["sqlite"]
    rows = [
        row("invoke memory req/s", mem["requests_per_s"], bare["requests_per_s"], "req/s"),
        row("invoke memory p50", mem["p50_ms"], bare["p50_ms"], "ms"),
        row("invoke memory p99", mem["p99_ms"], bare["p99_ms"], "ms"),
        row("invoke memory CPU/req", mem["server_cpu_us_per_request"],
            bare["server_cpu_us_per_request"], "us"),
        row("invoke sqlite req/s", sql["requests_per_s"], bare["requests_per_s"], "req/s"),
        row("invoke sqlite p50", sql["p50_ms"], bare["p50_ms"], "ms"),
        row("invoke sqlite p99", sql["p99_ms"], bare["p99_ms"], "ms"),
        row("invoke sqlite CPU/req", sql["server_cpu_us_per_request"],
            bare["server_cpu_us_per_request"], "us"),
        *(
            row(f"invoke {name} {label}", turn[key], bare[key], unit)
            for name, turn in turns["paths"].items()
            for label, key, unit in (("req/s", "requests_per_s", "req/s"),
                                     ("p50", "p50_ms", "ms"), ("p99", "p99_ms", "ms"))
        ),
        row("/ping req/s", ping["memory"]["requests_per_s"], ping["bare"]["requests_per_s"],
            "req/s"),
        row("/ping p50", ping["memory"]["p50_ms"], ping["bare"]["p50_ms"], "ms"),
        row("/ping p99", ping["memory"]["p99_ms"], ping["bare"]["p99_ms"], "ms"),
        row("/ping CPU/req", ping["memory"]["server_cpu_us_per_request"],
            ping["bare"]["server_cpu_us_per_request"], "us"),
    ]  # fmt: skip
    for pct in ("p50", "p95", "p99"):
        rows.append(
            row(f"SSE first event {pct}", sse["memory"]["first_event"][f"{pct}_ms"],
                sse["bare"]["first_event"][f"{pct}_ms"], "ms")
        )  # fmt: skip
    rows.append(
        row("SSE first event p95 sqlite", sse["sqlite"]["first_event"]["p95_ms"],
            sse["bare"]["first_event"]["p95_ms"], "ms")
    )  # fmt: skip
    rows.append(
        row("SSE first byte p95", sse["memory"]["first_byte"]["p95_ms"],
            sse["bare"]["first_byte"]["p95_ms"], "ms")
    )  # fmt: skip
    rows.append(
        row("idle RSS (memory)", round(servers["memory"].idle_rss_mb, 1),
            round(servers["bare"].idle_rss_mb, 1), "MB")
    )  # fmt: skip
    rows.append(
        row("idle RSS (sqlite)", round(servers["sqlite"].idle_rss_mb, 1),
            round(servers["bare"].idle_rss_mb, 1), "MB")
    )  # fmt: skip
    rows.append(
        row("startup to /ping", round(servers["memory"].startup_s, 2),
            round(servers["bare"].startup_s, 2), "s")
    )  # fmt: skip
    invoke_ratio = mem["requests_per_s"] / bare["requests_per_s"]
    sse_p95 = sse["memory"]["first_event"]["p95_ms"]
    idle = servers["memory"].idle_rss_mb
    targets = [
        {"target": "invoke (memory) >= 30% of bare req/s", "value": round(invoke_ratio, 3),
         "passed": invoke_ratio >= 0.30},
        {"target": "SSE first event p95 < 5 ms", "value": sse_p95, "passed": sse_p95 < 5.0},
        {"target": "idle RSS < 80 MB", "value": round(idle, 1), "passed": idle < 80.0},
    ]  # fmt: skip
    loop, http = uvicorn_impl()
    return {
        "benchmark": "http_bench",
        "python": sys.version.split()[0],
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "loadavg_at_start": args.loadavg,
        "uvicorn": {"loop": loop, "http": http, "workers": 1, "loaded": impls},
        "wrk": f"-t2 -c16 -d{args.duration}s --latency (warm-up {args.warmup}s)",
        "sse_client": "raw asyncio socket, sequential, new connection per stream",
        "rows": rows,
        "targets": targets,
        "postgres_turns": turns,
        "raw": {
            "invoke": invoke,
            "ping": ping,
            "sse": sse,
            "startup_s": {k: round(s.startup_s, 3) for k, s in servers.items()},
            "idle_rss_mb": {k: round(s.idle_rss_mb, 1) for k, s in servers.items()},
            "rss_after_load_mb": loaded_rss,
        },
    }


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 1000 else f"{value:,.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="wrk seconds per run")
    parser.add_argument("--warmup", type=int, default=2, help="wrk warm-up seconds, 0: none")
    parser.add_argument("--sse-n", type=int, default=300, help="sequential streams per server")
    parser.add_argument("--sse-warmup", type=int, default=30)
    parser.add_argument("--json", type=Path, default=ROOT / "bench/results/http_bench.json")
    parser.add_argument("--pg-dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--pg-threads", type=int, default=200, help="threads the existing-thread path goes round"
    )
    parser.add_argument(
        "--pg-only", action="store_true", help="only the bare app and the Postgres turn paths"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit(f"wrk is not installed; install it with: {WRK_INSTALL}")
    if not (BIN / "agentflow").exists():
        sys.exit(f"no agentflow CLI at {BIN / 'agentflow'}; run `make` setup (pip install -e .)")
    args.loadavg = [round(x, 2) for x in os.getloadavg()]
    if args.loadavg[0] > 0.5 * (os.cpu_count() or 1):
        print(f"note: load average {args.loadavg[0]} at start; other work skews req/s")
    report = run(args)
    print()
    print_pg_turns(
        report["postgres_turns"],
        report["bare"] if args.pg_only else report["raw"]["invoke"]["bare"],
    )
    if args.pg_only:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.with_name("http_bench_pg.json").write_text(json.dumps(report, indent=2) + "\n")
        return
    print()
    print(f"{'metric':<27} {'agentflow':>11} {'bare':>11} {'unit':>6} {'ratio':>7}")
    for r in report["rows"]:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        print(
            f"{r['metric']:<27} {fmt(r['agentflow']):>11} {fmt(r['bare']):>11} "
            f"{r['unit']:>6} {ratio:>7}"
        )
    print()
    for t in report["targets"]:
        print(f"{'PASS' if t['passed'] else 'FAIL'}  {t['target']:<40} (measured {t['value']})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
