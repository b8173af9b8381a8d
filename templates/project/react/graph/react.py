"""A ReAct agent: the model decides, the tools act. `app` is what agentflow serves."""

from __future__ import annotations

import os

from agentflow.graph import CompiledGraph
from agentflow.models import ChatModel, DemoChat, OpenAIChat
from agentflow.tools import create_react_agent

from graph.tools import add, current_time, divide, multiply, subtract

# Pinned on purpose: a moving alias ("...-latest") can change the agent without notice.
DEFAULT_MODEL = "gpt-4o-mini-2024-07-18"
SYSTEM_PROMPT = (
    "You are a helpful assistant. Do arithmetic with the add, subtract, multiply and "
    "divide tools, one operation per call, and get the date and time from the "
    "current_time tool; never guess them."
)
TOOLS = [add, subtract, multiply, divide, current_time]


def choose_model() -> ChatModel:
    """An OpenAI-compatible model when OPENAI_API_KEY is set, else the offline demo (the
    server logs a warning when it serves an offline model)."""
    if os.environ.get("OPENAI_API_KEY"):
        return OpenAIChat(os.environ.get("OPENAI_MODEL") or DEFAULT_MODEL)
    return DemoChat()


def build_agent(model: ChatModel) -> CompiledGraph:
    """The agent on `model`; tests pass a scripted model here."""
    return create_react_agent(model, TOOLS, system_prompt=SYSTEM_PROMPT)


app = build_agent(choose_model())
