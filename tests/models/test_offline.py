"""Offline models: ScriptedChat, EchoChat, DemoChat."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agentflow.graph.messages import Message
from agentflow.graph.stream import Listener, StreamChunk, reset_listener, set_listener
from agentflow.models import (
    ChatModel,
    DemoChat,
    EchoChat,
    ModelConfigError,
    ScriptedChat,
    ScriptExhaustedError,
    call_model,
)

CALCULATOR = {
    "name": "calculator",
    "description": "Evaluate an arithmetic expression.",
    "parameters": {
        "type": "object",
        "properties": {"expression": {"type": "string"}},
        "required": ["expression"],
    },
}
ADD = {
    "name": "add",
    "description": "Add two integers.",
    "parameters": {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
}
CLOCK = {
    "name": "get_current_time",
    "description": "Return the current time.",
    "parameters": {"type": "object", "properties": {}},
}
WEATHER = {
    "name": "get_weather",
    "description": "Look up the weather forecast.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
SEARCH = {
    "name": "web_search",
    "description": "Search the web.",
    "parameters": {
        "type": "object",
        "properties": {"query": {"type": "string"}},
        "required": ["query"],
    },
}


def test_all_offline_models_are_chat_models():
    for model in (ScriptedChat([]), EchoChat(), DemoChat()):
        assert isinstance(model, ChatModel)


# -- ScriptedChat -------------------------------------------------------------------------------


async def test_scripted_replays_in_order_and_records_calls():
    model = ScriptedChat(
        [
            {"content": "", "tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 2}}]},
            "The answer is 3.",
            Message.assistant("bye", metadata={"note": "x"}),
        ]
    )
    first = await model.ainvoke([Message.user("1+2?")], tools=[ADD])
    second = await model.ainvoke([Message.user("1+2?"), first], tools=[ADD])
    third = await model.ainvoke([Message.user("bye")])

    assert first.tool_calls[0].name == "add"
    assert first.tool_calls[0].arguments == {"a": 1, "b": 2}
    assert second.content == "The answer is 3."
    assert third.content == "bye" and third.metadata["note"] == "x"
    assert {m.metadata["model"] for m in (first, second, third)} == {"scripted"}
    assert len({first.id, second.id, third.id}) == 3
    assert len(model.calls) == 3
    assert model.calls[0].messages[0].content == "1+2?"
    assert model.calls[0].tools == [ADD]
    assert len(model.calls[1].messages) == 2
    assert model.calls[2].tools is None
    assert model.remaining == 0


async def test_scripted_usage_is_estimated():
    model = ScriptedChat(["abcdefgh"])
    reply = await model.ainvoke([Message.user("abcd")])
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (1, 2)


async def test_scripted_keeps_given_usage():
    model = ScriptedChat([{"content": "x", "usage": {"prompt_tokens": 7, "completion_tokens": 1}}])
    reply = await model.ainvoke([Message.user("hi")])
    assert reply.usage is not None and reply.usage.prompt_tokens == 7


async def test_scripted_runs_out_with_a_clear_error():
    model = ScriptedChat(["only one"])
    await model.ainvoke([Message.user("1")])
    with pytest.raises(ScriptExhaustedError, match="ran out of responses: call #2 but only 1"):
        await model.ainvoke([Message.user("2")])


async def test_scripted_streams_word_deltas():
    model = ScriptedChat(["Hello there,  general Kenobi"])
    items = [item async for item in model.astream([Message.user("hi")])]
    deltas = items[:-1]
    assert deltas == ["Hello ", "there,  ", "general ", "Kenobi"]
    final = items[-1]
    assert isinstance(final, Message)
    assert "".join(str(d) for d in deltas) == final.content


def test_scripted_rejects_bad_responses():
    with pytest.raises(ModelConfigError):
        ScriptedChat([42])  # type: ignore[list-item]
    with pytest.raises(ModelConfigError):
        ScriptedChat([{"tool_calls": "nope"}])
    with pytest.raises(ModelConfigError):
        ScriptedChat([Message.user("not an answer")])
    with pytest.raises(ModelConfigError):
        ScriptedChat("a string")  # type: ignore[arg-type]


async def test_scripted_replies_are_independent_copies():
    given = Message.assistant("same")
    model = ScriptedChat([given])
    reply = await model.ainvoke([Message.user("hi")])
    reply.content = "changed"
    assert given.content == "same"


async def test_call_model_with_listener_matches_message_id():
    model = ScriptedChat(["a b c"])
    chunks: list[StreamChunk] = []
    token = set_listener(
        Listener(
            emit=chunks.append,
            loop=asyncio.get_running_loop(),
            thread_id="t",
            run_id="r",
            node="n",
        )
    )
    try:
        reply = await call_model(model, [Message.user("go")])
    finally:
        reset_listener(token)
    assert [c.data["delta"] for c in chunks] == ["a ", "b ", "c"]
    assert all(c.data["message_id"] == reply.id for c in chunks)
    assert reply.content == "a b c"


# -- EchoChat -----------------------------------------------------------------------------------


async def test_echo_echoes_the_last_user_message():
    model = EchoChat()
    reply = await model.ainvoke(
        [Message.user("first"), Message.assistant("x"), Message.user("second")]
    )
    assert reply.content == "Echo: second"
    assert reply.metadata["model"] == "echo"
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    streamed = [item async for item in model.astream([Message.user("hi there")])]
    assert streamed[:-1] == ["Echo: ", "hi ", "there"]


# -- DemoChat -----------------------------------------------------------------------------------


async def run_tool_flow(
    model: DemoChat, question: str, tools: list[dict[str, Any]], result: str
) -> tuple[Message, Message]:
    history = [Message.user(question)]
    first = await model.ainvoke(history, tools=tools)
    assert first.tool_calls, first.content
    history.append(first)
    for call in first.tool_calls:
        history.append(Message.tool(result, tool_call_id=call.id))
    final = await model.ainvoke(history, tools=tools)
    return first, final


async def test_demo_calls_a_calculator_then_answers_from_the_result():
    model = DemoChat()
    first, final = await run_tool_flow(model, "What is 2+3?", [CLOCK, CALCULATOR], "5")

    [call] = first.tool_calls
    assert call.name == "calculator"
    assert call.arguments == {"expression": "2+3"}
    assert first.usage is not None
    assert final.tool_calls == []
    assert "5" in final.content
    assert "calculator" in final.content


async def test_demo_fills_numeric_parameters():
    first, _ = await run_tool_flow(DemoChat(), "what is 12 plus 30", [ADD], "42")
    assert first.tool_calls[0].arguments == {"a": 12, "b": 30}


async def test_demo_subtraction_numbers_are_not_negated():
    first, _ = await run_tool_flow(DemoChat(), "calculate 10 - 4", [ADD], "6")
    assert first.tool_calls[0].arguments == {"a": 10, "b": 4}


async def test_demo_uses_a_time_tool():
    first, final = await run_tool_flow(
        DemoChat(), "What time is it?", [CALCULATOR, CLOCK], "12:00 UTC"
    )
    assert first.tool_calls[0].name == "get_current_time"
    assert first.tool_calls[0].arguments == {}
    assert "12:00 UTC" in final.content


async def test_demo_matches_tools_by_name_words():
    first, _ = await run_tool_flow(
        DemoChat(), "What's the weather in Paris?", [CALCULATOR, WEATHER], "sunny"
    )
    assert first.tool_calls[0].name == "get_weather"
    assert first.tool_calls[0].arguments == {"city": "Paris"}


async def test_demo_passes_the_text_to_a_single_string_tool():
    first, _ = await run_tool_flow(DemoChat(), "search for agent frameworks", [SEARCH], "...")
    assert first.tool_calls[0].arguments == {"query": "search for agent frameworks"}


async def test_demo_answers_honestly_without_a_matching_tool():
    model = DemoChat()
    reply = await model.ainvoke([Message.user("Write me a poem about love")], tools=[CALCULATOR])
    assert reply.tool_calls == []
    text = reply.content
    assert isinstance(text, str)
    assert "offline demo" in text
    assert "OPENAI_API_KEY" in text
    assert "OPENAI_BASE_URL" in text
    assert "calculator" in text
    again = await model.ainvoke([Message.user("Write me a poem about love")], tools=[CALCULATOR])
    assert again.content == text


async def test_demo_without_tools_and_custom_hint():
    model = DemoChat(setup_hint="Run `agentflow doctor` to configure a model.")
    reply = await model.ainvoke([Message.user("what is 2+3")])
    assert reply.tool_calls == []
    assert "offline demo" in reply.text
    assert "agentflow doctor" in reply.text


async def test_demo_streams_its_answer():
    items = [item async for item in DemoChat().astream([Message.user("hello")])]
    final = items[-1]
    assert isinstance(final, Message)
    assert "".join(str(i) for i in items[:-1]) == final.content
