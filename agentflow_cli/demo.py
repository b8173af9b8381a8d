"""`make demo`: a ReAct agent on the offline demo model, streamed, persisted to SQLite.

Run it twice: the second run continues the same thread from `.agentflow/demo.db`, which is
what survives a restart. (Replaced by `agentflow init` + `agentflow api` once they land.)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
from pathlib import Path

from agentflow.checkpointer import SqliteCheckpointer
from agentflow.graph import StreamEvent
from agentflow.models import DemoChat
from agentflow.tools import create_react_agent, tool

DB = Path(".agentflow") / "demo.db"
THREAD = "demo"
QUESTIONS = ["what is 12 + 30", "what time is it in UTC", "write me a poem about databases"]


@tool
def add(a: float, b: float) -> float:
    """Add two numbers.

    Args:
        a: the first number
        b: the second number
    """
    return a + b


@tool(read_only=True)
def utc_time() -> str:
    """The current UTC time and clock, ISO-8601."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


async def main() -> None:
    async with SqliteCheckpointer(DB) as checkpointer:
        app = create_react_agent(DemoChat(), [add, utc_time], checkpointer=checkpointer)
        config = {"thread_id": THREAD, "user_id": "demo"}
        before = await app.aget_state(config)
        turns = len(before.context) if before else 0
        print(f"thread {THREAD!r} in {DB}: {turns} messages so far\n")
        for question in QUESTIONS:
            print(f"user> {question}")
            async for chunk in app.astream(
                {"messages": [{"role": "user", "content": question}]}, config
            ):
                if chunk.event == StreamEvent.DELTA:
                    print(chunk.data["delta"], end="", flush=True)
                elif chunk.event == StreamEvent.MESSAGE and chunk.message is not None:
                    m = chunk.message
                    if m.tool_calls:
                        for call in m.tool_calls:
                            print(f"  [tool call] {call.name}({call.arguments})")
                    elif m.role == "tool":
                        print(f"  [tool result] {m.name}: {m.text}")
                    else:
                        print()
                elif chunk.event == StreamEvent.NODE_END:
                    print(f"  [{chunk.node} {chunk.data['duration_ms']:.1f} ms]")
            print()
        after = await app.aget_state(config)
        assert after is not None
        print(f"thread {THREAD!r} now has {len(after.context)} messages; run again to continue it.")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
