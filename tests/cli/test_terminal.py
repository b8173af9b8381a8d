"""`agentflow play --terminal`, driven through a real pseudo-terminal: streamed answers with
tool calls, threads, Ctrl-C that stops a run (not the program), interrupts, errors, exit."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pexpect
import pytest

from agentflow.checkpointer import SqliteCheckpointer
from agentflow_cli.init import create_project

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 15
PROMPT = "you> "

SLOW_GRAPH = """
import asyncio
from agentflow.graph import END, START, Message, StateGraph, interrupt

async def first(state):
    return Message.assistant("step one done")

async def second(state):
    text = next(m.text for m in reversed(state.context) if m.role == "user")
    if text == "sleep":
        await asyncio.sleep(5)
    if text == "ask":
        name = interrupt({"question": "what is your name?"})
        return Message.assistant(f"hello {name}")
    if text == "boom":
        raise ValueError("the node broke")
    return Message.assistant("echo: " + text)

graph = StateGraph()
graph.add_node("first", first)
graph.add_node("second", second)
graph.add_edge(START, "first")
graph.add_edge("first", "second")
graph.add_edge("second", END)
app = graph.compile(name="slow")
"""


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AGENTFLOW_"))}
    env.update(NO_COLOR="1", TERM="dumb", PYTHONPATH=str(ROOT))
    return env


@contextmanager
def terminal(config: Path) -> Iterator[pexpect.spawn]:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "agentflow_cli", "play", "--terminal", "--config", str(config)],
        cwd=str(config.parent),
        env=environment(),
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(40, 200),
    )
    try:
        yield child
    finally:
        child.close(force=True)


def react_project(tmp_path: Path) -> Path:
    target = tmp_path / "agent"
    create_project(target, template="react", name="agent")
    shutil.copy(target / ".env.example", target / ".env")
    return target / "agentflow.json"


def slow_project(tmp_path: Path, graph: str = SLOW_GRAPH) -> Path:
    (tmp_path / "graph").mkdir()
    (tmp_path / "graph" / "__init__.py").write_text("")
    (tmp_path / "graph" / "slow.py").write_text(graph)
    config = tmp_path / "agentflow.json"
    config.write_text(json.dumps({"graph": "graph.slow:app", "checkpointer": "sqlite"}))
    return config


def say(child: pexpect.spawn, text: str, *expected: str) -> None:
    """Send a line, wait for each expected text in order, then for the next prompt."""
    child.sendline(text)
    for item in expected:
        child.expect_exact(item)
    child.expect_exact(PROMPT)


def quit_cleanly(child: pexpect.spawn) -> None:
    child.sendline("/quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_chat_tools_and_threads(tmp_path: Path) -> None:
    with terminal(react_project(tmp_path)) as child:
        child.expect_exact("agentflow play --terminal")
        child.expect_exact("checkpointer  sqlite")
        child.expect(r"thread\s+([0-9a-f]{32})")
        first = child.match.group(1)
        child.expect_exact("/switch")
        child.expect_exact(PROMPT)

        say(child, "what is 2 + 3", "add(a=2, b=3)", "add: 5 ok", "agent> The add tool returned: 5")
        child.sendline("/new")
        child.expect(r"new thread ([0-9a-f]{32})")
        second = child.match.group(1)
        assert second != first
        child.expect_exact(PROMPT)
        say(child, "hello there", "agent> ", "offline demo model")

        child.sendline("/threads")
        child.expect(rf"\* {second}  hello there  2 messages")
        child.expect(rf"  {first}  what is 2 \+ 3  4 messages")
        child.expect_exact(PROMPT)

        child.sendline(f"/switch {first}")
        child.expect_exact(f"switched to thread {first}")
        child.expect_exact("you> what is 2 + 3")
        child.expect_exact("add(a=2, b=3)")
        child.expect_exact("agent> The add tool returned: 5")
        child.expect_exact(PROMPT)
        say(child, "/switch nope", "no thread 'nope'; /threads lists yours")
        say(child, "/bogus", "unknown command /bogus")
        child.sendeof()  # Ctrl-D exits 0 too
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0


def test_ctrl_c_stops_the_run_not_the_program(tmp_path: Path) -> None:
    config = slow_project(tmp_path)
    with terminal(config) as child:
        child.expect(r"thread\s+([0-9a-f]{32})")
        thread_id = child.match.group(1)
        child.expect_exact(PROMPT)
        child.sendline("sleep")
        child.expect_exact("agent> step one done")
        child.expect(r"first \d+\.\d ms")  # the first step is done and checkpointed
        time.sleep(0.3)  # well inside the 5 s sleep of the second node
        started = time.monotonic()
        child.sendintr()
        child.expect_exact("stopped", timeout=2)
        child.expect_exact(PROMPT, timeout=2)
        assert time.monotonic() - started < 2
        assert child.isalive()

        say(child, "/history", "you> sleep", "agent> step one done")
        say(child, "ping", "agent> step one done", "agent> echo: ping")
        say(child, "ask", "? what is your name?", "your next line is the answer")
        say(child, "Ada", "agent> hello Ada")
        say(child, "boom", "error: node 'second' failed: ValueError: the node broke")
        assert "Traceback" not in (child.before or "")
        child.sendintr()  # at the prompt: a hint, not an exit
        child.expect_exact("/quit")
        child.expect_exact(PROMPT)
        quit_cleanly(child)

    async def stored() -> tuple[str | None, list[str]]:
        async with SqliteCheckpointer(tmp_path / ".agentflow" / "state.db") as cp:
            messages = await cp.get_messages(thread_id)
            history = await cp.list_history(thread_id, limit=100)
            cancelled = [c for c in history if c.status == "cancelled"]
            return (cancelled[0].node if cancelled else None), [m.text for m in messages]

    cancelled_node, texts = asyncio.run(stored())
    assert cancelled_node == "second"  # the stop was recorded where it happened
    # The stopped run kept its completed step and nothing of the step it was in.
    assert texts[:2] == ["sleep", "step one done"]
    assert texts[2:4] == ["ping", "step one done"]


def test_import_error_exits_3_without_traceback(tmp_path: Path) -> None:
    config = slow_project(tmp_path, graph="import not_a_module_anywhere\n")
    result = subprocess.run(
        [sys.executable, "-m", "agentflow_cli", "play", "--terminal", "--config", str(config)],
        cwd=tmp_path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 3, result.stderr
    assert "cannot load the graph" in result.stderr
    assert "not_a_module_anywhere" in result.stderr
    assert "hint:" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert PROMPT not in result.stdout


@pytest.mark.parametrize("line", ["/quit", "/exit"])
def test_quit(tmp_path: Path, line: str) -> None:
    with terminal(slow_project(tmp_path)) as child:
        child.expect_exact(PROMPT)
        child.sendline(line)
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
        assert not re.search(r"Traceback", child.before or "")
