"""A LangGraph ReAct agent: the model decides, the tools act. `graph` is what agentflow
serves (agentflow.json: "graph.agent:graph"); it keeps its threads in agentflow's store.

    START -> agent -> (tool calls?) -> tools -> agent -> ... -> END
"""

from __future__ import annotations

import os

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, SystemMessage
from langchain_core.runnables import RunnableLambda
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Checkpointer

from graph.offline import OfflineChat
from graph.tools import TOOLS

SYSTEM_PROMPT = (
    "You are a helpful assistant. Do arithmetic with the add, subtract, multiply and "
    "divide tools, one operation per call, and get the date and time from the "
    "current_time tool; never guess them."
)


def choose_model() -> BaseChatModel:
    """The model MODEL names ("provider:model", LangChain's init_chat_model), else the
    offline one. A real model needs its packages: pip install -e ".[openai]"."""
    name = os.environ.get("MODEL", "").strip()
    if not name:
        return OfflineChat()
    try:
        from langchain.chat_models import init_chat_model
    except ImportError:
        raise RuntimeError(
            f"MODEL={name} needs LangChain's init_chat_model, which is not installed; "
            'install it with: pip install -e ".[openai]" (or unset MODEL for the '
            "offline model)"
        ) from None
    return init_chat_model(name)


def tool_error(error: Exception) -> str:
    """What the model reads when a tool fails (a division by zero, an unknown zone)."""
    return f"Error: {error}"


def build_graph(
    model: BaseChatModel, checkpointer: Checkpointer = None
) -> CompiledStateGraph:
    """The agent on `model`; tests pass the offline model and a checkpointer here."""
    bound = model.bind_tools(TOOLS)

    def prompt(state: MessagesState) -> list[BaseMessage]:
        return [SystemMessage(SYSTEM_PROMPT), *state["messages"]]

    def agent(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [bound.invoke(prompt(state))]}

    async def aagent(state: MessagesState) -> dict[str, list[BaseMessage]]:
        return {"messages": [await bound.ainvoke(prompt(state))]}

    builder = StateGraph(MessagesState)
    # Sync for graph.invoke (a notebook), async for the server (no thread per call).
    builder.add_node("agent", RunnableLambda(agent, afunc=aagent))
    builder.add_node("tools", ToolNode(TOOLS, handle_tool_errors=tool_error))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition, ["tools", END])
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=checkpointer, name="agent")


graph = build_graph(choose_model())
