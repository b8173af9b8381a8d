"""Idempotency-Key over real HTTP on each durable store: what a model reply may contain never
breaks the record, and a retry replays instead of running again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from agentflow.graph import END, START, AgentState, CompiledGraph, Message, StateGraph
from tests.faults.conftest import PG_DSN, pg_execute, probe_postgres, unavailable
from tests.runtime.conftest import ServerFactory

REPLY = "NUL\x00 and a lone surrogate \ud800 in a model reply"


def odd_replies() -> CompiledGraph:
    async def respond(state: AgentState) -> Message:
        return Message.assistant(REPLY)

    graph = StateGraph()
    graph.add_node("respond", respond)
    graph.add_edge(START, "respond")
    graph.add_edge("respond", END)
    return graph.compile()


@pytest.fixture
def pg_schema() -> Iterator[str]:
    try:
        probe_postgres(PG_DSN)
    except Exception as exc:
        unavailable(f"Postgres is not reachable at {PG_DSN}: {exc}")
    schema = "t_idem_" + uuid.uuid4().hex[:12]
    yield schema
    pg_execute(PG_DSN, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["postgres", "sqlite"])
def store(request: pytest.FixtureRequest, pg_schema: str) -> dict[str, Any]:
    if request.param == "postgres":
        return {"checkpointer": {"kind": "postgres", "dsn": PG_DSN, "schema": pg_schema}}
    return {"checkpointer": "sqlite"}


def test_a_reply_with_nul_and_surrogates_is_recorded_and_replayed(
    make_server: ServerFactory, store: dict[str, Any]
) -> None:
    url = make_server(store, graph=odd_replies())
    body = {"messages": [{"role": "user", "content": "hi"}]}
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    with httpx.Client(base_url=url, timeout=15) as client:
        first = client.post("/v1/graph/invoke", json=body, headers=headers)
        assert first.status_code == 200, first.text
        assert first.json()["messages"][0]["content"] == REPLY
        again = client.post("/v1/graph/invoke", json=body, headers=headers)
        assert again.status_code == 200, again.text
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == first.json()
        thread = first.json()["thread_id"]
        stored = client.get(f"/v1/threads/{thread}/messages").json()["messages"]
    assert [(m["role"], m["content"]) for m in stored] == [("user", "hi"), ("assistant", REPLY)]
