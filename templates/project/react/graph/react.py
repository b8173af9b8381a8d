"""A ReAct agent: the model decides, the tools act. `app` is what agentflow serves."""

from __future__ import annotations

import logging
import os

from agentflow.models import ChatModel, DemoChat, OpenAIChat
from agentflow.tools import create_react_agent

from graph.tools import add, utc_time

logger = logging.getLogger("agentflow.project")


def choose_model() -> ChatModel:
    """A real OpenAI-compatible model when OPENAI_API_KEY is set, else the offline demo."""
    if os.environ.get("OPENAI_API_KEY"):
        return OpenAIChat(os.environ.get("OPENAI_MODEL", "gpt-4o-mini-2024-07-18"))
    logger.warning(
        "OPENAI_API_KEY is not set: using the offline demo model (DemoChat), which can only "
        "call the tools. Set OPENAI_API_KEY (and OPENAI_MODEL / OPENAI_BASE_URL) for a real one."
    )
    return DemoChat()


app = create_react_agent(
    choose_model(),
    [add, utc_time],
    system_prompt="You are a helpful assistant. Use the tools for arithmetic and the time.",
)
