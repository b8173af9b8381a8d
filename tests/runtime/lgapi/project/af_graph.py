"""The agentflow graph of the conformance tests: the same behaviour as `lg_graph.agent`
(an "echo: <text>" answer streamed word by word, "sleep <seconds> ..." first waits) plus the
`approve` behaviour on the message "ask" (an interrupt answered by `command.resume`)."""

from __future__ import annotations

import asyncio

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


async def respond(state: AgentState) -> Message:
    text = state.context[-1].text
    if text.startswith("sleep "):
        await asyncio.sleep(float(text.split()[1]))
    if text == "ask":
        decision = interrupt({"question": "approve?", "about": text})
        return Message.assistant(f"decision: {decision}")
    reply = Message.assistant(f"echo: {text}")
    for i, word in enumerate(reply.text.split(" ")):  # the deltas add up to the reply
        emit_delta(word if i == 0 else " " + word, message_id=reply.id)
        await asyncio.sleep(0)
    return reply


def build() -> CompiledGraph:
    graph = StateGraph()
    graph.add_node("respond", respond)
    graph.add_edge(START, "respond")
    graph.add_edge("respond", END)
    return graph.compile(name="echo")


app = build()
