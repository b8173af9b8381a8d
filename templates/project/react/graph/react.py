"""A ReAct agent: the model decides, the tools act. `app` is what agentflow serves."""

from __future__ import annotations

import logging
import os

from agentflow.graph import CompiledGraph
from agentflow.models import ChatModel, DemoChat, OpenAIChat
from agentflow.tools import create_react_agent

from graph.tools import add, current_time

# Pinned on purpose: a moving alias ("...-latest") can change the agent without notice.
DEFAULT_MODEL = "gpt-4o-mini-2024-07-18"
SYSTEM_PROMPT = (
    "You are a helpful assistant. Use the add tool for arithmetic and the current_time "
    "tool for the date and time; never guess them."
)

logger = logging.getLogger("agentflow.project")


def choose_model() -> ChatModel:
    """An OpenAI-compatible model when OPENAI_API_KEY is set, else the offline demo."""
    if os.environ.get("OPENAI_API_KEY"):
        return OpenAIChat(os.environ.get("OPENAI_MODEL") or DEFAULT_MODEL)
    logger.warning(
        "OPENAI_API_KEY is not set: using the offline demo model (DemoChat), which can "
        "only call the tools. Set OPENAI_API_KEY (and OPENAI_MODEL, OPENAI_BASE_URL) "
        "for a real model."
    )
    return DemoChat()


def build_agent(model: ChatModel) -> CompiledGraph:
    """The agent on `model`; tests pass a scripted model here."""
    return create_react_agent(model, [add, current_time], system_prompt=SYSTEM_PROMPT)


app = build_agent(choose_model())
