"""Offline, deterministic chat models: for tests, demos and templates without an API key.

* ``ScriptedChat`` replays a fixed list of answers and records what it was asked.
* ``EchoChat`` answers ``"Echo: <last user message>"``.
* ``DemoChat`` (in ``agentflow.models.demo``) is a tiny rule-based model for templates.

All of them have ``offline = True``: the server, ``/health`` and ``agentflow doctor`` use it to
tell that a graph is not answered by a real model. Token usage is estimated as one token per
four characters (rounded up).
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agentflow.graph.messages import Message, Usage, new_id
from agentflow.models.base import ToolSchema
from agentflow.models.errors import ModelConfigError, ScriptExhaustedError


def estimate_tokens(text: str) -> int:
    """A rough token count: one token per four characters, rounded up."""
    return (len(text) + 3) // 4


def _message_tokens(message: Message) -> int:
    count = estimate_tokens(message.text)
    for call in message.tool_calls:
        count += estimate_tokens(call.name) + estimate_tokens(str(call.arguments))
    return count


def estimate_usage(messages: Sequence[Message], reply: Message) -> Usage:
    return Usage(
        prompt_tokens=sum(_message_tokens(m) for m in messages),
        completion_tokens=_message_tokens(reply),
    )


def split_words(text: str) -> list[str]:
    """Split text into word deltas that join back to exactly ``text``."""
    return [part for part in re.split(r"(?<=\s)(?=\S)", text) if part]


def last_user_text(messages: Sequence[Message]) -> str:
    for message in reversed(messages):
        if message.role == "user":
            return message.text
    return ""


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """One call a ScriptedChat received: a copy of the messages, and the tools offered."""

    messages: list[Message]
    tools: list[dict[str, Any]] | None = None


class OfflineChat:
    """Shared ainvoke/astream for offline models; subclasses implement ``_respond``."""

    name: str
    offline = True  # canned answers, no real model behind them

    def _respond(
        self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None
    ) -> Message:  # pragma: no cover - abstract
        raise NotImplementedError

    def _finish(self, messages: Sequence[Message], reply: Message) -> Message:
        if reply.usage is None:
            reply.usage = estimate_usage(messages, reply)
        reply.metadata.setdefault("model", self.name)
        return reply

    async def ainvoke(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSchema] | None = None,
        timeout: float | None = None,
    ) -> Message:
        return self._finish(messages, self._respond(messages, tools))

    async def astream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSchema] | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[str | Message]:
        reply = self._finish(messages, self._respond(messages, tools))
        for word in split_words(reply.text):
            yield word
        yield reply


def _to_message(response: Message | str | Mapping[str, Any], position: int) -> Message:
    if isinstance(response, Message):
        if response.role != "assistant":
            raise ModelConfigError(
                f"ScriptedChat response #{position} must be an assistant message, "
                f"got role {response.role!r}"
            )
        return copy.deepcopy(response)
    if isinstance(response, str):
        return Message.assistant(response)
    if isinstance(response, Mapping):
        data = {"role": "assistant", **dict(response)}
        try:
            return Message.from_dict(data)
        except Exception as exc:
            raise ModelConfigError(f"ScriptedChat response #{position} is invalid: {exc}") from exc
    raise ModelConfigError(
        f"ScriptedChat response #{position} must be a Message, str or dict, "
        f"got {type(response).__name__}"
    )


class ScriptedChat(OfflineChat):
    """Replays ``responses`` in order, one per call.

    A response is a ``Message``, a ``str`` (assistant text) or a dict such as
    ``{"content": "...", "tool_calls": [{"name": "add", "arguments": {"a": 1}}]}``.
    Every call is recorded in ``calls`` (messages and tools) for assertions. Calling it more
    often than it has responses raises ``ScriptExhaustedError``.
    """

    def __init__(
        self,
        responses: Sequence[Message | str | Mapping[str, Any]],
        *,
        name: str = "scripted",
    ) -> None:
        if isinstance(responses, str | Message | Mapping):
            raise ModelConfigError("ScriptedChat takes a list of responses")
        self.name = name
        self._responses = [_to_message(r, i + 1) for i, r in enumerate(responses)]
        self._next = 0
        self._lock = threading.Lock()
        self.calls: list[RecordedCall] = []

    @property
    def remaining(self) -> int:
        return len(self._responses) - self._next

    def _respond(self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None) -> Message:
        with self._lock:
            self.calls.append(
                RecordedCall(
                    messages=copy.deepcopy(list(messages)),
                    tools=[dict(t) for t in tools] if tools is not None else None,
                )
            )
            if self._next >= len(self._responses):
                raise ScriptExhaustedError(
                    f"ScriptedChat ran out of responses: call #{len(self.calls)} but only "
                    f"{len(self._responses)} scripted; add more responses to the script",
                    model=self.name,
                )
            template = self._responses[self._next]
            self._next += 1
        reply = copy.deepcopy(template)
        reply.id = new_id()
        return reply


class EchoChat(OfflineChat):
    """Answers ``"Echo: <text of the last user message>"``."""

    def __init__(self, *, name: str = "echo") -> None:
        self.name = name

    def _respond(self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None) -> Message:
        return Message.assistant(f"Echo: {last_user_text(messages)}")
