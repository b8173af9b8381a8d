"""Tracing overhead: POST /v1/graph/invoke with OpenTelemetry tracing off vs on, paired rounds.

    .venv/bin/python bench/tracing_bench.py [--duration 5] [--warmup 1] [--rounds 5]
                                            [--json bench/results/tracing_bench.json]

Needs wrk and the otel extra (`pip install -e '.[otel]'`). Same method as
bench/http_bench.py (whose functions it imports): each server a real `agentflow api`
subprocess on 127.0.0.1, one worker, LOG_LEVEL=WARNING, memory checkpointer, loaded with wrk
`-t2 -c16`. Two graphs: the one-node echo graph (3 spans per request: request, run, node)
and a ReAct agent with the offline DemoChat model and one `add` tool call (8 spans: request,
run, 3 nodes, 2 model calls, 1 tool call). Five modes per graph:

- off: no OTEL_* / AGENTFLOW_TRACING variables (the default; nothing imported);
- on, no export: AGENTFLOW_TRACING=1, OTEL_TRACES_EXPORTER=none (spans recorded, then
  dropped: the cost of recording alone);
- on, OTLP: OTEL_TRACES_EXPORTER=otlp to a null collector in this process (an HTTP server
  answering 200 to every POST /v1/traces), through the BatchSpanProcessor and the export
  helper process (agentflow.tracing.relay): the full path, as deployed;
- on, OTLP in-process: the same with AGENTFLOW_TRACING_RELAY=0 (encoding and posting in the
  server's export thread);
- on, OTLP 10%: the full path with OTEL_TRACES_SAMPLER=parentbased_traceidratio at 0.1
  (below a dropped root agentflow opens no span at all);
- floor: agentflow.tracing replaced by bench/floor/sitecustomize.py, the least a span can do
  (a context variable, an id, two clock reads, a tuple kept), with every call site building
  its attributes as for real spans: what any tracing of these spans costs at the least.

The servers of a graph (one per mode) run at the same time and are loaded in --rounds
rounds, each server once per round, one after the other, in an order that rotates every
round (round k starts with server k mod 6), so slow drift of a shared machine hits every
mode alike. The server CPU of the OTLP modes counts the server process only, not its export
helper (which runs beside it, off its GIL, and holds no request). Per round, each "on"
mode's throughput overhead 1 - on/off req/s and server CPU
overhead on/off - 1 (us/request, read from /proc around the measured run; steadier than
req/s on a busy box) are taken against the off server of the same round; the summary gives
their medians over the rounds (min..max), and the median req/s and CPU/request of each
mode. After each load the script waits until the collector has received nothing for 1 s
(the OTLP servers run with OTEL_BSP_SCHEDULE_DELAY=500), so a server draining its span queue
(and the collector reading it) never runs during the next server's measurement. Target
(issue 9): median throughput overhead of tracing on < 10%.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import http_bench as hb

REACT_MODULE = """
from agentflow.models import DemoChat
from agentflow.tools import create_react_agent, tool


@tool
def add(a: int, b: int) -> str:
    \"\"\"Add two numbers.\"\"\"
    return str(a + b)


app = create_react_agent(DemoChat(), [add])
"""
REACT_BODY = {"messages": [{"role": "user", "content": "what is 2+3"}]}
GRAPHS = {"echo": (hb.GRAPH_MODULE, hb.INVOKE_BODY), "react": (REACT_MODULE, REACT_BODY)}
MODES = ("off", "on, no export", "on, OTLP", "on, OTLP in-process", "on, OTLP 10%", "floor")
FLOOR = Path(__file__).resolve().parent / "floor"


def exports_done(quiet: float = 1.0, limit: float = 8.0) -> None:
    """Wait until no OTLP export has arrived for `quiet` seconds (at most `limit`): a
    server's span processor drains its queue after the load stops, and that work (and the
    collector's) must not run during the next server's measurement."""
    deadline = time.monotonic() + limit
    seen = NullCollector.exports
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        if NullCollector.exports != seen:
            seen, quiet_since = NullCollector.exports, time.monotonic()
        elif time.monotonic() - quiet_since >= quiet:
            return


class NullCollector(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that accepts and forgets every export."""

    exports = 0
    bytes = 0

    def do_POST(self) -> None:
        size = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(size)
        NullCollector.exports += 1
        NullCollector.bytes += size
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def tracing_env(mode: str, collector: str) -> dict[str, str]:
    if mode == "off":
        return {}
    if mode == "floor":
        return {"AGENTFLOW_BENCH_FLOOR": "1", "PYTHONPATH": str(FLOOR)}
    if mode == "on, no export":
        return {"AGENTFLOW_TRACING": "1", "OTEL_TRACES_EXPORTER": "none"}
    env = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector,
        # a partial batch leaves within 0.5 s (default 5 s), so exports_done() can wait for it
        "OTEL_BSP_SCHEDULE_DELAY": "500",
    }
    if mode == "on, OTLP in-process":
        env["AGENTFLOW_TRACING_RELAY"] = "0"
    if mode == "on, OTLP 10%":
        env |= {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}
    return env


def make_server(tmp: Path, graph: str, mode: str, collector: str) -> hb.Server:
    name = f"{graph} {mode}"
    project = tmp / name.replace(" ", "-").replace(",", "")
    project.mkdir()
    (project / "bench_graph.py").write_text(GRAPHS[graph][0].lstrip())
    config = project / "agentflow.json"
    config.write_text(json.dumps({"graph": "bench_graph:app", "checkpointer": "memory"}))
    port = hb.free_port()
    base_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AGENTFLOW_", "UVICORN", "OTEL_"))
    }
    return hb.Server(
        name=name,
        argv=[str(hb.BIN / "agentflow"), "api", "--config", str(config), "--port", str(port)],
        env={**base_env, "LOG_LEVEL": "WARNING", **tracing_env(mode, collector)},
        cwd=project,
        port=port,
        log=project / "server.log",
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    collector = ThreadingHTTPServer(("127.0.0.1", 0), NullCollector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    collector_url = f"http://127.0.0.1:{collector.server_address[1]}"
    rows: list[dict[str, Any]] = []
    raw: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="agentflow-tracing-bench-") as name:
        tmp = Path(name)
        try:
            for graph, (_, body) in GRAPHS.items():
                post = tmp / f"{graph}.lua"
                post.write_text(hb.WRK_POST.format(body=json.dumps(json.dumps(body))))
                servers = {mode: make_server(tmp, graph, mode, collector_url) for mode in MODES}
                with hb.running(servers):
                    for server in servers.values():
                        reply = hb.post_json(server.url + "/v1/graph/invoke", body)
                        assert reply["status"] == "done", reply
                    results = hb.compare(
                        servers,
                        "/v1/graph/invoke",
                        args.rounds,
                        args.duration,
                        args.warmup,
                        post,
                        settle=exports_done,
                    )
                for mode in MODES[1:]:
                    row = hb.overhead_row(f"{graph} {mode}", results["off"], results[mode])
                    rows.append({"graph": graph, "mode": mode, **row})
                raw[graph] = results
        finally:
            collector.shutdown()
    return {
        "benchmark": "tracing_bench",
        "args": {k: v for k, v in vars(args).items() if k != "json"},
        "otlp_exports": NullCollector.exports,
        "otlp_bytes": NullCollector.bytes,
        "rows": rows,
        "raw": raw,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    hb.paired_args(parser, "tracing_bench")
    args = parser.parse_args()
    hb.check_paired_args(parser, args)
    try:
        import opentelemetry.exporter.otlp.proto.http
        import opentelemetry.sdk  # noqa: F401
    except ImportError:
        sys.exit("the otel extra is not installed: .venv/bin/pip install -e '.[otel]'")
    report = run(args)
    print()
    hb.print_overhead_table(report["rows"], width=20)
    print(f"OTLP exports received by the null collector: {report['otlp_exports']} "
          f"({report['otlp_bytes']:,} bytes)")  # fmt: skip
    tracing_rows = [r for r in report["rows"] if r["mode"] != "floor"]
    worst = max(tracing_rows, key=lambda r: r["throughput_overhead"])
    print(
        f"worst median throughput overhead {worst['throughput_overhead']:.1%} "
        f"({worst['variant']}): target < 10% {'met' if worst['target_met'] else 'not met'}"
    )
    for row in report["rows"]:
        if row["mode"] == "floor":
            print(
                f"{row['graph']}: the floor (a do-nothing span at every call site) costs "
                f"{row['throughput_overhead']:.1%} by itself"
            )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
