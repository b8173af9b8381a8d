"""A three-step graph driven from a subprocess by the durability tests.

    python -m tests.checkpointer.crash_graph SPEC THREAD_ID (run|crash|resume|show)

`crash` kills its own process with SIGKILL inside node `b`, after `a` was checkpointed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from typing import Any

from agentflow.checkpointer import open_checkpointer
from agentflow.graph import END, START, AgentState, CompiledGraph, Message, StateGraph


class CountingState(AgentState):
    visits: list[str] = []


def build(crash: bool) -> CompiledGraph:
    def visit(name: str) -> Any:
        async def node(state: CountingState) -> dict[str, Any]:
            if crash and name == "b":
                os.kill(os.getpid(), signal.SIGKILL)
            return {
                "visits": [*state.visits, name],
                "messages": [Message.assistant(f"{name} saw {len(state.context)} messages")],
            }

        return node

    graph = StateGraph(CountingState)
    for name in ("a", "b", "c"):
        graph.add_node(name, visit(name))
    graph.add_edge(START, "a")
    graph.add_edge("a", "b")
    graph.add_edge("b", "c")
    graph.add_edge("c", END)
    return graph.compile()


async def main(spec: str, thread_id: str, mode: str) -> None:
    async with open_checkpointer(spec) as checkpointer:
        app = build(crash=mode == "crash").with_checkpointer(checkpointer)
        config = {"thread_id": thread_id, "user_id": "alice"}
        if mode in ("run", "crash"):
            await app.ainvoke({"messages": [{"role": "user", "content": "go"}]}, config)
        elif mode == "resume":
            await app.ainvoke(None, config)
        snapshot = await app.aget_snapshot(config)
        assert snapshot is not None
        state = snapshot.state
        assert isinstance(state, CountingState)
        print(
            json.dumps(
                {
                    "visits": state.visits,
                    "messages": [m.text for m in state.context],
                    "next": snapshot.next,
                    "status": snapshot.status,
                }
            )
        )


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
