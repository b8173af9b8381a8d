"""Where a LangGraph run's time goes in `agentflow api`: timing around the server's run path.

    bench/.venv-lgserve/bin/python bench/capacity/lg_timing.py --mock-url URL \\
        [--checkpointer sqlite|postgres] [--clients 50] [--runs 6] [--path new|reuse]
        [--pool-max N]

Run by hand from bench/.venv-lgserve (made by bench/langgraph_bench.py) with a mock model
already up (`python bench/mock_model.py --port P`). It serves bench/capacity/langgraph_graph.py
in this process (uvicorn, one worker, the app `agentflow api` builds) with every coroutine
method of the store (PgCheckpointer or SqliteCheckpointer), LangGraphSaver, the run service,
the background runs and the LangGraph adapter wrapped in a timer; `--clients` clients each
do `--runs` streamed runs (langgraph-sdk's request) on a new thread each (`new`) or on a
thread of their own (`reuse`). Prints per method: calls per run, mean and p99 ms (wall time,
awaits included: the time a run spends in it), and the runs' latency.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import inspect
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TIMES: dict[str, list[float]] = defaultdict(list)


def timed(owner: type, name: str, label: str) -> None:
    original = owner.__dict__[name]

    @functools.wraps(original)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            TIMES[label].append(time.perf_counter() - started)

    setattr(owner, name, wrapper)


def instrument(classes: list[type]) -> None:
    for cls in classes:
        for name, value in list(cls.__dict__.items()):
            if inspect.iscoroutinefunction(value) and name not in ("__aenter__", "__aexit__"):
                timed(cls, name, f"{cls.__name__}.{name}")


async def drive(url: str, clients: int, runs: int, path: str) -> list[float]:
    import aiohttp

    body = json.dumps({
        "assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "hello"}]},
        "stream_mode": ["messages-tuple"], "if_not_exists": "create",
    }).encode()  # fmt: skip
    latencies: list[float] = []

    async def client(session: aiohttp.ClientSession, i: int) -> None:
        await asyncio.sleep(i / clients * 2.0)
        own = str(uuid.uuid4())
        for _ in range(runs):
            thread = own if path == "reuse" else str(uuid.uuid4())
            started = time.perf_counter()
            async with session.post(
                f"{url}/threads/{thread}/runs/stream",
                data=body,
                headers={"Content-Type": "application/json"},
            ) as response:
                assert response.status == 200, (response.status, await response.text())
                await response.read()
            latencies.append(time.perf_counter() - started)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        await asyncio.gather(*(client(session, i) for i in range(clients)))
    return latencies


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered)) - 1))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mock-url", required=True)
    parser.add_argument("--checkpointer", default="postgres", choices=["sqlite", "postgres"])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--path", default="reuse", choices=["new", "reuse"])
    parser.add_argument("--pool-max", type=int, default=None, help="checkpointer.pool.max")
    parser.add_argument("--pg-dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    os.environ["CAPACITY_MOCK_URL"] = args.mock_url
    os.environ.setdefault("LOG_LEVEL", "WARNING")

    import uvicorn

    from agentflow.checkpointer.langgraph import LangGraphSaver
    from agentflow.checkpointer.postgres import PgCheckpointer
    from agentflow.checkpointer.sqlite import SqliteCheckpointer
    from agentflow.runtime.app import create_app
    from agentflow.runtime.background import BackgroundRuns
    from agentflow.runtime.coordination import SharedCoordinator
    from agentflow.runtime.lgapi.adapter import LangGraphAdapter
    from agentflow.runtime.runs import RunService
    from agentflow.runtime.settings import load_settings

    instrument([PgCheckpointer, SqliteCheckpointer, LangGraphSaver, RunService, BackgroundRuns,
                LangGraphAdapter, SharedCoordinator])  # fmt: skip
    schema = f"lg_timing_{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        shutil.copy(HERE / "langgraph_graph.py", project / "langgraph_graph.py")
        checkpointer: Any = args.checkpointer
        if args.checkpointer == "postgres":
            checkpointer = {"kind": "postgres", "dsn": args.pg_dsn, "schema": schema}
            if args.pool_max:
                checkpointer["pool"] = {"min": 2, "max": args.pool_max}
        config = project / "agentflow.json"
        config.write_text(json.dumps({"graph": "langgraph_graph:graph",
                                      "checkpointer": checkpointer}))  # fmt: skip
        os.chdir(project)
        sys.path.insert(0, str(project))
        app = create_app(load_settings(config))
        server = uvicorn.Server(uvicorn.Config(app, port=0, log_level="warning", lifespan="on"))
        serving = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 (uvicorn sets a flag, no event)
            await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            started = time.perf_counter()
            latencies = await drive(f"http://127.0.0.1:{port}", args.clients, args.runs,
                                    args.path)  # fmt: skip
            wall = time.perf_counter() - started
            await asyncio.sleep(1.0)  # the runs' last writes
        finally:
            server.should_exit = True
            await serving
            if args.checkpointer == "postgres":
                import asyncpg

                conn = await asyncpg.connect(args.pg_dsn)
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                await conn.close()
    n = len(latencies)
    print(f"{args.checkpointer} {args.path}: {args.clients} clients x {args.runs} runs, "
          f"{n / wall:.1f} runs/s; latency p50 {pct(latencies, 50) * 1000:.0f} ms "
          f"p99 {pct(latencies, 99) * 1000:.0f} ms")  # fmt: skip
    print(f"{'method':<46} {'calls/run':>9} {'mean ms':>8} {'p99 ms':>8} {'ms/run':>7}")
    for label, values in sorted(TIMES.items(), key=lambda kv: -sum(kv[1])):
        print(f"{label:<46} {len(values) / n:>9.2f} {sum(values) / len(values) * 1000:>8.1f} "
              f"{pct(values, 99) * 1000:>8.1f} {sum(values) / n * 1000:>7.1f}")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
