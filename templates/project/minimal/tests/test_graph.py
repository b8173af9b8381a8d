"""The graph's tests. They run offline: scripted models stand in for the real one."""

from __future__ import annotations

import pytest
from agentflow.checkpointer import InMemoryCheckpointer
from agentflow.models import DemoChat, OpenAIChat, ScriptedChat

from graph.agent import DEFAULT_MODEL, SYSTEM_PROMPT, build_graph, choose_model

CONFIG = {"thread_id": "t1", "recursion_limit": 10}


def ask(text: str) -> dict[str, list[dict[str, str]]]:
    return {"messages": [{"role": "user", "content": text}]}


async def test_the_node_answers_with_the_model() -> None:
    model = ScriptedChat(["Hello! How can I help?"])
    app = build_graph(model).with_checkpointer(InMemoryCheckpointer())
    result = await app.ainvoke(ask("hi"), CONFIG)
    assert result.messages[-1].text == "Hello! How can I help?"
    sent = model.calls[0].messages
    assert (sent[0].role, sent[0].text) == ("system", SYSTEM_PROMPT)
    assert sent[-1].text == "hi"


async def test_a_thread_remembers_the_conversation() -> None:
    model = ScriptedChat(["Hello!", "You said hi."])
    app = build_graph(model).with_checkpointer(InMemoryCheckpointer())
    await app.ainvoke(ask("hi"), CONFIG)
    result = await app.ainvoke(ask("what did I say?"), CONFIG)
    assert result.messages[-1].text == "You said hi."
    assert [m.text for m in model.calls[1].messages if m.role != "system"] == [
        "hi",
        "Hello!",
        "what did I say?",
    ]


async def test_the_offline_demo_model_answers() -> None:
    app = build_graph(DemoChat()).with_checkpointer(InMemoryCheckpointer())
    result = await app.ainvoke(ask("hello"), CONFIG)
    assert "offline demo model" in result.messages[-1].text


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
