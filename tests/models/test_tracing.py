"""The ``agentflow.model`` span of ``call_model``: model names, token counts and the number of
attempts, for plain and streamed calls, retries, fallbacks and calls that give up."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from agentflow import tracing
from agentflow.graph.messages import Message
from agentflow.graph.stream import Listener, StreamChunk, reset_listener, set_listener
from agentflow.models import (
    FallbackChat,
    ModelHTTPError,
    ModelUnavailableError,
    OpenAIChat,
    RetryPolicy,
    ScriptedChat,
    call_model,
    retry_async,
)
from agentflow.models.retry import attempt_count

if TYPE_CHECKING:
    from collections.abc import Callable

    from .conftest import FakeProvider

PRIMARY = "gpt-test-2024-01-01"
BACKUP = "gpt-backup-2024-01-01"
USAGE = {"prompt_tokens": 21, "completion_tokens": 4}


def make_model(provider: FakeProvider, name: str, retry: RetryPolicy) -> OpenAIChat:
    return OpenAIChat(name, base_url=provider.url, api_key="sk-test", retry=retry)


def fallback(primary: FakeProvider, backup: FakeProvider, retry: RetryPolicy) -> FallbackChat:
    return FallbackChat([make_model(primary, PRIMARY, retry), make_model(backup, BACKUP, retry)])


async def call(model: Any, *, stream: bool) -> tuple[Message, list[StreamChunk]]:
    """``call_model`` inside a node whose run is streamed (``stream``) or not."""
    chunks: list[StreamChunk] = []
    token = None
    if stream:
        loop = asyncio.get_running_loop()
        token = set_listener(Listener(chunks.append, loop, "thread-1", "run-1", "agent"))
    try:
        message = await call_model(model, [Message.user("hi")])
    finally:
        if token is not None:
            reset_listener(token)
    return message, chunks


def model_span(exporter: InMemorySpanExporter) -> tuple[ReadableSpan, dict[str, Any]]:
    [span] = exporter.get_finished_spans()
    assert span.name == "agentflow.model"
    return span, dict(span.attributes or {})


def text_stream(provider: FakeProvider, *parts: str) -> list[Any]:
    return provider.text_stream(*parts, usage=USAGE)


async def test_plain_call_retried_once(
    provider: FakeProvider, fast_retry: RetryPolicy, exporter: InMemorySpanExporter
) -> None:
    provider.error(503).json(provider.completion("Hi.", usage=USAGE))

    await call(make_model(provider, PRIMARY, fast_retry), stream=False)

    span, attrs = model_span(exporter)
    assert span.status.status_code == StatusCode.UNSET
    assert attrs["gen_ai.request.model"] == PRIMARY
    assert attrs["gen_ai.response.model"] == PRIMARY
    assert attrs["gen_ai.usage.input_tokens"] == 21
    assert attrs["gen_ai.usage.output_tokens"] == 4
    assert attrs["agentflow.model.attempts"] == provider.attempts == 2


async def test_streamed_call_retried_once_before_the_first_delta(
    provider: FakeProvider, fast_retry: RetryPolicy, exporter: InMemorySpanExporter
) -> None:
    provider.error(503).stream(text_stream(provider, "One", " two"))

    reply, chunks = await call(make_model(provider, PRIMARY, fast_retry), stream=True)

    assert [c.data["delta"] for c in chunks] == ["One", " two"]
    assert all(r.body["stream"] is True for r in provider.requests)
    span, attrs = model_span(exporter)
    assert span.status.status_code == StatusCode.UNSET
    assert attrs["gen_ai.request.model"] == PRIMARY
    assert attrs["gen_ai.response.model"] == PRIMARY == reply.metadata["model"]
    assert attrs["gen_ai.usage.input_tokens"] == 21
    assert attrs["gen_ai.usage.output_tokens"] == 4
    assert attrs["agentflow.model.attempts"] == provider.attempts == 2


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
async def test_first_attempt_answers(
    provider: FakeProvider,
    fast_retry: RetryPolicy,
    exporter: InMemorySpanExporter,
    stream: bool,
) -> None:
    if stream:
        provider.stream(text_stream(provider, "Hi."))
    else:
        provider.json(provider.completion("Hi.", usage=USAGE))

    await call(make_model(provider, PRIMARY, fast_retry), stream=stream)

    _, attrs = model_span(exporter)
    assert attrs["agentflow.model.attempts"] == provider.attempts == 1
    assert attrs["gen_ai.usage.input_tokens"] == 21


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
async def test_giving_up_records_every_attempt_and_the_error(
    provider: FakeProvider,
    fast_retry: RetryPolicy,
    exporter: InMemorySpanExporter,
    stream: bool,
) -> None:
    provider.error(503).error(429).error(503, "sk-should-not-leak")

    with pytest.raises(ModelUnavailableError):
        await call(make_model(provider, PRIMARY, fast_retry), stream=stream)

    span, attrs = model_span(exporter)
    assert span.status.status_code == StatusCode.ERROR
    assert attrs["error.type"] == "ModelUnavailableError"
    assert attrs["gen_ai.request.model"] == PRIMARY
    assert attrs["agentflow.model.attempts"] == fast_retry.max_attempts == provider.attempts
    assert "gen_ai.usage.input_tokens" not in attrs
    assert "sk-should-not-leak" not in repr(attrs) + str(span.status.description)


async def test_a_non_retryable_error_is_one_attempt(
    provider: FakeProvider, fast_retry: RetryPolicy, exporter: InMemorySpanExporter
) -> None:
    provider.error(401)

    with pytest.raises(ModelHTTPError):
        await call(make_model(provider, PRIMARY, fast_retry), stream=True)

    span, attrs = model_span(exporter)
    assert span.status.status_code == StatusCode.ERROR
    assert attrs["error.type"] == "ModelHTTPError"
    assert attrs["agentflow.model.attempts"] == 1


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
async def test_fallback_span_names_the_answering_model_and_counts_all_attempts(
    make_provider: Callable[[], FakeProvider],
    fast_retry: RetryPolicy,
    exporter: InMemorySpanExporter,
    stream: bool,
) -> None:
    primary, backup = make_provider(), make_provider()
    primary.error(503).error(503).error(503)  # gives up after 3 attempts
    backup.error(503)
    if stream:
        backup.stream(text_stream(backup, "Hi."))
    else:
        backup.json(backup.completion("Hi.", usage=USAGE))
    chat = fallback(primary, backup, fast_retry)

    reply, _ = await call(chat, stream=stream)

    span, attrs = model_span(exporter)
    assert span.status.status_code == StatusCode.UNSET
    assert attrs["gen_ai.request.model"] == chat.name == f"fallback({PRIMARY},{BACKUP})"
    assert attrs["gen_ai.response.model"] == BACKUP == reply.metadata["model"]
    assert attrs["gen_ai.usage.input_tokens"] == 21
    assert attrs["gen_ai.usage.output_tokens"] == 4
    assert (primary.attempts, backup.attempts) == (3, 2)
    assert attrs["agentflow.model.attempts"] == 5


async def test_fallback_whose_backup_answers_at_once(
    make_provider: Callable[[], FakeProvider],
    fast_retry: RetryPolicy,
    exporter: InMemorySpanExporter,
) -> None:
    primary, backup = make_provider(), make_provider()
    primary.error(503).error(503).error(503)
    backup.stream(text_stream(backup, "Hi."))
    chat = fallback(primary, backup, fast_retry)

    await call(chat, stream=True)

    _, attrs = model_span(exporter)
    assert attrs["gen_ai.response.model"] == BACKUP
    assert attrs["agentflow.model.attempts"] == 4


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
async def test_fallback_where_every_model_gives_up(
    make_provider: Callable[[], FakeProvider],
    fast_retry: RetryPolicy,
    exporter: InMemorySpanExporter,
    stream: bool,
) -> None:
    primary, backup = make_provider(), make_provider()
    primary.error(503).error(503).error(503)
    backup.error(500).error(502).error(503)
    chat = fallback(primary, backup, fast_retry)

    with pytest.raises(ModelUnavailableError, match="all 2 models failed"):
        await call(chat, stream=stream)

    span, attrs = model_span(exporter)
    assert span.status.status_code == StatusCode.ERROR
    assert attrs["error.type"] == "ModelUnavailableError"
    assert attrs["gen_ai.request.model"] == chat.name
    assert "gen_ai.response.model" not in attrs
    assert attrs["agentflow.model.attempts"] == 6 == primary.attempts + backup.attempts


async def test_a_model_without_retries_is_one_attempt(exporter: InMemorySpanExporter) -> None:
    model = ScriptedChat(["hello there"], name="scripted-model")

    await call(model, stream=True)

    _, attrs = model_span(exporter)
    assert attrs["gen_ai.request.model"] == "scripted-model"
    assert attrs["agentflow.model.attempts"] == 1
    assert attrs["gen_ai.usage.output_tokens"] > 0


async def test_retries_outside_call_model_touch_no_span(
    provider: FakeProvider, fast_retry: RetryPolicy, exporter: InMemorySpanExporter
) -> None:
    """A model called directly (not through ``call_model``) has no model span: its retries
    must not be written on whatever span is current (here a node's)."""
    provider.error(503).json(provider.completion("Hi."))
    model = make_model(provider, PRIMARY, fast_retry)

    with tracing.span("agentflow.node", {"agentflow.node": "custom"}):
        await model.ainvoke([Message.user("hi")])

    [span] = exporter.get_finished_spans()
    assert span.name == "agentflow.node"
    assert "agentflow.model.attempts" not in (span.attributes or {})
    assert provider.attempts == 2


async def test_tracing_off_records_and_counts_nothing(
    provider: FakeProvider, fast_retry: RetryPolicy
) -> None:
    tracing.use_tracer_provider(None)
    try:
        seen: list[object] = []

        async def attempt() -> str:
            seen.append(attempt_count.get())
            if len(seen) == 1:
                raise ModelHTTPError(503, "busy", retryable=True)
            return "ok"

        assert await retry_async(attempt, fast_retry, model=PRIMARY) == "ok"
        provider.error(503).stream(text_stream(provider, "Hi."))
        reply, chunks = await call(make_model(provider, PRIMARY, fast_retry), stream=True)
    finally:
        tracing.reset()
    assert seen == [None, None]  # no counter is set up when tracing is off
    assert reply.content == "Hi." and [c.data["delta"] for c in chunks] == ["Hi."]
    assert provider.attempts == 2
