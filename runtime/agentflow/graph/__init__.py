"""Agent graphs: state, nodes, edges, and the compiled graph that runs them."""

from agentflow.graph.builder import END, START, StateGraph
from agentflow.graph.command import Command, Interrupt, interrupt
from agentflow.graph.compiled import ANONYMOUS, CompiledGraph, RunResult, StateSnapshot
from agentflow.graph.errors import (
    AgentflowError,
    CheckpointerError,
    GraphError,
    GraphRecursionError,
    InvalidInputError,
    NodeError,
    NothingToResumeError,
)
from agentflow.graph.messages import Message, ToolCall, Usage, new_id
from agentflow.graph.state import AgentState
from agentflow.graph.stream import StreamChunk, StreamEvent, emit_delta, streaming_requested

__all__ = [
    "ANONYMOUS",
    "END",
    "START",
    "AgentState",
    "AgentflowError",
    "CheckpointerError",
    "Command",
    "CompiledGraph",
    "GraphError",
    "GraphRecursionError",
    "Interrupt",
    "InvalidInputError",
    "Message",
    "NodeError",
    "NothingToResumeError",
    "RunResult",
    "StateGraph",
    "StateSnapshot",
    "StreamChunk",
    "StreamEvent",
    "ToolCall",
    "Usage",
    "emit_delta",
    "interrupt",
    "new_id",
    "streaming_requested",
]
