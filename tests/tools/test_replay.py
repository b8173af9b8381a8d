"""Replay-safe tools: a completed tool call is recorded in the checkpointer and never runs
again when its step is resumed after a crash; read-only tools simply run again."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentflow.checkpointer import InMemoryCheckpointer
from agentflow.graph import AgentState, Message, ToolCall
from agentflow.tools import ToolContext, ToolNode, tool
from tests.checkpointer.conftest import drop_schema, pg_spec, require_postgres

ROOT = Path(__file__).resolve().parents[2]


def run_agent(spec: str, log: Path, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.tools.replay_agent", spec, "t1", str(log), mode],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def read_log(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


@pytest.fixture(params=["sqlite", "postgres"])
def spec(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:{tmp_path / 'state.db'}"
        return
    require_postgres()
    value = pg_spec(tmp_path)
    yield value
    asyncio.run(drop_schema(value))


def test_resume_after_a_crash_does_not_repeat_a_completed_tool_call(
    spec: str, tmp_path: Path
) -> None:
    log = tmp_path / "executions.jsonl"
    crashed = run_agent(spec, log, "crash")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    before = read_log(log)
    assert sorted(e["tool"] for e in before) == ["charge", "lookup"]
    crashed_pid = before[0]["pid"]

    resumed = run_agent(spec, log, "resume")
    assert resumed.returncode == 0, resumed.stderr
    out = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert out["status"] == "done"

    runs = read_log(log)
    charges = [e for e in runs if e["tool"] == "charge"]
    lookups = [e for e in runs if e["tool"] == "lookup"]
    assert len(charges) == 1 and charges[0]["pid"] == crashed_pid  # ran exactly once overall
    assert len(lookups) == 2  # the read-only tool simply ran again
    assert lookups[0]["pid"] == crashed_pid != lookups[1]["pid"]

    # One result per call, in call order; the charge result was replayed from the record.
    messages = out["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool", "assistant"]
    assert [m["text"] for m in messages[2:]] == ["charged 5", "balance: 100", "all done"]
    assert [m["replayed"] for m in messages[2:4]] == [True, False]
    assert messages[2]["tool_call_id"] != messages[3]["tool_call_id"]


def test_the_idempotency_key_is_the_same_in_the_crashed_and_the_resumed_attempt(
    tmp_path: Path,
) -> None:
    log = tmp_path / "executions.jsonl"
    spec = f"sqlite:{tmp_path / 'state.db'}"
    assert run_agent(spec, log, "crash").returncode == -signal.SIGKILL
    assert run_agent(spec, log, "resume").returncode == 0
    crashed, resumed = [e for e in read_log(log) if e["tool"] == "lookup"]
    assert crashed["pid"] != resumed["pid"]
    assert crashed["step"] == resumed["step"]  # the resumed step keeps its step number
    assert crashed["key"] == resumed["key"]
    (charge,) = [e for e in read_log(log) if e["tool"] == "charge"]
    assert charge["step"] == crashed["step"] and charge["key"] != crashed["key"]


# -- ToolNode with a checkpointer, in process ----------------------------------------------


def counting_tools() -> tuple[ToolNode, dict[str, int]]:
    counts = {"send": 0, "read": 0, "flaky": 0}

    @tool
    def send(to: str) -> str:
        """Send a message (a side effect)."""
        counts["send"] += 1
        return f"sent to {to}"

    @tool(read_only=True)
    def read(path: str) -> str:
        """Read a file."""
        counts["read"] += 1
        return f"contents of {path}"

    @tool
    def flaky(x: int) -> str:
        """Fails on its first run."""
        counts["flaky"] += 1
        if counts["flaky"] == 1:
            raise RuntimeError("temporary outage")
        return f"ok {x}"

    return ToolNode([send, read, flaky]), counts


def state_with(*calls: ToolCall) -> AgentState:
    return AgentState(context=[Message.user("go"), Message.assistant("", tool_calls=list(calls))])


CALLS = (
    ToolCall("send", {"to": "bob"}, id="c1"),
    ToolCall("read", {"path": "a.txt"}, id="c2"),
    ToolCall("flaky", {"x": 1}, id="c3"),
)


async def test_a_retried_step_reuses_recorded_results_and_reruns_the_rest() -> None:
    node, counts = counting_tools()
    cp = InMemoryCheckpointer()
    config = {"thread_id": "t1", "run_id": "r1", "user_id": "u", "step": 3, "checkpointer": cp}
    first = await node(state_with(*CALLS), config)
    assert [m.metadata["status"] for m in first] == ["ok", "ok", "error"]
    key = ToolContext("t1", "r1", "u", "c1", 3).idempotency_key
    recorded = await cp.get_tool_results("t1", [key])
    assert recorded[key].text == "sent to bob"
    read_key = ToolContext("t1", "r1", "u", "c2", 3).idempotency_key
    assert await cp.get_tool_results("t1", [read_key]) == {}  # read-only: not recorded

    again = await node(state_with(*CALLS), {**config, "run_id": "r2"})
    assert counts == {"send": 1, "read": 2, "flaky": 2}  # the failed call was retried
    assert [m.text for m in again] == ["sent to bob", "contents of a.txt", "ok 1"]
    assert [m.tool_call_id for m in again] == ["c1", "c2", "c3"]
    assert [bool(m.metadata.get("replayed")) for m in again] == [True, False, False]

    await node(state_with(*CALLS), {**config, "step": 5})  # another step: a new call
    assert counts["send"] == 2


async def test_without_a_checkpointer_every_call_runs() -> None:
    node, counts = counting_tools()
    config = {"thread_id": "t1", "step": 3}
    for _ in range(2):
        messages = await node(state_with(*CALLS[:2]), config)
        assert not any(m.metadata.get("replayed") for m in messages)
    assert counts == {"send": 2, "read": 2, "flaky": 0}


async def test_a_graph_hands_its_checkpointer_to_the_tools_node() -> None:
    from agentflow.models import ScriptedChat
    from agentflow.tools import create_react_agent

    node, counts = counting_tools()
    model = ScriptedChat([{"tool_calls": [{"name": "send", "arguments": {"to": "x"}}]}, "ok"])
    cp = InMemoryCheckpointer()
    app = create_react_agent(model, list(node.tools.values()), checkpointer=cp)
    result = await app.ainvoke(
        {"messages": [{"role": "user", "content": "go"}]}, {"thread_id": "t"}
    )
    (call,) = next(m for m in result.messages if m.tool_calls).tool_calls
    tool_step = next(c.step for c in await cp.list_history("t", limit=50) if c.node == "tools")
    key = ToolContext("t", result.run_id, "anonymous", call.id, tool_step).idempotency_key
    assert (await cp.get_tool_results("t", [key]))[key].text == "sent to x"
    assert counts["send"] == 1
