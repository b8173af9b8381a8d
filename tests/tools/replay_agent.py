"""A ReAct agent with one side-effecting and one read-only tool, driven from a subprocess
by the replay tests.

    python -m tests.tools.replay_agent SPEC THREAD_ID LOG_FILE (crash|resume)

Every tool execution appends a JSON line (tool, idempotency key, step, pid) to LOG_FILE.
`crash` asks for both tools at once; the read-only `lookup` waits until `charge` has
completed and its result is recorded in the checkpointer, then SIGKILLs its own process:
the kill lands between the tool's completion and the tools node's checkpoint.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from agentflow.checkpointer import Checkpointer, open_checkpointer
from agentflow.graph import CompiledGraph
from agentflow.models import ScriptedChat
from agentflow.tools import ToolContext, create_react_agent, tool

TOOL_CALLS = {
    "tool_calls": [
        {"name": "charge", "arguments": {"amount": 5}},
        {"name": "lookup", "arguments": {"query": "balance"}},
    ]
}


def log_line(path: Path, name: str, ctx: ToolContext) -> None:
    entry = {"tool": name, "key": ctx.idempotency_key, "step": ctx.step, "pid": os.getpid()}
    with path.open("a") as f:
        f.write(json.dumps(entry) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_log(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def build(checkpointer: Checkpointer, log: Path, crash: bool) -> CompiledGraph:
    @tool
    def charge(amount: int, ctx: ToolContext) -> str:
        """Charge the customer (a side effect that must happen once)."""
        log_line(log, "charge", ctx)
        return f"charged {amount}"

    @tool(read_only=True)
    async def lookup(query: str, ctx: ToolContext) -> str:
        """Look something up (free to run again)."""
        log_line(log, "lookup", ctx)
        if crash:
            for _ in range(200):  # until charge has run and its result is recorded
                keys = [str(e["key"]) for e in read_log(log) if e["tool"] == "charge"]
                if keys and await checkpointer.get_tool_results(ctx.thread_id, keys):
                    os.kill(os.getpid(), signal.SIGKILL)
                await asyncio.sleep(0.05)
            raise RuntimeError("charge was never recorded")
        return f"{query}: 100"

    script = [TOOL_CALLS, "all done"] if crash else ["all done"]
    return create_react_agent(ScriptedChat(script), [charge, lookup], checkpointer=checkpointer)


async def main(spec: str, thread_id: str, log: str, mode: str) -> None:
    async with open_checkpointer(spec) as checkpointer:
        app = build(checkpointer, Path(log), crash=mode == "crash")
        config = {"thread_id": thread_id, "user_id": "alice"}
        if mode == "crash":
            await app.ainvoke({"messages": [{"role": "user", "content": "pay"}]}, config)
        else:
            await app.ainvoke(None, config)
        snapshot = await app.aget_snapshot(config)
        assert snapshot is not None
        messages = [
            {
                "role": m.role,
                "text": m.text,
                "tool_call_id": m.tool_call_id,
                "replayed": bool(m.metadata.get("replayed")),
            }
            for m in snapshot.state.context
        ]
        print(json.dumps({"status": snapshot.status, "messages": messages}))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
