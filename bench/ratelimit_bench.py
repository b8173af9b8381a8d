"""Rate-limiting overhead: POST /v1/graph/invoke with `rate_limits` off vs on, paired rounds.

    .venv/bin/python bench/ratelimit_bench.py [--duration 5] [--warmup 1] [--rounds 5]
                                              [--no-postgres]
                                              [--json bench/results/ratelimit_bench.json]

Same method as bench/http_bench.py (whose functions it imports): each server a real
`agentflow api` subprocess on 127.0.0.1, one worker, LOG_LEVEL=WARNING, loaded with wrk
`-t2 -c16` on the one-node echo graph. The limits (per user and global) are far above what
wrk reaches, so they count every request but never refuse one. Groups: the memory
checkpointer (in-memory limiter), and Postgres + Redis (limiter counted in Redis) unless
--no-postgres.

Both servers of a group (limits off and on) run at the same time and are loaded in
--rounds rounds, each server once per round, one after the other, in an order that rotates
every round (round k starts with server k mod 2), so slow drift of a shared machine hits
both sides alike. Per round, the throughput overhead 1 - on/off req/s and the server CPU
overhead on/off - 1 (us/request, read from /proc) are taken against the off run of the same
round; the summary gives their medians over the rounds (min..max), and the median req/s
and CPU/request of each side. Target (issue 9): median throughput overhead < 10%.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import http_bench as hb

LIMITS = {"per_user": "100000000/minute", "global": "100000000/minute"}


def make_server(tmp: Path, name: str, checkpointer: Any, limits: Any) -> hb.Server:
    project = tmp / name
    project.mkdir()
    (project / "bench_graph.py").write_text(hb.GRAPH_MODULE.lstrip())
    config = project / "agentflow.json"
    data = {"graph": "bench_graph:app", "checkpointer": checkpointer, "rate_limits": limits}
    config.write_text(json.dumps(data))
    port = hb.free_port()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTFLOW_", "UVICORN"))}
    return hb.Server(
        name=name,
        argv=[str(hb.BIN / "agentflow"), "api", "--config", str(config), "--port", str(port)],
        env={**base_env, "LOG_LEVEL": "WARNING"},
        cwd=project,
        port=port,
        log=tmp / f"{name}.log",
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    kinds = ["memory"] if args.no_postgres else ["memory", "postgres+redis"]
    rows: list[dict[str, Any]] = []
    raw: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="agentflow-ratelimit-bench-") as name:
        tmp = Path(name)
        post = tmp / "post.lua"
        post.write_text(hb.WRK_POST.format(body=json.dumps(json.dumps(hb.INVOKE_BODY))))
        try:
            for kind in kinds:
                checkpointer = hb.checkpointer_config(kind, args)
                servers = {
                    label: make_server(tmp, f"{kind}-{label}", checkpointer, limits)
                    for label, limits in (("off", None), ("on", LIMITS))
                }
                with hb.running(servers):
                    for server in servers.values():
                        reply = hb.post_json(server.url + "/v1/graph/invoke", hb.INVOKE_BODY)
                        assert reply["messages"][-1]["content"] == "hello", reply
                    results = hb.compare(
                        servers, "/v1/graph/invoke", args.rounds, args.duration, args.warmup, post
                    )
                rows.append(hb.overhead_row(kind, results["off"], results["on"]))
                raw[kind] = results
        finally:
            if not args.no_postgres:
                hb.drop_pg_schema(args.pg_dsn)
    return {
        "benchmark": "ratelimit_bench",
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "rounds": args.rounds,
        "loadavg_at_start": args.loadavg,
        "limits": LIMITS,
        "rows": rows,
        "raw": raw,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    hb.paired_args(parser, "ratelimit_bench")
    parser.add_argument("--no-postgres", action="store_true", help="only the memory pair")
    parser.add_argument("--pg-dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    hb.check_paired_args(parser, args)
    report = run(args)
    print()
    hb.print_overhead_table(report["rows"], width=16)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {args.json}")


if __name__ == "__main__":
    main()
