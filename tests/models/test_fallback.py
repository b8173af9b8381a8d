"""FallbackChat: moving to the next model on outages, never masking config bugs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from agentflow.graph.messages import Message
from agentflow.models import (
    ChatModel,
    FallbackChat,
    ModelConfigError,
    ModelConnectionError,
    ModelError,
    ModelHTTPError,
    ModelTimeoutError,
    ModelUnavailableError,
    OpenAIChat,
    RetryPolicy,
    ScriptedChat,
    should_fall_back,
)

if TYPE_CHECKING:
    from .conftest import FakeProvider

TWO_TRIES = RetryPolicy(max_attempts=2, initial_backoff=0.01, max_backoff=0.01, jitter=False)


class Failing:
    """A ChatModel that always raises the given error (and counts its calls)."""

    def __init__(self, name: str, error: ModelError) -> None:
        self.name = name
        self.error = error
        self.calls = 0

    async def ainvoke(self, messages: Sequence[Message], **kwargs: Any) -> Message:
        self.calls += 1
        raise self.error

    async def astream(
        self, messages: Sequence[Message], **kwargs: Any
    ) -> AsyncIterator[str | Message]:
        self.calls += 1
        raise self.error
        yield ""  # pragma: no cover - makes this an async generator


class Partial:
    """Streams one delta, then fails."""

    name = "partial"

    async def ainvoke(self, messages: Sequence[Message], **kwargs: Any) -> Message:
        raise AssertionError("not used")

    async def astream(
        self, messages: Sequence[Message], **kwargs: Any
    ) -> AsyncIterator[str | Message]:
        yield "half"
        raise ModelConnectionError("cut off", model=self.name)


def openai_at(provider: FakeProvider, model: str, key: str, **kwargs: Any) -> OpenAIChat:
    return OpenAIChat(model, base_url=provider.url, api_key=key, retry=TWO_TRIES, **kwargs)


async def test_500s_move_to_the_second_server(
    make_provider: Callable[[], FakeProvider],
    secret_key: str,
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.INFO, logger="agentflow.models")
    first, second = make_provider(), make_provider()
    first.error(500).error(500)
    second.json(second.completion("from b"))
    primary = openai_at(first, "model-a-2024-01-01", secret_key)
    backup = openai_at(second, "model-b-2024-01-01", secret_key)
    chat = FallbackChat([primary, backup])

    reply = await chat.ainvoke([Message.user("hi")])

    assert isinstance(chat, ChatModel)
    assert chat.name == "fallback(model-a-2024-01-01,model-b-2024-01-01)"
    assert reply.content == "from b"
    assert reply.metadata["model"] == "model-b-2024-01-01"
    assert first.attempts == 2
    assert second.attempts == 1
    answered = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(answered) == 1
    assert answered[0].__dict__["model"] == "model-b-2024-01-01"
    assert "model-b-2024-01-01 answered" in answered[0].getMessage()
    assert secret_key not in caplog.text


async def test_primary_answer_is_used_when_healthy(
    make_provider: Callable[[], FakeProvider], secret_key: str
):
    first, second = make_provider(), make_provider()
    first.json(first.completion("from a"))
    chat = FallbackChat(
        [openai_at(first, "model-a-2024-01-01", secret_key), openai_at(second, "m-b-1", secret_key)]
    )

    reply = await chat.ainvoke([Message.user("hi")])

    assert reply.metadata["model"] == "model-a-2024-01-01"
    assert second.attempts == 0


async def test_timeout_on_primary_falls_back(
    make_provider: Callable[[], FakeProvider], secret_key: str
):
    first, second = make_provider(), make_provider()
    first.hang(2)
    second.json(second.completion("quick"))
    chat = FallbackChat(
        [
            openai_at(first, "slow-2024-01-01", secret_key, timeout=0.2),
            openai_at(second, "quick-2024-01-01", secret_key),
        ]
    )

    reply = await chat.ainvoke([Message.user("hi")])

    assert reply.content == "quick"
    assert first.attempts == 2


async def test_401_on_primary_is_raised_not_masked(
    make_provider: Callable[[], FakeProvider], secret_key: str
):
    first, second = make_provider(), make_provider()
    first.error(401, "invalid key")
    second.json(second.completion("should not answer"))
    chat = FallbackChat(
        [
            openai_at(first, "a-2024-01-01", secret_key),
            openai_at(second, "b-2024-01-01", secret_key),
        ]
    )

    with pytest.raises(ModelHTTPError) as info:
        await chat.ainvoke([Message.user("hi")])

    assert info.value.status_code == 401
    assert first.attempts == 1
    assert second.attempts == 0


async def test_all_failing_raises_unavailable_with_all_errors():
    a = Failing("a", ModelTimeoutError("slow", model="a"))
    b = Failing("b", ModelConnectionError("down", model="b"))
    chat = FallbackChat([a, b])

    with pytest.raises(ModelUnavailableError) as info:
        await chat.ainvoke([Message.user("hi")])

    assert [type(e) for e in info.value.errors] == [ModelTimeoutError, ModelConnectionError]
    assert "all 2 models failed" in str(info.value)
    assert (a.calls, b.calls) == (1, 1)


async def test_config_errors_do_not_fall_back():
    a = Failing("a", ModelConfigError("no key"))
    b = ScriptedChat(["unused"])
    with pytest.raises(ModelConfigError):
        await FallbackChat([a, b]).ainvoke([Message.user("hi")])
    assert b.calls == []


async def test_stream_falls_back_before_the_first_delta():
    chat = FallbackChat([Failing("a", ModelTimeoutError("slow")), ScriptedChat(["hello there"])])

    items = [item async for item in chat.astream([Message.user("hi")])]

    assert items[:-1] == ["hello ", "there"]
    final = items[-1]
    assert isinstance(final, Message)
    assert final.metadata["model"] == "scripted"


async def test_stream_does_not_fall_back_after_a_delta():
    backup = ScriptedChat(["unused"])
    chat = FallbackChat([Partial(), backup])
    seen: list[str | Message] = []

    with pytest.raises(ModelConnectionError):
        async for item in chat.astream([Message.user("hi")]):
            seen.append(item)

    assert seen == ["half"]
    assert backup.calls == []


def test_needs_at_least_one_model():
    with pytest.raises(ModelConfigError):
        FallbackChat([])


def test_should_fall_back():
    assert should_fall_back(ModelUnavailableError("gone"))
    assert should_fall_back(ModelTimeoutError("slow"))
    assert should_fall_back(ModelHTTPError(503, "busy", retryable=True))
    assert not should_fall_back(ModelHTTPError(400, "bad"))
    assert not should_fall_back(ModelHTTPError(401, "key"))
    assert not should_fall_back(ModelConfigError("setup"))
