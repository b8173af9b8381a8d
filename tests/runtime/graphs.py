"""Graphs the runtime tests serve. Behaviour is driven by the user's message text."""

from __future__ import annotations

import asyncio
from typing import Any

from agentflow.graph import (
    END,
    START,
    AgentState,
    CompiledGraph,
    Message,
    StateGraph,
    emit_delta,
    interrupt,
)

SECRET_ERROR = "connect failed: password=hunter2 url=postgres://u:p@h/db"


async def respond(state: AgentState) -> Message:
    text = state.context[-1].text
    if text.startswith("sleep "):
        await asyncio.sleep(float(text.split()[1]))
    if text == "fail":
        raise RuntimeError(SECRET_ERROR)
    if text == "ask":
        answer = interrupt({"question": "are you sure?"})
        return Message.assistant(f"you answered {answer}")
    if text.startswith("stream "):
        reply = Message.assistant(text[len("stream ") :])
        for word in reply.text.split():
            emit_delta(word + " ", message_id=reply.id)
            await asyncio.sleep(0)
        return reply
    reply = Message.assistant(f"echo: {text}")
    return reply


def build() -> CompiledGraph:
    graph = StateGraph()
    graph.add_node("respond", respond)
    graph.add_edge(START, "respond")
    graph.add_edge("respond", END)
    return graph.compile(name="test")


def build_loop() -> CompiledGraph:
    async def spin(state: AgentState) -> dict[str, Any]:
        return {}

    graph = StateGraph()
    graph.add_node("spin", spin)
    graph.add_edge(START, "spin")
    graph.add_conditional_edges("spin", lambda s: "spin", ["spin", END])
    return graph.compile(name="loop")


echo = build()
loop = build_loop()
