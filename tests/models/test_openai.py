"""OpenAIChat against a real local chat-completions server."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from agentflow.graph.messages import Message, ToolCall
from agentflow.graph.stream import Listener, StreamChunk, StreamEvent, reset_listener, set_listener
from agentflow.models import (
    ChatModel,
    ModelConfigError,
    ModelConnectionError,
    ModelHTTPError,
    ModelResponseError,
    ModelTimeoutError,
    OpenAIChat,
    RetryPolicy,
    aclose_shared_clients,
    call_model,
)
from agentflow.models import http as http_module
from agentflow.models import openai as openai_module

if TYPE_CHECKING:
    from .conftest import FakeProvider

MODEL = "gpt-test-2024-01-01"
TOOLS = [
    {
        "name": "add",
        "description": "Add two numbers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    }
]


def make_model(provider: FakeProvider, key: str, retry: RetryPolicy, **kwargs: Any) -> OpenAIChat:
    return OpenAIChat(MODEL, base_url=provider.url, api_key=key, retry=retry, **kwargs)


# -- plain calls --------------------------------------------------------------------------------


async def test_plain_answer(provider: FakeProvider, secret_key: str, fast_retry: RetryPolicy):
    provider.json(
        provider.completion("Paris.", usage={"prompt_tokens": 21, "completion_tokens": 2})
    )
    model = make_model(provider, secret_key, fast_retry, temperature=0.2)

    reply = await model.ainvoke([Message.system("Be brief."), Message.user("Capital of France?")])

    assert isinstance(model, ChatModel)
    assert reply.role == "assistant"
    assert reply.content == "Paris."
    assert reply.tool_calls == []
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (21, 2)
    assert reply.metadata["model"] == MODEL
    assert reply.metadata["finish_reason"] == "stop"
    [request] = provider.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {secret_key}"
    assert request.body["model"] == MODEL
    assert request.body["temperature"] == 0.2
    assert "stream" not in request.body
    assert "tools" not in request.body
    assert request.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    ]


async def test_tool_calls_are_decoded_and_tools_converted(
    provider: FakeProvider, secret_key: str, fast_retry: RetryPolicy
):
    provider.json(
        provider.completion(
            None,
            tool_calls=[
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "add", "arguments": "{not json"},
                },
            ],
            finish_reason="tool_calls",
        )
    )
    model = make_model(provider, secret_key, fast_retry)

    reply = await model.ainvoke([Message.user("what is 2+3")], tools=TOOLS)

    assert reply.content == ""
    assert [(c.id, c.name, c.arguments) for c in reply.tool_calls] == [
        ("call_1", "add", {"a": 2, "b": 3}),
        ("call_2", "add", {"_raw": "{not json"}),
    ]
    assert provider.requests[0].body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "add",
                "description": "Add two numbers.",
                "parameters": TOOLS[0]["parameters"],
            },
        }
    ]


async def test_conversation_is_sent_in_openai_format(
    provider: FakeProvider, secret_key: str, fast_retry: RetryPolicy
):
    provider.json(provider.completion("5"))
    model = make_model(provider, secret_key, fast_retry)
    call = ToolCall(name="add", arguments={"a": 2, "b": 3}, id="call_9")
    blocks = [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "x"}}]
    history = [
        Message.user(blocks),
        Message.assistant("", tool_calls=[call]),
        Message.tool("5", tool_call_id="call_9", name="add"),
    ]

    await model.ainvoke(history)

    sent = provider.requests[0].body["messages"]
    assert sent[0] == {"role": "user", "content": blocks}
    assert sent[1]["role"] == "assistant"
    assert sent[1]["content"] is None
    assert sent[1]["tool_calls"][0]["id"] == "call_9"
    assert sent[1]["tool_calls"][0]["type"] == "function"
    assert sent[1]["tool_calls"][0]["function"]["name"] == "add"
    assert json.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == {"a": 2, "b": 3}
    assert sent[2] == {"role": "tool", "content": "5", "tool_call_id": "call_9"}


async def test_extra_body_and_headers_are_sent(
    provider: FakeProvider, secret_key: str, fast_retry: RetryPolicy
):
    provider.json(provider.completion("ok"))
    model = make_model(
        provider, secret_key, fast_retry, extra_body={"seed": 7}, headers={"X-Team": "blue"}
    )

    await model.ainvoke([Message.user("hi")])

    assert provider.requests[0].body["seed"] == 7
    assert provider.requests[0].headers["x-team"] == "blue"


async def test_non_json_success_body_is_a_response_error(
    provider: FakeProvider, secret_key: str, fast_retry: RetryPolicy
):
    provider.json("<html>proxy page</html>")
    model = make_model(provider, secret_key, fast_retry)

    with pytest.raises(ModelResponseError, match="not JSON"):
        await model.ainvoke([Message.user("hi")])
    assert provider.attempts == 1


# -- streaming ----------------------------------------------------------------------------------


async def test_astream_yields_deltas_then_the_message(
    provider: FakeProvider, secret_key: str, fast_retry: RetryPolicy
):
    provider.stream(
        provider.text_stream(
            "Hel", "lo", " world", usage={"prompt_tokens": 9, "completion_tokens": 3}
        )
    )
    model = make_model(provider, secret_key, fast_retry)

    items = [item async for item in model.astream([Message.user("hi")])]

    assert items[:-1] == ["Hel", "lo", " world"]
    final = items[-1]
    assert isinstance(final, Message)
    assert final.content == "Hello world"
    assert final.usage is not None
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (9, 3)
    assert final.metadata["model"] == MODEL
    body = provider.requests[0].body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_astream_accumulates_tool_call_deltas_by_index(
    provider: FakeProvider, secret_key: str, fast_retry: RetryPolicy
):
    c = provider.chunk
    provider.stream(
        [
            c({"role": "assistant", "content": None}),
            c({"tool_calls": [{"index": 0, "id": "call_a", "function": {"name": "add"}}]}),
            c({"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "add"}}]}),
            c({"tool_calls": [{"index": 0, "function": {"arguments": '{"a": 1,'}}]}),
            c({"tool_calls": [{"index": 1, "function": {"arguments": '{"a": 5, "b": 6}'}}]}),
            c({"tool_calls": [{"index": 0, "function": {"arguments": ' "b": 2}'}}]}),
            c({}, "tool_calls"),
            "[DONE]",
        ]
    )
    model = make_model(provider, secret_key, fast_retry)

    items = [item async for item in model.astream([Message.user("add")], tools=TOOLS)]

    [final] = items
    assert isinstance(final, Message)
    assert [(t.id, t.name, t.arguments) for t in final.tool_calls] == [
        ("call_a", "add", {"a": 1, "b": 2}),
        ("call_b", "add", {"a": 5, "b": 6}),
    ]
    assert final.usage is None  # the server sent none
    assert final.metadata["finish_reason"] == "tool_calls"


async def test_call_model_streams_deltas_to_the_listener(
    provider: FakeProvider, secret_key: str, fast_retry: RetryPolicy
):
    provider.stream(
        provider.text_stream("One", " two", usage={"prompt_tokens": 1, "completion_tokens": 2})
    )
    model = make_model(provider, secret_key, fast_retry)
    chunks: list[StreamChunk] = []
    listener = Listener(
        emit=chunks.append,
        loop=asyncio.get_running_loop(),
        thread_id="t1",
        run_id="r1",
        node="agent",
    )
    token = set_listener(listener)
    try:
        reply = await call_model(model, [Message.user("count")])
    finally:
        reset_listener(token)

    assert [c.event for c in chunks] == [StreamEvent.DELTA, StreamEvent.DELTA]
    assert [c.data["delta"] for c in chunks] == ["One", " two"]
    assert {c.data["message_id"] for c in chunks} == {reply.id}
    assert chunks[0].node == "agent"
    assert reply.content == "One two"
    assert reply.usage is not None and reply.usage.completion_tokens == 2
    assert provider.requests[0].body["stream"] is True


async def test_call_model_without_listener_uses_ainvoke(
    provider: FakeProvider, secret_key: str, fast_retry: RetryPolicy
):
    provider.json(provider.completion("plain"))
    model = make_model(provider, secret_key, fast_retry)

    reply = await call_model(model, [Message.user("hi")])

    assert reply.content == "plain"
    assert "stream" not in provider.requests[0].body


async def test_stream_is_retried_before_the_first_delta(
    provider: FakeProvider, secret_key: str, fast_retry: RetryPolicy
):
    provider.error(503, "overloaded")
    provider.stream(provider.text_stream("fine"))
    model = make_model(provider, secret_key, fast_retry)

    items = [item async for item in model.astream([Message.user("hi")])]

    assert items[0] == "fine"
    assert provider.attempts == 2


async def test_stream_is_not_retried_after_a_delta(
    provider: FakeProvider, secret_key: str, fast_retry: RetryPolicy
):
    c = provider.chunk
    provider.stream([c({"content": "partial"})])  # the connection ends without finishing
    provider.stream(provider.text_stream("never used"))
    model = make_model(provider, secret_key, fast_retry)
    seen: list[str | Message] = []

    with pytest.raises(ModelConnectionError, match="ended before it was complete"):
        async for item in model.astream([Message.user("hi")]):
            seen.append(item)

    assert seen == ["partial"]
    assert provider.attempts == 1


async def test_stream_ignores_comments_and_other_fields(
    provider: FakeProvider, secret_key: str, fast_retry: RetryPolicy
):
    c = provider.chunk
    provider.stream(
        [": keep-alive", "event: ignored", c({"content": "ok"}), c({}, "stop"), "[DONE]"]
    )
    model = make_model(provider, secret_key, fast_retry)

    items = [item async for item in model.astream([Message.user("hi")])]

    assert items[0] == "ok"
    assert isinstance(items[1], Message) and items[1].content == "ok"


async def test_stream_consumer_can_stop_early(
    provider: FakeProvider, secret_key: str, fast_retry: RetryPolicy
):
    provider.stream(provider.text_stream("a", "b", "c"), event_delay=0.01)
    provider.json(provider.completion("next call works"))
    model = make_model(provider, secret_key, fast_retry)

    stream = model.astream([Message.user("hi")])
    first = await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]

    assert first == "a"
    assert (await model.ainvoke([Message.user("again")])).content == "next call works"


async def test_stream_error_status_is_raised(
    provider: FakeProvider, secret_key: str, fast_retry: RetryPolicy
):
    provider.error(400, "bad request")
    model = make_model(provider, secret_key, fast_retry)

    with pytest.raises(ModelHTTPError) as info:
        async for _ in model.astream([Message.user("hi")]):
            pass
    assert info.value.status_code == 400
    assert provider.attempts == 1


async def test_stream_request_answered_with_plain_json(
    provider: FakeProvider, secret_key: str, fast_retry: RetryPolicy
):
    provider.json(provider.completion("whole"))
    model = make_model(provider, secret_key, fast_retry)

    items = [item async for item in model.astream([Message.user("hi")])]

    assert items[0] == "whole"
    assert isinstance(items[1], Message) and items[1].content == "whole"


# -- errors that are never retried --------------------------------------------------------------


async def test_401_is_not_retried_and_hides_the_key(
    provider: FakeProvider,
    secret_key: str,
    fast_retry: RetryPolicy,
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.DEBUG)
    provider.error(401, f"Incorrect API key provided: {secret_key}. Find your key at ...")
    model = make_model(provider, secret_key, fast_retry)

    with pytest.raises(ModelHTTPError) as info:
        await model.ainvoke([Message.user("hi")])

    assert provider.attempts == 1
    error = info.value
    assert error.status_code == 401
    assert not error.retryable
    assert "401" in str(error)
    assert "OPENAI_API_KEY" in str(error)
    assert secret_key not in str(error)
    assert secret_key not in repr(error)
    assert secret_key[8:] not in str(error)
    assert secret_key not in caplog.text
    assert secret_key not in repr(model)


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422])
async def test_client_errors_are_not_retried(
    provider: FakeProvider, secret_key: str, fast_retry: RetryPolicy, status: int
):
    provider.error(status, "nope")
    provider.json(provider.completion("should not be reached"))
    model = make_model(provider, secret_key, fast_retry)

    with pytest.raises(ModelHTTPError) as info:
        await model.ainvoke([Message.user("hi")])

    assert info.value.status_code == status
    assert "nope" in str(info.value)
    assert provider.attempts == 1


# -- timeouts and connection failures ------------------------------------------------------------


async def test_hanging_server_times_out_after_bounded_retries(
    provider: FakeProvider, secret_key: str
):
    provider.hang(3)
    policy = RetryPolicy(max_attempts=2, initial_backoff=0.01, max_backoff=0.01, jitter=False)
    model = make_model(provider, secret_key, policy, timeout=0.3)

    started = time.monotonic()
    with pytest.raises(ModelTimeoutError) as info:
        await model.ainvoke([Message.user("hi")])
    elapsed = time.monotonic() - started

    assert provider.attempts == 2
    assert 0.55 < elapsed < 2.0
    assert len(info.value.errors) == 2
    assert all(isinstance(e, ModelTimeoutError) for e in info.value.errors)
    assert "2 attempt" in str(info.value)
    assert "0.3s" in str(info.value)


async def test_per_call_timeout_beats_the_constructor(provider: FakeProvider, secret_key: str):
    provider.hang()
    policy = RetryPolicy(max_attempts=1)
    model = make_model(provider, secret_key, policy, timeout=30)

    started = time.monotonic()
    with pytest.raises(ModelTimeoutError):
        await model.ainvoke([Message.user("hi")], timeout=0.2)
    assert time.monotonic() - started < 1.5


async def test_stream_hanging_before_first_byte_times_out(provider: FakeProvider, secret_key: str):
    provider.hang()
    model = make_model(provider, secret_key, RetryPolicy(max_attempts=1), timeout=0.2)

    with pytest.raises(ModelTimeoutError):
        async for _ in model.astream([Message.user("hi")]):
            pass


async def test_connection_refused_is_retried_then_raised(
    free_port: int, secret_key: str, fast_retry: RetryPolicy
):
    model = OpenAIChat(
        MODEL, base_url=f"http://127.0.0.1:{free_port}/v1", api_key=secret_key, retry=fast_retry
    )

    with pytest.raises(ModelConnectionError) as info:
        await model.ainvoke([Message.user("hi")])

    assert len(info.value.errors) == fast_retry.max_attempts
    assert secret_key not in str(info.value)


# -- configuration ------------------------------------------------------------------------------


def test_openai_shaped_tools_pass_through():
    shaped = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    bare = {"name": "g"}
    assert openai_module.to_openai_tools([shaped, bare]) == [
        shaped,
        {
            "type": "function",
            "function": {"name": "g", "parameters": {"type": "object", "properties": {}}},
        },
    ]


def test_missing_api_key_fails_fast_naming_the_variable():
    with pytest.raises(ModelConfigError, match="OPENAI_API_KEY"):
        OpenAIChat(MODEL)


def test_empty_api_key_counts_as_missing(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPENAI_API_KEY", "  ")
    with pytest.raises(ModelConfigError, match="OPENAI_API_KEY"):
        OpenAIChat(MODEL, base_url="https://example.invalid/v1")


def test_key_and_base_url_come_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key-123456789")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://llm.example.com/v1/")
    model = OpenAIChat(MODEL)
    assert model.url == "https://llm.example.com/v1/chat/completions"
    assert model.name == MODEL
    assert "sk-env" not in repr(model)


def test_default_base_url_is_openai(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key-123456789")
    assert OpenAIChat(MODEL).url == "https://api.openai.com/v1/chat/completions"


async def test_local_server_needs_no_key(provider: FakeProvider, fast_retry: RetryPolicy):
    provider.json(provider.completion("local"))
    model = OpenAIChat("llama3.1:8b", base_url=provider.url, retry=fast_retry)

    reply = await model.ainvoke([Message.user("hi")])

    assert reply.content == "local"
    assert "authorization" not in provider.requests[0].headers


@pytest.mark.parametrize("name", ["latest", "gpt-4o-latest", "llama3:latest", "Claude-LATEST", ""])
def test_unpinned_model_names_are_refused(name: str, secret_key: str):
    with pytest.raises(ModelConfigError) as info:
        OpenAIChat(name, api_key=secret_key)
    if name:
        assert "latest" in str(info.value).lower()
    assert "pin" in str(info.value).lower()


def test_bad_base_url_is_refused(secret_key: str):
    with pytest.raises(ModelConfigError, match="http"):
        OpenAIChat(MODEL, api_key=secret_key, base_url="ftp://example.com")


def test_timeout_precedence(monkeypatch: pytest.MonkeyPatch, secret_key: str):
    assert OpenAIChat(MODEL, api_key=secret_key).timeout == openai_module.DEFAULT_TIMEOUT
    monkeypatch.setenv("AGENTFLOW_MODEL_TIMEOUT", "12.5")
    assert OpenAIChat(MODEL, api_key=secret_key).timeout == 12.5
    assert OpenAIChat(MODEL, api_key=secret_key, timeout=3).timeout == 3.0


@pytest.mark.parametrize("value", ["abc", "0", "-1"])
def test_invalid_timeout_env_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, secret_key: str, value: str
):
    monkeypatch.setenv("AGENTFLOW_MODEL_TIMEOUT", value)
    with pytest.raises(ModelConfigError, match="AGENTFLOW_MODEL_TIMEOUT"):
        OpenAIChat(MODEL, api_key=secret_key)


def test_retry_settings_precedence(monkeypatch: pytest.MonkeyPatch, secret_key: str):
    assert OpenAIChat(MODEL, api_key=secret_key).retry == RetryPolicy()
    monkeypatch.setenv("AGENTFLOW_MODEL_MAX_RETRIES", "5")
    assert OpenAIChat(MODEL, api_key=secret_key).retry.max_attempts == 6
    assert OpenAIChat(MODEL, api_key=secret_key, max_retries=0).retry.max_attempts == 1
    explicit = RetryPolicy(max_attempts=2)
    assert OpenAIChat(MODEL, api_key=secret_key, retry=explicit).retry == explicit


# -- the shared connection pool -----------------------------------------------------------------


async def test_instances_share_one_client_per_loop(
    provider: FakeProvider, secret_key: str, fast_retry: RetryPolicy
):
    provider.json(provider.completion("a")).json(provider.completion("b"))
    first = make_model(provider, secret_key, fast_retry)
    second = OpenAIChat("other-model-2024-01-01", base_url=provider.url, api_key=secret_key)

    await first.ainvoke([Message.user("1")])
    await second.ainvoke([Message.user("2")])

    session = http_module.shared_session()
    assert http_module._sessions[asyncio.get_running_loop()] is session
    assert len(http_module._sessions) == 1
    await aclose_shared_clients()
    assert session.closed
    assert asyncio.get_running_loop() not in http_module._sessions


async def test_a_given_client_is_used_and_not_closed(
    provider: FakeProvider, secret_key: str, fast_retry: RetryPolicy
):
    provider.json(provider.completion("mine"))
    async with aiohttp.ClientSession() as client:
        model = make_model(provider, secret_key, fast_retry, client=client)
        reply = await model.ainvoke([Message.user("hi")])
        assert reply.content == "mine"
        assert asyncio.get_running_loop() not in http_module._sessions
        await aclose_shared_clients()
        assert not client.closed


def test_the_proxy_comes_from_the_environment_once_per_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "models.internal")
    assert http_module.proxy_for("https://api.openai.com/v1/chat/completions") == (
        "http://proxy.internal:3128"
    )
    assert http_module.proxy_for("https://models.internal/v1/chat/completions") is None
    assert http_module.proxy_for("http://127.0.0.1:8000/v1/chat/completions") is None
    model = OpenAIChat(MODEL, api_key="sk-test", base_url="https://api.openai.com/v1")
    assert model._proxy == "http://proxy.internal:3128"
