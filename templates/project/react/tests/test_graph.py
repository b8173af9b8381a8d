"""The agent's tests. They run offline: scripted models stand in for the real one."""

from __future__ import annotations

import pytest
from agentflow.checkpointer import InMemoryCheckpointer
from agentflow.graph import CompiledGraph
from agentflow.models import DemoChat, OpenAIChat, ScriptedChat

from graph.react import DEFAULT_MODEL, build_agent, choose_model
from graph.tools import add, current_time, divide, multiply, subtract

CONFIG = {"thread_id": "t1", "recursion_limit": 10}


def ask(text: str) -> dict[str, list[dict[str, str]]]:
    return {"messages": [{"role": "user", "content": text}]}


def agent(model: ScriptedChat | DemoChat) -> CompiledGraph:
    return build_agent(model).with_checkpointer(InMemoryCheckpointer())


def test_arithmetic_tools() -> None:
    assert add(12, 30) == 42
    assert subtract(10, 4) == 6
    assert multiply(2, 3) == 6
    assert divide(7, 2) == 3.5


def test_division_by_zero_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="cannot divide by zero"):
        divide(1, 0)


def test_current_time_is_utc_by_default() -> None:
    assert current_time().endswith("+00:00")
    assert current_time("UTC").endswith("+00:00")


def test_an_unknown_time_zone_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        current_time("Mars/Olympus_Mons")


async def test_the_agent_calls_a_tool_then_answers() -> None:
    model = ScriptedChat(
        [
            {
                "content": "",
                "tool_calls": [{"name": "add", "arguments": {"a": 12, "b": 30}}],
            },
            "12 + 30 = 42",
        ]
    )
    result = await agent(model).ainvoke(ask("what is 12 + 30?"), CONFIG)
    assert result.messages[-1].text == "12 + 30 = 42"
    assert [m.text for m in result.messages if m.role == "tool"] == ["42"]
    offered = {tool["name"] for tool in model.calls[0].tools or []}
    assert offered == {"add", "subtract", "multiply", "divide", "current_time"}


async def test_a_thread_remembers_the_conversation() -> None:
    model = ScriptedChat(["Hello!", "You said hi before."])
    app = agent(model)
    await app.ainvoke(ask("hi"), CONFIG)
    result = await app.ainvoke(ask("what did I say?"), CONFIG)
    assert result.messages[-1].text == "You said hi before."
    assert [m.text for m in model.calls[1].messages if m.role == "user"] == [
        "hi",
        "what did I say?",
    ]


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("what is 12 + 30", "The add tool returned: 42"),
        ("what is 2 * 3", "The multiply tool returned: 6"),
        (
            "what is (2 + 3) * 4",
            "The add tool returned: 5\nThe multiply tool returned: 20",
        ),
    ],
)
async def test_the_offline_demo_model_uses_the_tools(
    question: str, answer: str
) -> None:
    result = await agent(DemoChat()).ainvoke(ask(question), CONFIG)
    assert result.messages[-1].text == answer


def test_without_an_api_key_the_demo_model_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert isinstance(choose_model(), DemoChat)


def test_with_an_api_key_the_pinned_model_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "placeholder")
    monkeypatch.delenv("OPENAI_MODEL", raising=False)
    model = choose_model()
    assert isinstance(model, OpenAIChat)
    assert model.model == DEFAULT_MODEL
