"""One node that answers with a chat model. `app` is what agentflow serves.

Grow it with more nodes and edges; `agentflow init --template react` shows tools.
"""

from __future__ import annotations

import os

from agentflow.graph import END, START, AgentState, CompiledGraph, Message, StateGraph
from agentflow.models import ChatModel, DemoChat, OpenAIChat, call_model

# Pinned on purpose: a moving alias ("...-latest") can change the agent without notice.
DEFAULT_MODEL = "gpt-4o-mini-2024-07-18"
SYSTEM_PROMPT = "You are a helpful assistant. Answer briefly."


def choose_model() -> ChatModel:
    """An OpenAI-compatible model when OPENAI_API_KEY is set, else the offline demo (the
    server logs a warning when it serves an offline model)."""
    if os.environ.get("OPENAI_API_KEY"):
        return OpenAIChat(os.environ.get("OPENAI_MODEL") or DEFAULT_MODEL)
    return DemoChat()


def build_graph(model: ChatModel) -> CompiledGraph:
    """START -> respond -> END; tests pass a scripted model here."""

    async def respond(state: AgentState) -> Message:
        return await call_model(model, [Message.system(SYSTEM_PROMPT), *state.context])

    graph = StateGraph()
    graph.add_node("respond", respond)
    graph.add_edge(START, "respond")
    graph.add_edge("respond", END)
    return graph.compile(name="minimal")


app = build_graph(choose_model())
