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

from agentflow.checkpointer import Checkpointer, InMemoryCheckpointer
from agentflow.graph import (
    END,
    START,
    AgentState,
    Command,
    CompiledGraph,
    Message,
    NodeError,
    StateGraph,
    ToolCall,
    interrupt,
)
from agentflow.models import ScriptedChat
from agentflow.tools import ToolContext, ToolNode, tool
from agentflow.tools.react import tools_condition
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
def crash_spec(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store another process can resume from: SQLite or Postgres."""
    if request.param == "sqlite":
        yield f"sqlite:{tmp_path / 'state.db'}"
        return
    require_postgres()
    value = pg_spec(tmp_path)
    yield value
    asyncio.run(drop_schema(value))


def test_resume_after_a_crash_does_not_repeat_a_completed_tool_call(
    crash_spec: str, tmp_path: Path
) -> None:
    log = tmp_path / "executions.jsonl"
    crashed = run_agent(crash_spec, log, "crash")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    before = read_log(log)
    assert sorted(e["tool"] for e in before) == ["charge", "lookup"]
    crashed_pid = before[0]["pid"]

    resumed = run_agent(crash_spec, log, "resume")
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


# -- a step that fails (or is cancelled, or paused) after a tool completed, then is retried ----


class PaymentAgent:
    """agent -> tools -> agent, where `tools` runs a ToolNode with a side-effecting `charge`
    and then does more work of its own that fails (or blocks, or asks for approval) while
    `attempts_left_to_fail` is positive: the failure comes after the charge has completed."""

    def __init__(self, checkpointer: Checkpointer, *, after: str = "fail", fails: int = 1) -> None:
        self.executions: list[tuple[int, str]] = []  # (step, idempotency key) per charge run
        self.node_steps: list[int] = []  # config["step"] of every attempt of the tools step
        self.attempt_keys: list[str] = []  # the charge's idempotency key in every attempt
        self.after = after
        self.attempts_left_to_fail = fails
        self.blocked = asyncio.Event()

        @tool
        def charge(amount: int, ctx: ToolContext) -> str:
            """Charge the customer (must happen once)."""
            self.executions.append((ctx.step, ctx.idempotency_key))
            return f"charged {amount}"

        tool_node = ToolNode([charge])

        async def tools(state: AgentState, config: dict[str, Any]) -> list[Message]:
            self.node_steps.append(config["step"])
            (call,) = state.context[-1].tool_calls
            ctx = ToolContext(config["thread_id"], config["run_id"], "", call.id, config["step"])
            self.attempt_keys.append(ctx.idempotency_key)
            results = await tool_node(state, config)
            if self.after == "interrupt":
                interrupt("approve the receipt?")
            elif self.after in ("fail", "block") and self.attempts_left_to_fail > 0:
                self.attempts_left_to_fail -= 1
                if self.after == "block":
                    self.blocked.set()
                    await asyncio.Event().wait()  # until the run is cancelled
                if self.after == "fail":
                    raise ConnectionError("the receipt service is down")
            return results

        def route(state: AgentState) -> str:
            if self.after == "route" and self.attempts_left_to_fail > 0:
                self.attempts_left_to_fail -= 1
                raise ConnectionError("the router's lookup is down")
            return "agent"

        model = ScriptedChat(
            [{"tool_calls": [{"name": "charge", "arguments": {"amount": 5}}]}, "paid"]
        )

        async def agent(state: AgentState) -> Message:
            return await model.ainvoke(state.context, tools=tool_node.schemas)

        graph = StateGraph(AgentState)
        graph.add_node("agent", agent)
        graph.add_node("tools", tools)
        graph.add_edge(START, "agent")
        graph.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
        graph.add_conditional_edges("tools", route, {"agent": "agent"})
        self.app: CompiledGraph = graph.compile(checkpointer=checkpointer)
        self.checkpointer = checkpointer


PAY = {"messages": [{"role": "user", "content": "pay 5"}]}


async def assert_charged_once_and_replayed(agent: PaymentAgent, config: dict[str, Any]) -> None:
    result = await agent.app.ainvoke(None, config)  # the retry: continue the thread
    assert result.status == "done"
    assert len(agent.executions) == 1  # the charge ran exactly once over all attempts
    ((step, key),) = agent.executions
    assert len(agent.node_steps) >= 2
    assert set(agent.node_steps) == {step}  # every attempt ran under the same step number
    assert set(agent.attempt_keys) == {key}  # ... and so with the same idempotency key
    tool_messages = [m for m in result.state.context if m.role == "tool"]
    assert len(tool_messages) == 1
    (charged,) = tool_messages
    assert charged.text == "charged 5" and charged.metadata["replayed"] is True
    assert [m.text for m in result.messages] == ["charged 5", "paid"]
    call = next(m for m in result.state.context if m.tool_calls).tool_calls[0]
    ctx = ToolContext(config["thread_id"], "", "", call.id, step)
    assert ctx.idempotency_key == key  # the key the tool saw is the key that was recorded
    recorded = await agent.checkpointer.get_tool_results(config["thread_id"], [key])
    assert recorded[key].text == "charged 5"


async def test_a_failed_step_retried_does_not_repeat_a_completed_tool_call(
    cp: Checkpointer,
) -> None:
    agent = PaymentAgent(cp)
    config = {"thread_id": "pay-1", "user_id": "alice"}
    with pytest.raises(NodeError, match="receipt service is down"):
        await agent.app.ainvoke(PAY, config)
    assert len(agent.executions) == 1

    snapshot = await agent.app.aget_snapshot(config)  # the failure is visible as before
    assert snapshot is not None
    assert (snapshot.status, snapshot.next) == ("error", ["tools"])
    assert not any(m.role == "tool" for m in snapshot.state.context)  # nothing committed
    history = await cp.list_history("pay-1", limit=50)
    assert [(c.source, c.node, c.status) for c in reversed(history)] == [
        ("input", None, "running"),
        ("node", "agent", "running"),
        ("error", "tools", "error"),
    ]
    await assert_charged_once_and_replayed(agent, config)


async def test_a_step_failing_on_every_retry_keeps_its_step_number(
    cp: Checkpointer,
) -> None:
    agent = PaymentAgent(cp, fails=3)
    config = {"thread_id": "pay-2", "user_id": "alice"}
    with pytest.raises(NodeError):
        await agent.app.ainvoke(PAY, config)
    for _ in range(2):
        with pytest.raises(NodeError):
            await agent.app.ainvoke(None, config)
    history = await cp.list_history("pay-2", limit=50)
    failed = [c for c in reversed(history) if c.status == "error"]
    assert [c.step for c in failed] == [3, 4, 5]  # each failure is its own checkpoint
    assert [c.metadata["attempt_step"] for c in failed] == [3, 3, 3]  # of the same step
    assert len(agent.node_steps) == 3
    await assert_charged_once_and_replayed(agent, config)
    assert len(agent.node_steps) == 4


async def test_a_step_whose_router_fails_retried_does_not_repeat_a_completed_tool_call(
    cp: Checkpointer,
) -> None:
    agent = PaymentAgent(cp, after="route")
    config = {"thread_id": "pay-3"}
    with pytest.raises(NodeError, match=r"'tools'.*router's lookup is down"):
        await agent.app.ainvoke(PAY, config)
    snapshot = await agent.app.aget_snapshot(config)
    assert snapshot is not None and (snapshot.status, snapshot.next) == ("error", ["tools"])
    await assert_charged_once_and_replayed(agent, config)


async def test_a_cancelled_step_resumed_does_not_repeat_a_completed_tool_call(
    cp: Checkpointer,
) -> None:
    agent = PaymentAgent(cp, after="block")
    config = {"thread_id": "pay-4"}
    task = asyncio.create_task(agent.app.ainvoke(PAY, config))
    await asyncio.wait_for(agent.blocked.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    snapshot = await agent.app.aget_snapshot(config)
    assert snapshot is not None and (snapshot.status, snapshot.next) == ("cancelled", ["tools"])
    await assert_charged_once_and_replayed(agent, config)


async def test_a_step_paused_by_interrupt_resumed_does_not_repeat_a_completed_tool_call(
    cp: Checkpointer,
) -> None:
    """The node runs again from its start on resume: the charge is replayed, not repeated."""
    agent = PaymentAgent(cp, after="interrupt")
    config = {"thread_id": "pay-5"}
    paused = await agent.app.ainvoke(PAY, config)
    assert paused.status == "interrupted"
    result = await agent.app.ainvoke(Command(resume="yes"), config)
    assert result.status == "done"
    ((step, key),) = agent.executions
    assert agent.node_steps == [step, step]
    assert agent.attempt_keys == [key, key]
    charged = next(m for m in result.state.context if m.role == "tool")
    assert charged.metadata["replayed"] is True
