"""The agent's tests. They run offline on graph/offline.py's model, with LangGraph
directly: invoke, tool calls, token streaming and a thread's memory."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph.state import CompiledStateGraph

from graph.agent import build_graph, choose_model
from graph.offline import OfflineChat
from graph.tools import add, current_time, divide, multiply, subtract


def ask(text: str) -> dict[str, list[tuple[str, str]]]:
    return {"messages": [("user", text)]}


def thread(name: str = "t1") -> dict[str, Any]:
    return {"configurable": {"thread_id": name}, "recursion_limit": 10}


@pytest.fixture
def agent() -> CompiledStateGraph:
    return build_graph(OfflineChat(), InMemorySaver())


def test_arithmetic_tools() -> None:
    assert add.invoke({"a": 12, "b": 30}) == 42
    assert subtract.invoke({"a": 10, "b": 4}) == 6
    assert multiply.invoke({"a": 2, "b": 3}) == 6
    assert divide.invoke({"a": 7, "b": 2}) == 3.5


def test_tool_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="cannot divide by zero"):
        divide.invoke({"a": 1, "b": 0})
    with pytest.raises(ValueError, match="unknown time zone"):
        current_time.invoke({"timezone": "Mars/Olympus_Mons"})


async def test_the_agent_calls_a_tool_then_answers(agent: CompiledStateGraph) -> None:
    result = await agent.ainvoke(ask("what is 12 + 30?"), thread())
    _, call, tool, answer = result["messages"]
    assert isinstance(call, AIMessage)
    assert [(c["name"], c["args"]) for c in call.tool_calls] == [
        ("add", {"a": 12, "b": 30})
    ]
    assert isinstance(tool, ToolMessage) and tool.content == "42"
    assert tool.tool_call_id == call.tool_calls[0]["id"]
    assert answer.content == "12 + 30 = 42"
    assert answer.usage_metadata and answer.usage_metadata["output_tokens"] > 0


async def test_two_expressions_are_two_tool_calls(agent: CompiledStateGraph) -> None:
    result = await agent.ainvoke(ask("what is 6 times 7 and 10 / 4?"), thread())
    assert [c["name"] for c in result["messages"][1].tool_calls] == [
        "multiply",
        "divide",
    ]
    assert result["messages"][-1].content == "6 * 7 = 42\n10 / 4 = 2.5"


async def test_the_answer_streams_in_token_chunks(agent: CompiledStateGraph) -> None:
    tokens: list[str] = []
    nodes: list[str] = []
    async for chunk, metadata in agent.astream(
        ask("what is 2 * 21"), thread(), stream_mode="messages"
    ):
        nodes.append(metadata["langgraph_node"])
        if isinstance(chunk, AIMessageChunk) and chunk.content:
            tokens.append(str(chunk.content))
    assert "tools" in nodes  # the tool ran between the two model calls
    assert len(tokens) >= 3
    assert "".join(tokens) == "2 * 21 = 42"


async def test_a_thread_remembers_the_conversation(agent: CompiledStateGraph) -> None:
    await agent.ainvoke(ask("what is 1 + 1"), thread())
    result = await agent.ainvoke(ask("and 2 + 2?"), thread())
    assert [m.content for m in result["messages"] if m.type == "human"] == [
        "what is 1 + 1",
        "and 2 + 2?",
    ]
    assert result["messages"][-1].content == "2 + 2 = 4"
    other = await agent.ainvoke(ask("hello"), thread("t2"))
    assert len(other["messages"]) == 2


async def test_the_time_comes_from_the_clock_tool(agent: CompiledStateGraph) -> None:
    result = await agent.ainvoke(ask("what time is it?"), thread())
    assert result["messages"][1].tool_calls[0]["name"] == "current_time"
    assert result["messages"][-1].content.startswith("It is 20")


async def test_a_failing_tool_is_reported_not_raised(agent: CompiledStateGraph) -> None:
    result = await agent.ainvoke(ask("what is 1 / 0"), thread())
    assert result["messages"][2].status == "error"
    assert "cannot divide by zero" in result["messages"][-1].content


def test_without_tools_to_call_the_offline_model_says_what_it_can_do(
    agent: CompiledStateGraph,
) -> None:
    result = agent.invoke(ask("hello"), thread())  # the sync API works too
    assert len(result["messages"]) == 2
    assert "offline model" in result["messages"][-1].content


def test_without_model_the_offline_model_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MODEL", raising=False)
    assert isinstance(choose_model(), OfflineChat)


def test_model_names_a_real_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL", "openai:gpt-4o-mini-2024-07-18")
    monkeypatch.setenv("OPENAI_API_KEY", "placeholder")
    if importlib.util.find_spec("langchain") is None:
        with pytest.raises(RuntimeError, match=r'pip install -e "\.\[openai\]"'):
            choose_model()
    else:
        model = choose_model()
        assert not isinstance(model, OfflineChat)
        assert model.model_name == "gpt-4o-mini-2024-07-18"
