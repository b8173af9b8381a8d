"""Tracing overhead: POST /v1/graph/invoke with OpenTelemetry tracing off vs on, one run.

    .venv/bin/python bench/tracing_bench.py [--duration 5] [--warmup 1]
                                            [--json bench/results/tracing_bench.json]

Needs wrk and the otel extra (`pip install -e '.[otel]'`). Same method as
bench/http_bench.py (whose functions it imports): each server a real `agentflow api`
subprocess on 127.0.0.1, one worker, LOG_LEVEL=WARNING, memory checkpointer, loaded with wrk
`-t2 -c16`. Two graphs: the one-node echo graph (3 spans per request: request, run, node)
and a ReAct agent with the offline DemoChat model and one `add` tool call (8 spans: request,
run, 3 nodes, 2 model calls, 1 tool call). Three modes per graph:

- off: no OTEL_* / AGENTFLOW_TRACING variables (the default; nothing imported);
- on, no export: AGENTFLOW_TRACING=1, OTEL_TRACES_EXPORTER=none (spans built, then dropped);
- on, OTLP: OTEL_TRACES_EXPORTER=otlp to a null collector in this process (an HTTP server
  answering 200 to every POST /v1/traces), through the BatchSpanProcessor: the full path;
- on, OTLP 10%: the same with OTEL_TRACES_SAMPLER=parentbased_traceidratio at 0.1 (below a
  dropped root agentflow opens no span at all).

Target (issue 9): overhead of tracing on < 10% of throughput. Server CPU per request (read
from /proc around the measured run) is reported next to req/s; it is steadier on a busy box.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
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
MODES = ("off", "on, no export", "on, OTLP", "on, OTLP 10%")


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
    if mode == "on, no export":
        return {"AGENTFLOW_TRACING": "1", "OTEL_TRACES_EXPORTER": "none"}
    env = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": collector}
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
    with tempfile.TemporaryDirectory(prefix="agentflow-tracing-bench-") as name:
        tmp = Path(name)
        try:
            for graph, (_, body) in GRAPHS.items():
                post = tmp / f"{graph}.lua"
                post.write_text(hb.WRK_POST.format(body=json.dumps(json.dumps(body))))
                results: dict[str, Any] = {}
                for mode in MODES:
                    server = make_server(tmp, graph, mode, collector_url)
                    try:
                        server.start()
                        reply = hb.post_json(server.url + "/v1/graph/invoke", body)
                        assert reply["status"] == "done", reply
                        results[mode] = hb.load(
                            server, "/v1/graph/invoke", args.duration, args.warmup, post
                        )
                    finally:
                        server.stop()
                off = results["off"]
                for mode in MODES[1:]:
                    on = results[mode]
                    rows.append(
                        {
                            "graph": graph,
                            "mode": mode,
                            "off_rps": off["requests_per_s"],
                            "on_rps": on["requests_per_s"],
                            "throughput_overhead": round(
                                1 - on["requests_per_s"] / off["requests_per_s"], 3
                            ),
                            "off_cpu_us": off["server_cpu_us_per_request"],
                            "on_cpu_us": on["server_cpu_us_per_request"],
                            "cpu_overhead": round(
                                on["server_cpu_us_per_request"] / off["server_cpu_us_per_request"]
                                - 1,
                                3,
                            ),
                            "off_p99_ms": off["p99_ms"],
                            "on_p99_ms": on["p99_ms"],
                        }
                    )
        finally:
            collector.shutdown()
    return {
        "args": {k: v for k, v in vars(args).items() if k != "json"},
        "otlp_exports": NullCollector.exports,
        "otlp_bytes": NullCollector.bytes,
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="wrk seconds per run")
    parser.add_argument("--warmup", type=int, default=1, help="wrk warm-up seconds, 0: none")
    parser.add_argument("--json", type=Path, default=hb.ROOT / "bench/results/tracing_bench.json")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit(f"wrk is not installed; install it with: {hb.WRK_INSTALL}")
    try:
        import opentelemetry.exporter.otlp.proto.http
        import opentelemetry.sdk  # noqa: F401
    except ImportError:
        sys.exit("the otel extra is not installed: .venv/bin/pip install -e '.[otel]'")
    args.loadavg = [round(x, 2) for x in os.getloadavg()]
    report = run(args)
    print()
    print(
        f"{'graph':<6} {'tracing':<14} {'off req/s':>10} {'on req/s':>10} {'overhead':>9} "
        f"{'off us/req':>11} {'on us/req':>10} {'CPU +':>7}"
    )
    for r in report["rows"]:
        print(
            f"{r['graph']:<6} {r['mode']:<14} {r['off_rps']:>10,.0f} {r['on_rps']:>10,.0f} "
            f"{r['throughput_overhead']:>9.1%} {r['off_cpu_us']:>11.0f} {r['on_cpu_us']:>10.0f} "
            f"{r['cpu_overhead']:>7.1%}"
        )
    print(f"OTLP exports received by the null collector: {report['otlp_exports']} "
          f"({report['otlp_bytes']:,} bytes)")  # fmt: skip
    worst = max(r["throughput_overhead"] for r in report["rows"])
    print(f"worst throughput overhead {worst:.1%} (target < 10%)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
