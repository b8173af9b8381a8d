"""The ChatModel protocol every model implements, and ``call_model`` which nodes use."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from agentflow import tracing
from agentflow.graph.messages import Message, new_id
from agentflow.graph.stream import emit_delta, streaming_requested
from agentflow.models.errors import ModelResponseError
from agentflow.models.retry import AttemptCount, attempt_count

ToolSchema = Mapping[str, Any]
"""A tool as a JSON-schema dict: ``{"name": ..., "description": ..., "parameters": {...}}``."""


@runtime_checkable
class ChatModel(Protocol):
    """A chat model: messages (and optional tools) in, one assistant ``Message`` out.

    ``ainvoke`` returns the assistant message with ``tool_calls`` (decoded arguments),
    ``usage`` (prompt/completion tokens) and ``metadata["model"]`` set.
    ``astream`` yields text deltas (``str``) as they arrive and finally that same full
    ``Message``. ``timeout`` (seconds) overrides the model's configured timeout for one call.
    """

    name: str

    async def ainvoke(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSchema] | None = None,
        timeout: float | None = None,
    ) -> Message: ...

    def astream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSchema] | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[str | Message]: ...


async def call_model(
    model: ChatModel,
    messages: Sequence[Message],
    *,
    tools: Sequence[ToolSchema] | None = None,
    timeout: float | None = None,
) -> Message:
    """Call ``model`` the way the current run wants it.

    When the run's caller consumes a stream, the model is streamed and every text delta is
    forwarded with ``emit_delta``; the returned message gets the id the deltas carried, so a
    consumer can match the final MESSAGE event to its deltas. Otherwise ``ainvoke`` is used.
    """
    if not tracing.recording():
        return await _call_model(model, messages, tools=tools, timeout=timeout)
    name = getattr(model, "name", None)
    attributes = {
        "gen_ai.request.model": name,
        "agentflow.model.attempts": 1,
    }
    # The model's RetryLoops (one per model a FallbackChat tries) count into this; it is
    # written here, on this span, whether the call succeeds or fails.
    attempts = AttemptCount()
    token = attempt_count.set(attempts)
    try:
        with tracing.span("agentflow.model", attributes):
            try:
                message = await _call_model(model, messages, tools=tools, timeout=timeout)
            finally:
                if attempts.value > 1:
                    tracing.set_attributes({"agentflow.model.attempts": attempts.value})
            usage = message.usage
            tracing.set_attributes(
                {
                    "gen_ai.response.model": message.metadata.get("model"),
                    "gen_ai.usage.input_tokens": usage.prompt_tokens if usage else None,
                    "gen_ai.usage.output_tokens": usage.completion_tokens if usage else None,
                    "agentflow.model.tool_calls": len(message.tool_calls or ()),
                }
            )
            return message
    finally:
        attempt_count.reset(token)


async def _call_model(
    model: ChatModel,
    messages: Sequence[Message],
    *,
    tools: Sequence[ToolSchema] | None = None,
    timeout: float | None = None,
) -> Message:
    if not streaming_requested():
        message = await model.ainvoke(messages, tools=tools, timeout=timeout)
    else:
        message_id = new_id()
        final: Message | None = None
        stream = model.astream(messages, tools=tools, timeout=timeout)
        try:
            async for item in stream:
                if isinstance(item, Message):
                    final = item
                else:
                    emit_delta(item, message_id=message_id)
        finally:
            await aclose_iterator(stream)
        if final is None:
            raise ModelResponseError(
                "the stream ended without a final message", model=getattr(model, "name", None)
            )
        final.id = message_id
        message = final
    message.metadata.setdefault("model", model.name)
    return message


async def aclose_iterator(iterator: AsyncIterator[Any]) -> None:
    """Close an async generator early (runs its cleanup); a no-op for plain iterators."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()
