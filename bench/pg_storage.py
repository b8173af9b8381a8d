"""PgCheckpointer storage and listing at scale.

    python bench/pg_storage.py [--dsn URL] [--threads 100000] [--messages 1000]

1. Storage: a 1,000-message conversation (a graph run per turn, so per-step checkpoints are
   included) and the bytes Postgres uses for it (tables + indexes + TOAST) versus the sum of
   the messages' JSON sizes. Target: under 1.5x.
   Message text is real English (standard-library docstrings), so compression is realistic.
2. Listing: 100,000 threads spread over 1,000 users plus one heavy user with 10,000 threads;
   p50/p95 of GET-threads-sized queries (first page and deep cursor pages). Target: p95 under
   20 ms. Baseline: the same index scan as a bare asyncpg query, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from agentflow.checkpointer import PgCheckpointer
from agentflow.graph import END, START, AgentState, Message, StateGraph


def english_corpus() -> list[str]:
    """Real English prose, offline: the docstrings of the standard library's modules."""
    import pydoc
    import textwrap

    names = [
        "asyncio",
        "json",
        "logging",
        "pathlib",
        "re",
        "sqlite3",
        "typing",
        "email",
        "http.client",
        "urllib.request",
        "collections",
        "functools",
        "itertools",
        "argparse",
        "subprocess",
        "threading",
        "decimal",
        "datetime",
        "csv",
        "zipfile",
    ]
    words: list[str] = []
    for name in names:
        module = pydoc.locate(name)
        for obj in [module, *vars(module).values()] if module else []:
            doc = getattr(obj, "__doc__", None)
            if isinstance(doc, str):
                words += textwrap.dedent(doc).split()
    return words


WORDS = english_corpus()


def sentence(rng: random.Random, words: int) -> str:
    """A contiguous passage of real prose, as a model's answer would be."""
    start = rng.randrange(0, len(WORDS) - words)
    return " ".join(WORDS[start : start + words])


async def storage(dsn: str, messages: int) -> dict[str, Any]:
    schema = "bench_storage_" + uuid.uuid4().hex[:8]
    rng = random.Random(7)
    replies: list[str] = []

    async def answer(state: AgentState) -> Message:
        text = replies.pop()
        return Message.assistant(text)

    graph = StateGraph()
    graph.add_node("answer", answer)
    graph.add_edge(START, "answer")
    graph.add_edge("answer", END)
    tables = ("threads", "messages", "checkpoints")

    async def sizes(conn: asyncpg.Connection) -> dict[str, int]:
        return {
            table: await conn.fetchval(
                "SELECT pg_total_relation_size($1::regclass)", f'"{schema}".{table}'
            )
            for table in tables
        }

    async with PgCheckpointer(dsn, schema=schema) as cp:
        conn = await asyncpg.connect(dsn)
        empty = await sizes(conn)  # fixed cost of the tables, paid once per deployment
        app = graph.compile(checkpointer=cp)
        for _ in range(messages // 2):
            replies.append(sentence(rng, rng.randint(40, 160)))  # a typical model answer
            question = sentence(rng, rng.randint(5, 30))
            await app.ainvoke({"messages": [{"role": "user", "content": question}]},
                              {"thread_id": "long", "user_id": "u"})  # fmt: skip
        stored = await cp.get_messages("long")
        payload = sum(len(json.dumps(m.to_dict(), separators=(",", ":")).encode()) for m in stored)
        try:
            raw = await sizes(conn)
            # What autovacuum converges to: the dead row versions of the thread row (updated
            # at every step) are reclaimed. VACUUM FULL measures the live data exactly.
            for table in tables:
                await conn.execute(f'VACUUM FULL "{schema}".{table}')
            live = await sizes(conn)
        finally:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
            await conn.close()
    fixed = sum(empty.values())
    grown = sum(live.values()) - fixed
    return {
        "messages": len(stored),
        "message_json_bytes": payload,
        "empty_tables_bytes": fixed,
        "stored_bytes_right_after_writes": sum(raw.values()),
        "stored_bytes_live": sum(live.values()),
        "conversation_bytes_live": grown,
        "by_table_right_after_writes": raw,
        "by_table_live": live,
        "ratio_right_after_writes": round(sum(raw.values()) / payload, 2),
        "ratio_live_total": round(sum(live.values()) / payload, 2),
        "ratio_conversation": round(grown / payload, 2),
        "target": "the conversation's live storage < 1.5x its messages' JSON",
        "pass": grown / payload < 1.5,
    }


async def listing(dsn: str, threads: int, samples: int) -> dict[str, Any]:
    schema = "bench_list_" + uuid.uuid4().hex[:8]
    async with PgCheckpointer(dsn, schema=schema) as cp:
        conn = await asyncpg.connect(dsn)
        try:
            now = time.time()
            heavy = min(10_000, threads // 10)
            rows = [(f"h{i}", "heavy", f"thread {i}", now - i) for i in range(heavy)] + [
                (f"t{i}", f"user{i % 1000}", f"thread {i}", now - i) for i in range(threads - heavy)
            ]
            await conn.copy_records_to_table(
                "threads", schema_name=schema, records=[
                    (tid, uid, title, "{}", "done", 2, ts, ts) for tid, uid, title, ts in rows
                ],
                columns=["thread_id", "user_id", "title", "metadata", "status",
                         "message_count", "created_at", "updated_at"],
            )  # fmt: skip
            await conn.execute(f'ANALYZE "{schema}".threads')

            async def timed(fn: Any) -> list[float]:
                out = []
                for _ in range(samples):
                    start = time.perf_counter()
                    await fn()
                    out.append((time.perf_counter() - start) * 1000)
                return out

            first_page = await timed(lambda: cp.list_threads("heavy", limit=20))
            page = await cp.list_threads("heavy", limit=20)
            for _ in range(min(200, heavy // 20 - 2)):  # walk deep
                assert page.next_cursor
                page = await cp.list_threads("heavy", limit=20, cursor=page.next_cursor)
            cursor = page.next_cursor
            deep_page = await timed(lambda: cp.list_threads("heavy", limit=20, cursor=cursor))
            sql = (
                f'SELECT thread_id FROM "{schema}".threads WHERE user_id = $1 '
                "ORDER BY updated_at DESC, thread_id DESC LIMIT 21"
            )
            bare = await timed(lambda: conn.fetch(sql, "heavy"))
        finally:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
            await conn.close()

    def pct(values: list[float], q: float) -> float:
        return round(statistics.quantiles(values, n=100)[int(q) - 1], 3)

    p95 = max(pct(first_page, 95), pct(deep_page, 95))
    return {
        "threads": threads,
        "first_page_ms": {"p50": pct(first_page, 50), "p95": pct(first_page, 95)},
        "page_200_deep_ms": {"p50": pct(deep_page, 50), "p95": pct(deep_page, 95)},
        "bare_asyncpg_ms": {"p50": pct(bare, 50), "p95": pct(bare, 95)},
        "target": "p95 < 20 ms",
        "pass": p95 < 20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--threads", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--json", type=Path, default=Path("bench/results/pg_storage.json"))
    args = parser.parse_args()
    report = {
        "storage": asyncio.run(storage(args.dsn, args.messages)),
        "listing": asyncio.run(listing(args.dsn, args.threads, args.samples)),
    }
    print(json.dumps(report, indent=2))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
