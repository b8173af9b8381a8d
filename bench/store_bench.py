"""Store item latency on Postgres: put, get and search, p50/p95 over N operations each.

    .venv/bin/python bench/store_bench.py [--ops 1000] [--dsn postgresql://...] [--http]

Library: one ItemStore on a PgCheckpointer (its pool, its own schema, dropped at the end),
operations one after another (no concurrency), on a table that already holds `--fill` items
of other users, so the user's index ranges and the GIN index do real work. search: a
namespace prefix with a filter on a value key, limit 10. With `--http`, the same through
the API: an agentflow server (uvicorn in a thread, Postgres checkpointer, no auth) called
with langgraph_sdk's sync client, one request at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import asyncpg

from agentflow.checkpointer import item_store, open_checkpointer

DSN = os.environ.get("AGENTFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def summary(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return (
        f"{name:<8} n={len(samples):<5} p50={statistics.median(ordered) * 1000:.3f} ms  "
        f"p95={p95 * 1000:.3f} ms"
    )


async def timed(n: int, op: Callable[[int], Awaitable[Any]]) -> list[float]:
    samples = []
    for i in range(n):
        start = time.perf_counter()
        await op(i)
        samples.append(time.perf_counter() - start)
    return samples


async def library(dsn: str, schema: str, ops: int, fill: int) -> None:
    checkpointer = open_checkpointer(f"{dsn}?agentflow_schema={schema}")
    await checkpointer.setup()
    items = item_store(checkpointer)
    try:
        for i in range(fill):  # other users' items
            await items.put(f"other{i % 50}", ("docs", f"n{i % 20}"), f"k{i}", {"n": i % 10})
        user = "bench"

        async def put(i: int) -> None:
            value = {"n": i % 10, "text": "x" * 200}
            await items.put(user, ("docs", f"n{i % 20}"), f"k{i}", value)

        async def get(i: int) -> None:
            assert await items.get(user, ("docs", f"n{i % 20}"), f"k{i}") is not None

        async def search(i: int) -> None:
            await items.search(user, ("docs",), filter={"n": i % 10}, limit=10)

        print(f"library, Postgres, {fill} items of other users before")
        for name, op in (("put", put), ("get", get), ("search", search)):
            print(summary(name, await timed(ops, op)))
    finally:
        await checkpointer.close()


def http(dsn: str, schema: str, ops: int) -> None:
    import uvicorn
    from langgraph_sdk import get_sync_client

    from agentflow.runtime import create_app, load_settings

    with TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "graph.py").write_text(
            "from agentflow.graph import StateGraph, START, END, Message\n"
            "async def reply(state):\n    return Message.assistant('ok')\n"
            "g = StateGraph()\ng.add_node('reply', reply)\ng.add_edge(START, 'reply')\n"
            "g.add_edge('reply', END)\napp = g.compile()\n"
        )
        checkpointer = {"kind": "postgres", "dsn": dsn, "schema": schema}
        config_file = {"graph": "graph:app", "checkpointer": checkpointer}
        (project / "agentflow.json").write_text(json.dumps(config_file))
        sys.path.insert(0, tmp)
        settings = load_settings(project / "agentflow.json", environ={"LOG_LEVEL": "WARNING"})
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=0, log_level="warning", lifespan="on"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            with get_sync_client(url=f"http://127.0.0.1:{port}", api_key=None) as client:
                store = client.store

                def run(op: Callable[[int], Any]) -> list[float]:
                    samples = []
                    for i in range(ops):
                        start = time.perf_counter()
                        op(i)
                        samples.append(time.perf_counter() - start)
                    return samples

                print("HTTP (langgraph_sdk sync client -> agentflow, Postgres)")
                print(summary("put", run(lambda i: store.put_item(
                    ["docs", f"n{i % 20}"], key=f"k{i}", value={"n": i % 10, "text": "x" * 200}
                ))))  # fmt: skip
                print(summary("get", run(lambda i: store.get_item(
                    ["docs", f"n{i % 20}"], key=f"k{i}"
                ))))  # fmt: skip
                print(summary("search", run(lambda i: store.search_items(
                    ["docs"], filter={"n": i % 10}, limit=10
                ))))  # fmt: skip
        finally:
            server.should_exit = True
            thread.join(15)


async def drop(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--fill", type=int, default=10_000)
    parser.add_argument("--dsn", default=DSN)
    parser.add_argument("--http", action="store_true")
    args = parser.parse_args()
    schema = "bench_store_" + uuid.uuid4().hex[:8]
    try:
        asyncio.run(library(args.dsn, schema, args.ops, args.fill))
        if args.http:
            http(args.dsn, schema + "_http", args.ops)
    finally:
        asyncio.run(drop(args.dsn, schema))
        asyncio.run(drop(args.dsn, schema + "_http"))


if __name__ == "__main__":
    main()
