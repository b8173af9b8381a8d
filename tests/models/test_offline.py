"""Offline models: ScriptedChat and EchoChat (DemoChat: test_demo.py)."""

from __future__ import annotations

import asyncio

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

ADD = {
    "name": "add",
    "description": "Add two integers.",
    "parameters": {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
}


def test_all_offline_models_are_chat_models_that_say_they_are_offline():
    for model in (ScriptedChat([]), EchoChat(), DemoChat()):
        assert isinstance(model, ChatModel)
        assert model.offline is True


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
