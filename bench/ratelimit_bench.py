"""Rate-limiting overhead: POST /v1/graph/invoke with `rate_limits` off vs on, one run.

    .venv/bin/python bench/ratelimit_bench.py [--duration 5] [--no-postgres]
                                              [--json bench/results/ratelimit_bench.json]

Same method as bench/http_bench.py (whose functions it imports): each server a real
`agentflow api` subprocess on 127.0.0.1, one worker, LOG_LEVEL=WARNING, loaded with wrk
`-t2 -c16` on the one-node echo graph. The limits (per user and global) are far above what
wrk reaches, so they count every request but never refuse one. Pairs: the memory
checkpointer (in-memory limiter), and Postgres + Redis (limiter counted in Redis) unless
--no-postgres. Target (issue 9): overhead < 10% of throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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
    with tempfile.TemporaryDirectory(prefix="agentflow-ratelimit-bench-") as name:
        tmp = Path(name)
        post = tmp / "post.lua"
        post.write_text(hb.WRK_POST.format(body=json.dumps(json.dumps(hb.INVOKE_BODY))))
        try:
            for kind in kinds:
                checkpointer = hb.checkpointer_config(kind, args)
                result = {}
                for label, limits in (("off", None), ("on", LIMITS)):
                    server = make_server(tmp, f"{kind}-{label}", checkpointer, limits)
                    try:
                        server.start()
                        reply = hb.post_json(server.url + "/v1/graph/invoke", hb.INVOKE_BODY)
                        assert reply["messages"][-1]["content"] == "hello", reply
                        result[label] = hb.load(
                            server, "/v1/graph/invoke", args.duration, args.warmup, post
                        )
                    finally:
                        server.stop()
                off, on = result["off"]["requests_per_s"], result["on"]["requests_per_s"]
                rows.append(
                    {
                        "checkpointer": kind,
                        "off_req_s": off,
                        "on_req_s": on,
                        "overhead": round(1 - on / off, 3),
                        "p50_ms": [result["off"]["p50_ms"], result["on"]["p50_ms"]],
                        "p99_ms": [result["off"]["p99_ms"], result["on"]["p99_ms"]],
                    }
                )
        finally:
            if not args.no_postgres:
                hb.drop_pg_schema(args.pg_dsn)
    return {"duration_s": args.duration, "limits": LIMITS, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="wrk seconds per run")
    parser.add_argument("--warmup", type=int, default=1, help="wrk warm-up seconds, 0: none")
    parser.add_argument("--no-postgres", action="store_true", help="only the memory pair")
    parser.add_argument("--json", type=Path, default=hb.ROOT / "bench/results/ratelimit_bench.json")
    parser.add_argument("--pg-dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit(f"wrk is not installed; install it with: {hb.WRK_INSTALL}")
    report = run(args)
    print()
    print(f"{'checkpointer':<16} {'off req/s':>10} {'on req/s':>10} {'overhead':>9}")
    for r in report["rows"]:
        print(
            f"{r['checkpointer']:<16} {r['off_req_s']:>10,.0f} {r['on_req_s']:>10,.0f} "
            f"{r['overhead']:>9.1%}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {args.json}")


if __name__ == "__main__":
    main()
