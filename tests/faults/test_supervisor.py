"""Workers that hang, crash or stall their event loop: `agentflow api --workers 2` processes
(production mode: JSON logs) serving a graph whose node misbehaves on demand. The supervisor's
kills and restarts and every event-loop stall over a second must be in the log."""

from __future__ import annotations

import contextlib
import json
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.faults.conftest import PG_DSN, Cluster, Server, deadline_loop, new_thread

pytestmark = pytest.mark.slow

# The node is called "lookup" (its function "respond"): the stall log names the node.
GRAPH = textwrap.dedent(
    """
    import asyncio
    import os
    import re
    import time

    from agentflow.graph import END, START, Message, StateGraph

    async def respond(state):
        text = state.context[-1].text
        if text.startswith("block "):
            time.sleep(float(text.split()[1]))  # a blocking call in an async node
        if text == "hog":
            # Catastrophic backtracking: C code that never lets go of the interpreter, so
            # the worker cannot answer its supervisor's health check either.
            re.fullmatch(r"(a+)+b", "a" * 64)
        if text == "exit":
            os._exit(3)
        if text.startswith("sleep "):
            await asyncio.sleep(float(text.split()[1]))
        return Message.assistant("echo: " + text)

    graph = StateGraph()
    graph.add_node("lookup", respond)
    graph.add_edge(START, "lookup")
    graph.add_edge("lookup", END)
    app = graph.compile()
    """
)
BLOCKING_LINE = 1 + GRAPH.splitlines().index(
    "        time.sleep(float(text.split()[1]))  # a blocking call in an async node"
)


@dataclass
class ProjectCluster(Cluster):
    """A Cluster whose servers serve `graph` (the source of graph/react.py)."""

    graph: str = GRAPH

    def project(self, dsn: str, redis_url: str | None) -> Path:
        project = super().project(dsn, redis_url)
        (project / "graph" / "react.py").write_text(self.graph)
        return project


@pytest.fixture
def workers(tmp_path: Path, pg_schema: str) -> Iterator[ProjectCluster]:
    group = ProjectCluster(tmp_path, pg_schema)
    yield group
    problems = group.stop_all()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def records(server: Server) -> list[dict[str, Any]]:
    """The server's JSON log records (lines that are not JSON are left out)."""
    found = []
    for line in server.output().splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                found.append(record)
    return found


def wait_for_record(server: Server, words: tuple[str, ...], timeout: float) -> dict[str, Any]:
    """The first log record whose message has all `words`, waiting up to `timeout`."""
    for _ in deadline_loop(timeout, 0.2):
        for record in records(server):
            if all(word in record.get("message", "") for word in words):
                return record
    raise AssertionError(f"no log record with {words} in:\n{server.output()}")


def wait_serving(server: Server, count: int, timeout: float = 30) -> None:
    """Until the supervisor has seen `count` workers finish starting."""
    for _ in deadline_loop(timeout, 0.2):
        if sum("is serving" in r.get("message", "") for r in records(server)) >= count:
            return
    raise AssertionError(f"fewer than {count} workers serving:\n{server.output()}")


def send_and_forget(server: Server, text: str) -> None:
    """Invoke in the background of the server: the worker that takes it may die."""
    with contextlib.suppress(httpx.HTTPError):
        server.invoke(new_thread(), text, timeout=1)


PRODUCTION = {"MODE": "production", "LOG_LEVEL": "INFO"}


def test_a_hung_worker_is_killed_restarted_and_both_are_logged(workers: ProjectCluster) -> None:
    (server,) = workers.start(workers=2, dsn=PG_DSN, env=PRODUCTION)
    wait_serving(server, 2)
    send_and_forget(server, "hog")
    killed = wait_for_record(server, ("did not answer",), timeout=30)
    assert killed["level"] == "ERROR"
    assert killed["logger"].startswith("agentflow")
    pid = killed["pid"]
    restarted = wait_for_record(server, ("started worker", f"in place of worker [{pid}]"), 30)
    assert restarted["level"] == "WARNING"
    assert restarted["replaced_pid"] == pid
    wait_serving(server, 3)  # the replacement too
    for _ in range(10):  # both workers serve again
        assert server.invoke(new_thread(), "hi").status_code == 200


def test_a_crashed_worker_is_logged_with_its_exit_code(workers: ProjectCluster) -> None:
    (server,) = workers.start(workers=2, dsn=PG_DSN, env=PRODUCTION)
    wait_serving(server, 2)
    send_and_forget(server, "exit")
    died = wait_for_record(server, ("exited with code 3",), timeout=30)
    assert died["level"] == "ERROR"
    assert died["exit_code"] == 3
    wait_for_record(server, ("started worker", f"in place of worker [{died['pid']}]"), 30)
    wait_serving(server, 3)
    # uvicorn's own supervisor takes exit code 3 for a failed startup and stops the server.
    for _ in range(10):
        assert server.invoke(new_thread(), "hi").status_code == 200


def test_an_event_loop_stall_is_logged_with_its_node(workers: ProjectCluster) -> None:
    (server,) = workers.start(workers=2, dsn=PG_DSN, env=PRODUCTION)
    assert server.invoke(new_thread(), "block 2").status_code == 200
    stall = wait_for_record(server, ("event loop blocked for",), timeout=10)
    assert stall["level"] == "WARNING"
    assert stall["node"] == "lookup"
    assert stall["location"].endswith(f"graph/react.py:{BLOCKING_LINE}")
    assert "in node lookup" in stall["message"]
    assert 1.9 <= stall["blocked_s"] < 10
    # A stall that goes on is logged while it lasts (the supervisor may kill the worker
    # before it ends), once.
    assert server.invoke(new_thread(), "block 5").status_code == 200
    long = wait_for_record(server, ("event loop blocked for", "and counting"), timeout=10)
    assert long["level"] == "ERROR"
    assert long["node"] == "lookup"
    stalls = [r for r in records(server) if "event loop blocked" in r.get("message", "")]
    assert [r["level"] for r in stalls] == ["WARNING", "ERROR"], stalls
    # A worker blocked in a call that lets go of the interpreter still answers the
    # supervisor: it is not killed.
    assert not [r for r in records(server) if "did not answer" in r.get("message", "")]
