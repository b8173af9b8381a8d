"""LangGraph graphs: the same compiled graph served by agentflow and by `langgraph dev`.

    .venv/bin/python bench/langgraph_bench.py [--levels 50,200,1000] [--duration 15]
        [--servers langgraph,sqlite,postgres] [--paths new,reuse]
        [--langgraph-venv bench/.venv-langgraph] [--pg-pool-max 10]
        [--json bench/results/langgraph_bench.json]

capacity.py's setting and parts (bench/capacity/: processes, loadgen, report, pinger, and its
`measure` and `settle`), with one LangGraph graph file, bench/capacity/langgraph_graph.py
(`create_react_agent(ChatOpenAI(..., base_url=<mock>/v1, streaming=True), tools=[])`), served
1. by `langgraph dev` (in-memory runtime, bench/.venv-langgraph, --n-jobs-per-worker at the
   highest level, as capacity.py runs it);
2. by `agentflow api` with `{"graph": "langgraph_graph:graph", "checkpointer": "sqlite"}`;
3. by `agentflow api` on Postgres (a schema of its own per run, dropped at the end);
each one worker, LOG_LEVEL=WARNING. agentflow needs langchain-openai to import the graph
file: it runs from bench/.venv-lgserve, a venv of its own made once by this script
(`pip install -e <this checkout>[langgraph] langchain-openai`), so its resolution never
touches the venv of `langgraph dev`.

Every server is driven by the same client code, what langgraph-sdk's
`client.runs.stream(thread_id, "agent", input=..., stream_mode="messages-tuple",
if_not_exists="create")` sends, on two paths:
- new: each run on a new thread, `POST /threads/{new uuid}/runs/stream` (capacity.py's
  `langgraph_target`);
- reuse: each client keeps one thread for all its runs, as a chat client does,
  `POST /threads/{the client's thread}/runs/stream` (its state grows by two messages a run).
Plus the mock model alone (the ceiling). Per level, server and path: capacity.py's figures
(runs/s, added latency p50/p99, first token added p50, errors by kind, peak RSS, CPU ms per
run, /ping p99) and runs/s as a ratio of `langgraph dev`'s on the same path in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(BENCH / "capacity")]

from capacity import describe, measure, run_servers, settle, write_report  # noqa: E402
from http_bench import checkpointer_config, drop_pg_schema, free_port  # noqa: E402
from loadgen import Target, langgraph_target, langgraph_thread_target, model_target  # noqa: E402
from mock_model import raise_nofile_limit  # noqa: E402
from processes import (  # noqa: E402
    HERE,
    LANGGRAPH_VENV,
    MODEL_NAME,
    Process,
    clean_env,
    ensure_langgraph_venv,
    ensure_venv,
    langgraph_server,
)
from report import error_lines, fmt, markdown_table, ms_as_s  # noqa: E402

SERVERS = ("langgraph", "sqlite", "postgres")
LABELS = {
    "langgraph": "langgraph dev",
    "sqlite": "agentflow sqlite",
    "postgres": "agentflow postgres",
}
PATHS = {
    "new": ("new thread a run", langgraph_target),
    "reuse": ("the client's own thread", langgraph_thread_target),
}
LGSERVE_VENV = BENCH / ".venv-lgserve"
LGSERVE_PACKAGES = ["-e", f"{ROOT}[langgraph]", "langchain-openai"]
PG_SCHEMA = f"bench_lg_{os.getpid()}"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="50,200,1000", help="concurrent clients")
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds a level")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument("--run-timeout", type=float, default=60.0, help="client timeout a run")
    parser.add_argument("--servers", default=",".join(SERVERS), help=f"of {', '.join(SERVERS)}")
    parser.add_argument("--paths", default=",".join(PATHS), help=f"of {', '.join(PATHS)}")
    parser.add_argument("--langgraph-venv", type=Path, default=LANGGRAPH_VENV)
    parser.add_argument("--lgserve-venv", type=Path, default=LGSERVE_VENV)
    parser.add_argument("--deltas", type=int, default=10, help="mock: content deltas a call")
    parser.add_argument("--model-duration", type=float, default=2.0, help="mock: seconds a call")
    parser.add_argument("--pg-dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument(
        "--pg-pool-max", type=int, default=None, help="agentflow's checkpointer.pool.max (10)"
    )
    parser.add_argument("--json", type=Path, default=BENCH / "results/langgraph_bench.json")
    args = parser.parse_args()
    try:
        args.levels = [int(x) for x in args.levels.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--levels takes comma-separated integers, got {args.levels!r}")
    args.servers = [x.strip() for x in args.servers.split(",") if x.strip()]
    args.paths = [x.strip() for x in args.paths.split(",") if x.strip()]
    for option, given, known in (("--servers", args.servers, SERVERS), ("--paths", args.paths,
                                                                        tuple(PATHS))):  # fmt: skip
        unknown = sorted(set(given) - set(known))
        if unknown or not given:
            parser.error(f"{option}: unknown {unknown or given!r}; known: {', '.join(known)}")
    if not args.levels or min(args.levels) < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("--levels must be positive, --duration > 0 and --warmup >= 0")
    args.langgraph_jobs = max(args.levels)
    return args


# --- the agentflow venv and server ---------------------------------------------------------


def ensure_lgserve_venv(venv: Path) -> Path:
    """A venv with this checkout (editable, the `langgraph` extra) and langchain-openai,
    made once: agentflow imports the graph file, which imports langchain_openai. Remade
    when it is broken or its agentflow is not this checkout's."""
    probe = (
        "import agentflow, langgraph.prebuilt, langchain_openai, sys; "
        f"sys.exit(0 if agentflow.__file__.startswith({str(ROOT / 'runtime')!r}) else 3)"
    )
    return ensure_venv(venv, LGSERVE_PACKAGES, probe, "run with --servers langgraph")


def agentflow_lg_server(tmp: Path, venv: Path, kind: str, checkpointer: Any, mock_url: str
                        ) -> Process:  # fmt: skip
    """`agentflow api` (one worker) serving the LangGraph graph file as `agent`."""
    project = tmp / f"agentflow-{kind}"
    project.mkdir()
    shutil.copy(HERE / "langgraph_graph.py", project / "langgraph_graph.py")
    config = project / "agentflow.json"
    config.write_text(json.dumps({"graph": "langgraph_graph:graph", "checkpointer": checkpointer}))
    port = free_port()
    argv = [str(venv / "bin" / "agentflow"), "api", "--config", str(config), "--port", str(port)]
    env = clean_env(LOG_LEVEL="WARNING", CAPACITY_MOCK_URL=mock_url)
    env.pop("PYTHONPATH", None)  # the venv's own agentflow (this checkout, editable)
    env.pop("VIRTUAL_ENV", None)
    return Process(LABELS[kind], argv, env, project, port, tmp / f"{kind}.log", "/ping")


def make_servers(args: argparse.Namespace, tmp: Path, mock_url: str) -> dict[str, Process]:
    servers: dict[str, Process] = {}
    if "langgraph" in args.servers:
        venv = ensure_langgraph_venv(args.langgraph_venv)
        servers["langgraph"] = langgraph_server(tmp, venv, args.langgraph_jobs, mock_url)
    agentflow = [kind for kind in args.servers if kind != "langgraph"]
    if agentflow:
        venv = ensure_lgserve_venv(args.lgserve_venv)
        for kind in agentflow:
            checkpointer = checkpointer_config(kind, args, PG_SCHEMA)
            if kind == "postgres" and args.pg_pool_max:
                checkpointer["pool"] = {"min": 2, "max": args.pg_pool_max}
            servers[kind] = agentflow_lg_server(tmp, venv, kind, checkpointer, mock_url)
    return servers


# --- the run --------------------------------------------------------------------------------


async def run_levels(args: argparse.Namespace, mock: Process, servers: dict[str, Process]
                     ) -> dict[str, dict[int, Any]]:  # fmt: skip
    """results["model"][level], results["<server>/<path>"][level]."""
    results: dict[str, dict[int, Any]] = {"model": {}}
    for level in args.levels:
        print(f"{level:,} concurrent runs", flush=True)
        result = await measure(model_target(mock.url, MODEL_NAME), level, args, None, None)
        result.update(await settle(mock, None))
        results["model"][level] = result
        print(describe("model alone", level, result), flush=True)
        for path in args.paths:
            for name, server in servers.items():
                key = f"{name}/{path}"
                if server.proc is None or server.proc.poll() is not None:
                    results.setdefault(key, {})[level] = None
                    print(f"  {key}: the server is gone (see {server.log})", flush=True)
                    continue
                target: Target = PATHS[path][1](server.url)
                ping = "/ok" if name == "langgraph" else "/ping"
                result = await measure(target, level, args, server, ping)
                result.update(await settle(mock, server))
                results.setdefault(key, {})[level] = result
                print(describe(f"{LABELS[name]} {path}", level, result), flush=True)
    return results


COLUMNS = [
    "concurrent", "server", "path", "runs/s", "vs langgraph dev", "added p50", "added p99",
    "1st token added p50", "errors", "RSS MB", "CPU ms/run", "/ping p99", "model alone runs/s",
]  # fmt: skip


def table_rows(args: argparse.Namespace, results: dict[str, dict[int, Any]]) -> list[list[str]]:
    rows = []
    for level in args.levels:
        model = results["model"].get(level) or {}
        for path in args.paths:
            base = (results.get(f"langgraph/{path}") or {}).get(level) or {}
            for name in args.servers:
                r = (results.get(f"{name}/{path}") or {}).get(level) or {}
                server, ping = r.get("server") or {}, r.get("ping") or {}
                ratio = (
                    f"{r['runs_per_s'] / base['runs_per_s']:.1f}x"
                    if r and base.get("runs_per_s") else "-"
                )  # fmt: skip
                rows.append([
                    f"{level:,}", LABELS[name], path, fmt(r.get("runs_per_s"), ",.1f"), ratio,
                    ms_as_s(r.get("added_p50_ms")), ms_as_s(r.get("added_p99_ms")),
                    ms_as_s(r.get("first_token_added_p50_ms")), fmt(r.get("errors"), ","),
                    fmt(server.get("rss_peak_mb"), ",.0f"),
                    fmt(server.get("cpu_ms_per_run"), ",.2f"), ms_as_s(ping.get("p99_ms")),
                    fmt(model.get("runs_per_s"), ",.1f"),
                ])  # fmt: skip
    return rows


def print_tables(args: argparse.Namespace, results: dict[str, dict[int, Any]]) -> None:
    print(f"\n### LangGraph graph, one worker each (mock: {args.deltas} deltas over "
          f"{args.model_duration:g} s; {args.duration:g} s a level)\n")  # fmt: skip
    print("path new: a new thread a run; reuse: each client's own thread for all its runs\n")
    print(markdown_table(table_rows(args, results), COLUMNS))
    lines = [line for name, r in results.items() for line in error_lines(name, r)]
    if lines:
        print("\nerrors by kind (runs that ended after the warm-up):")
        print("\n".join(lines))


def main() -> None:
    args = parse_args()
    raise_nofile_limit()
    logs = args.json.parent / "langgraph_bench_logs"
    results = run_servers(
        "agentflow-lgbench-", args.deltas, args.model_duration,
        lambda tmp, mock_url: make_servers(args, tmp, mock_url),
        lambda mock, servers: run_levels(args, mock, servers),
        cleanup=lambda: drop_pg_schema(args.pg_dsn, PG_SCHEMA) if "postgres" in args.servers
        else None,
        keep_logs=logs,
    )  # fmt: skip
    print_tables(args, results)
    paths = {path: label for path, (label, _) in PATHS.items()}
    write_report(args, results, paths=paths)
    print(f"(server logs in {logs})")


if __name__ == "__main__":
    main()
