"""Schemathesis, every check, against the served OpenAPI document over real HTTP: a uvicorn
serving the app on Postgres (the production store), once anonymous and once behind JWT auth
with a token. No response may be a 5xx or disagree with the document (status codes, content
types, bodies, SSE events, Allow headers), and what the document calls valid must be accepted,
what it calls invalid refused.

Bounded: a fixed number of examples per operation and a fixed seed, a minute at most.

This module is also the run's hooks module (SCHEMATHESIS_HOOKS): `state_dependent_refusals`
below names the only 422s a schema-valid run request may get, because they depend on the
thread or the graph, not on the request's shape (see STATE_DEPENDENT)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import schemathesis

from agentflow.graph import END, START, AgentState, CompiledGraph, Message, StateGraph
from agentflow.runtime.routes import ENDPOINTS
from tests.faults.conftest import PG_DSN, pg_execute, probe_postgres, unavailable
from tests.runtime.conftest import ServerFactory

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# Per operation and phase: over 76 operations a run takes under a minute here, which keeps
# the whole suite under 15 minutes.
EXAMPLES = 6
SEED = 20260516
RUN_TIMEOUT = 150  # seconds: a hung run fails instead of blocking CI
SECRET = "schemathesis-test-secret-" + "x" * 32
INVOKE = "/v1/graph/invoke"
RUN_PATHS = (INVOKE, "/v1/graph/stream", "/v1/threads/{thread_id}/runs")
# A 422 for a run request the document calls valid, when it depends on state the document
# cannot state: the thread (a pending interrupt to resume; an Idempotency-Key already used
# with another body, 422 as the IETF Idempotency-Key draft says) or the graph (its state
# fields, unknown to a document built before the graph is loaded).
STATE_DEPENDENT = {"idempotency_key_reused": ("",)}


@schemathesis.check
def state_dependent_refusals(ctx: Any, response: Any, case: Any) -> bool | None:
    """The config lets a run request the document calls valid get a 422 (see
    STATE_DEPENDENT); this check holds such a 422 to those causes, so a request the server
    refuses for its shape still fails the run."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    if case.operation.path in LANGGRAPH_GRAPH_PATHS:
        return langgraph_refusal(response.json()["error"])
    if case.operation.path not in RUN_PATHS:
        return None
    error = response.json()["error"]
    if error["code"] == "validation_error":
        locs = [detail["loc"][:2] for detail in error.get("details", [])]
        if locs and all(loc == ["body", "state"] for loc in locs):
            return True  # the graph's state fields, checked before the run
    prefixes = STATE_DEPENDENT.get(error["code"], ())
    if not any(error["message"].startswith(prefix) for prefix in prefixes):
        raise AssertionError(f"a schema-valid run request was refused: {error}")
    return True


def langgraph_refusal(error: dict[str, Any]) -> bool:
    """A LangGraph API run or state update the served graph refuses: its input is any JSON
    to the document, and the graph (agentflow's, here) says what its messages and fields
    are. Anything else is a refusal of the request's shape, which the document must state."""
    locs = [detail["loc"][:2] for detail in error.get("details", [])]
    graph_said = error["code"] == "invalid_update" or (
        error["code"] == "validation_error"
        and locs
        and all(loc == ["body", "input"] for loc in locs)
    )
    if not graph_said:
        raise AssertionError(f"a schema-valid LangGraph API request was refused: {error}")
    return True


# Threads this run deleted. A run request naming one creates that thread again, by design
# (an unknown client-chosen thread_id creates the thread); the use-after-free check (ST301)
# cannot know a run request creates, so such a request names a fresh id instead.
DELETED_THREADS: set[str] = set()


@schemathesis.hook
def after_call(ctx: Any, case: Any, response: Any) -> None:
    if case.method.upper() == "DELETE" and response.status_code == 200:
        DELETED_THREADS.add(str((case.path_parameters or {}).get("thread_id")))


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    body = case.body
    thread_id = body.get("thread_id") if isinstance(body, dict) else None
    if isinstance(thread_id, str) and thread_id in DELETED_THREADS:
        case.body = {**body, "thread_id": uuid.uuid4().hex}
    path = case.path_parameters or {}
    if case.method.upper() == "POST" and path.get("thread_id") in DELETED_THREADS:
        case.path_parameters = {**path, "thread_id": uuid.uuid4().hex}  # a run creates it


# The LangGraph API's runs and state updates: what the graph accepts is the graph's to say.
LANGGRAPH_GRAPH_PATHS = (
    "/threads/{thread_id}/state", "/threads/{thread_id}/runs", "/threads/{thread_id}/runs/wait",
    "/threads/{thread_id}/runs/stream", "/runs", "/runs/wait", "/runs/stream",
)  # fmt: skip
CONFIG = "".join(
    f"""
[[operations]]
include-path = "{path}"
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "401", "403", "404", "409", "422", "429", "5xx",
]
"""
    for path in (*RUN_PATHS, *LANGGRAPH_GRAPH_PATHS)
)


async def reply(state: AgentState) -> Message:
    """Answers any input, none included: the server is under test, not the graph."""
    text = state.context[-1].text if state.context else ""
    return Message.assistant(f"echo: {text[:50]}")


def echo_graph() -> CompiledGraph:
    graph = StateGraph()
    graph.add_node("reply", reply)
    graph.add_edge(START, "reply")
    graph.add_edge("reply", END)
    return graph.compile(name="schemathesis")


@pytest.fixture
def pg_checkpointer() -> Iterator[dict[str, Any]]:
    try:
        probe_postgres(PG_DSN)
    except Exception as exc:  # any failure to connect means "not available"
        unavailable(f"Postgres is not reachable at {PG_DSN}: {exc}")
    schema = "t_st_" + uuid.uuid4().hex[:16]
    yield {"kind": "postgres", "dsn": PG_DSN, "schema": schema}
    pg_execute(PG_DSN, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def run_schemathesis(url: str, workdir: Path, *headers: str) -> None:
    config = workdir / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        str(SCHEMATHESIS), "--config-file", str(config), "--no-color",
        "run", f"{url}/openapi.json", "--checks", "all", "--max-examples", str(EXAMPLES),
        "--seed", str(SEED), "--generation-database", "none", "--request-timeout", "20",
    ]  # fmt: skip
    for header in headers:
        command += ["--header", header]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": __name__,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT
    )
    output = done.stdout + done.stderr
    print(output[-2_000:])  # the summary, for `pytest -s`
    assert done.returncode == 0, output[-12_000:]
    assert f"Tested: {len(ENDPOINTS)}" in output, output[-4_000:]  # every operation of the document


def test_schemathesis_finds_nothing_without_a_token(
    make_server: ServerFactory, pg_checkpointer: dict[str, Any], tmp_path: Path
) -> None:
    url = make_server(config={"checkpointer": pg_checkpointer}, graph=echo_graph())
    run_schemathesis(url, tmp_path)


def test_schemathesis_finds_nothing_with_a_token(
    make_server: ServerFactory, pg_checkpointer: dict[str, Any], tmp_path: Path
) -> None:
    url = make_server(
        config={"checkpointer": pg_checkpointer, "auth": "jwt"},
        env={"JWT_SECRET_KEY": SECRET},
        graph=echo_graph(),
    )
    token = jwt.encode({"sub": "alice", "exp": int(time.time()) + 600}, SECRET, "HS256")
    run_schemathesis(url, tmp_path, f"Authorization: Bearer {token}")
