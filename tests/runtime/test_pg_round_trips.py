"""What one conversation turn costs Postgres: every statement the server sends is counted (a
query logger on each pooled connection), over real HTTP against the real server, on each
path a client takes. Each statement outside a transaction block is one round trip and one
transaction."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from agentflow.checkpointer import PgCheckpointer
from agentflow.runtime import create_app, load_settings
from agentflow.runtime.startup import build_components
from tests.checkpointer.conftest import PG_DSN, REDIS_URL, require_postgres
from tests.faults.conftest import pg_execute, require_shared_redis
from tests.runtime import graphs
from tests.runtime.conftest import serve_app, user_message, write_project

# What a worker does on its own, not for a turn: the sweep for runs nobody runs, and
# the pruning of old stream frames.
BACKGROUND = ("WHERE background", "run_events WHERE run_id IN")


@dataclasses.dataclass
class Counted:
    http: httpx.Client
    statements: list[str]

    def turn(self, body: dict[str, Any], route: str = "/v1/graph/invoke") -> list[str]:
        """The statements one turn sent, once the server has gone quiet."""
        self.statements.clear()
        reply = self.http.post(route, json=body)
        assert reply.status_code == 200, reply.text
        seen = -1
        while seen != len(self.statements):  # the lease's release may follow the answer
            seen = len(self.statements)
            time.sleep(0.2)
        return [s for s in self.statements if not any(b in s for b in BACKGROUND)]


@pytest.fixture(params=["postgres", "postgres+redis"])
def counted(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Counted]:
    require_postgres()
    redis = request.param == "postgres+redis"
    if redis:
        require_shared_redis()
    schema = "t_trips_" + uuid.uuid4().hex[:12]
    statements: list[str] = []

    async def log_statements(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(lambda query: statements.append(query.query))

    checkpointer: dict[str, Any] = {"kind": "postgres", "dsn": PG_DSN, "schema": schema}
    if redis:
        checkpointer["redis"] = REDIS_URL
    settings = load_settings(write_project(tmp_path, {"checkpointer": checkpointer}), environ={})
    store = PgCheckpointer(
        PG_DSN, schema=schema, redis_url=REDIS_URL if redis else None,
        connection_init=log_statements,
    )  # fmt: skip
    components = dataclasses.replace(
        build_components(settings, graph=graphs.echo), checkpointer=store
    )
    try:
        app = create_app(settings, components=components)
        with serve_app(app) as url, httpx.Client(base_url=url, timeout=30) as http:
            yield Counted(http, statements)
    finally:
        pg_execute(PG_DSN, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_a_turn_costs_at_most_three_round_trips_on_every_path(counted: Counted) -> None:
    thread = "chat-" + uuid.uuid4().hex
    counted.turn(user_message("warm the statement cache", thread_id="warm-" + thread))
    fresh = counted.turn(user_message("hello"))
    assert len(fresh) == 2, fresh  # the input's checkpoint, the node's
    new = counted.turn(user_message("hello", thread_id=thread))
    assert len(new) <= 3, new
    for _ in range(3):
        existing = counted.turn(user_message("and again", thread_id=thread))
        assert len(existing) <= 3, existing
        assert not any(s.strip().upper().startswith(("BEGIN", "COMMIT")) for s in existing)
    messages = counted.http.get(f"/v1/threads/{thread}/messages").json()
    assert len(messages["messages"]) == 8  # four turns, each a question and its echo


def test_a_streamed_turn_also_records_its_run_and_its_frames(counted: Counted) -> None:
    """A stream also stores its run record (start and end) and its frames, for clients that
    reconnect on any worker, and lets the thread go after its final record."""
    thread = "stream-" + uuid.uuid4().hex
    counted.turn(user_message("warm", thread_id="warm-" + thread), "/v1/graph/stream")
    for text in ("one", "two"):
        statements = counted.turn(user_message(text, thread_id=thread), "/v1/graph/stream")
        # claim, the record's start, the input's checkpoint, the node's, the frames (one
        # batch or two), the record's end, the lease's release
        assert len(statements) <= 8, statements
    messages = counted.http.get(f"/v1/threads/{thread}/messages").json()
    assert [m["content"] for m in messages["messages"]] == ["one", "echo: one", "two", "echo: two"]
