"""A prebuilt ReAct agent: the model decides, tools act, until the model answers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from agentflow.graph.builder import END, START, StateGraph
from agentflow.graph.compiled import CompiledGraph
from agentflow.graph.messages import Message
from agentflow.graph.state import AgentState
from agentflow.models.base import ChatModel, call_model
from agentflow.tools.node import ToolNode
from agentflow.tools.tool import DEFAULT_TOOL_TIMEOUT, Tool

if TYPE_CHECKING:
    from agentflow.graph.storage import Checkpointer


def tools_condition(state: AgentState) -> str:
    """Route to "tools" when the last message asks for tool calls, else END."""
    last = state.context[-1] if state.context else None
    if last is not None and last.role == "assistant" and last.tool_calls:
        return "tools"
    return END


def create_react_agent(
    model: ChatModel,
    tools: Sequence[Tool | Callable[..., Any]],
    *,
    system_prompt: str | None = None,
    state_cls: type[AgentState] = AgentState,
    checkpointer: Checkpointer | None = None,
    tool_timeout: float = DEFAULT_TOOL_TIMEOUT,
    model_timeout: float | None = None,
    name: str = "react",
) -> CompiledGraph:
    """Build `agent` ⇄ `tools`: the agent node calls `model` with the tools' schemas; when it
    asks for tool calls the tools node runs them and hands back to the agent."""
    tool_node = ToolNode(tools, timeout=tool_timeout)
    schemas = tool_node.schemas
    system = [Message.system(system_prompt)] if system_prompt else []

    async def agent(state: AgentState) -> Message:
        return await call_model(
            model, [*system, *state.context], tools=schemas or None, timeout=model_timeout
        )

    graph = StateGraph(state_cls)
    graph.add_node("agent", agent)
    graph.add_node("tools", tool_node)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=checkpointer, name=name)
