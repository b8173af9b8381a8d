"""Tools the model can call: `@tool`, `ToolNode`, and a prebuilt ReAct agent."""

from agentflow.tools.node import ToolNode
from agentflow.tools.react import create_react_agent, tools_condition
from agentflow.tools.schema import ArgumentError
from agentflow.tools.tool import Tool, ToolContext, tool

__all__ = [
    "ArgumentError",
    "Tool",
    "ToolContext",
    "ToolNode",
    "create_react_agent",
    "tool",
    "tools_condition",
]
