"""Graph overhead: a one-node echo graph invoked N times, next to a plain async call.

    python bench/graph_overhead.py [--n 10000] [--json bench/results/graph_overhead.json]

Every variant runs in the same process and the same run, so the ratios compare like with
like. Each invoke starts a new thread (conversation), as a server does for new chats.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from agentflow.checkpointer import InMemoryCheckpointer, SqliteCheckpointer
from agentflow.graph import END, START, AgentState, CompiledGraph, Message, StateGraph


async def echo(state: AgentState) -> Message:
    return Message.assistant(state.context[-1].text)


def build() -> CompiledGraph:
    graph = StateGraph()
    graph.add_node("echo", echo)
    graph.add_edge(START, "echo")
    graph.add_edge("echo", END)
    return graph.compile()


async def baseline_call(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """What a hand-written handler would do: build the message, call the function."""
    state = AgentState(context=[Message.from_dict(m) for m in messages])
    reply = await echo(state)
    return {"messages": [reply.to_dict()]}


async def timed(n: int, call: Callable[[int], Awaitable[Any]]) -> float:
    for i in range(min(200, n)):  # warm-up
        await call(-i - 1)
    start = time.perf_counter()
    for i in range(n):
        await call(i)
    return time.perf_counter() - start


async def run(n: int) -> dict[str, Any]:
    payload = [{"role": "user", "content": "hello"}]
    app = build()
    results: dict[str, float] = {}

    results["baseline: plain async function"] = await timed(n, lambda i: baseline_call(payload))
    results["graph, no checkpointer"] = await timed(n, lambda i: app.ainvoke({"messages": payload}))
    memory = app.with_checkpointer(InMemoryCheckpointer())
    results["graph + InMemoryCheckpointer"] = await timed(
        n, lambda i: memory.ainvoke({"messages": payload}, {"thread_id": f"t{i}"})
    )
    with tempfile.TemporaryDirectory() as tmp:
        async with SqliteCheckpointer(Path(tmp) / "state.db") as sqlite:
            durable = app.with_checkpointer(sqlite)
            results["graph + SqliteCheckpointer"] = await timed(
                n, lambda i: durable.ainvoke({"messages": payload}, {"thread_id": f"t{i}"})
            )
    base = results["baseline: plain async function"]
    rows = []
    for name, seconds in results.items():
        rows.append(
            {
                "variant": name,
                "invokes_per_s": round(n / seconds, 1),
                "us_per_invoke": round(seconds / n * 1e6, 2),
                "us_per_step": round(seconds / n * 1e6, 2),  # one node = one step
                "x_baseline_time": round(seconds / base, 1),
            }
        )
    return {
        "benchmark": "graph_overhead",
        "n": n,
        "python": sys.version.split()[0],
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--json", type=Path, default=Path("bench/results/graph_overhead.json"))
    args = parser.parse_args()
    report = asyncio.run(run(args.n))
    print(f"{'variant':<34} {'invokes/s':>11} {'us/step':>9} {'x baseline':>11}")
    for row in report["rows"]:
        print(
            f"{row['variant']:<34} {row['invokes_per_s']:>11,.0f} {row['us_per_step']:>9.1f} "
            f"{row['x_baseline_time']:>11.1f}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
