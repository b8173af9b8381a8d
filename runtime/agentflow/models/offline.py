"""Offline, deterministic chat models: for tests, demos and templates without an API key.

* ``ScriptedChat`` replays a fixed list of answers and records what it was asked.
* ``EchoChat`` answers ``"Echo: <last user message>"``.
* ``DemoChat`` is a tiny rule-based model: it calls an offered tool when the user's message
  clearly asks for it, answers from the tool's result, and otherwise says honestly that it is
  an offline demo and how to switch to a real model.

Token usage is estimated as one token per four characters (rounded up).
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agentflow.graph.messages import Message, ToolCall, Usage, new_id
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


def _last_user_text(messages: Sequence[Message]) -> str:
    for message in reversed(messages):
        if message.role == "user":
            return message.text
    return ""


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """One call a ScriptedChat received: a copy of the messages, and the tools offered."""

    messages: list[Message]
    tools: list[dict[str, Any]] | None = None


class _OfflineChat:
    """Shared ainvoke/astream for offline models; subclasses implement ``_respond``."""

    name: str

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


class ScriptedChat(_OfflineChat):
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


class EchoChat(_OfflineChat):
    """Answers ``"Echo: <text of the last user message>"``."""

    def __init__(self, *, name: str = "echo") -> None:
        self.name = name

    def _respond(self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None) -> Message:
        return Message.assistant(f"Echo: {_last_user_text(messages)}")


# ---------------------------------------------------------------------------------------------
# DemoChat

DEFAULT_SETUP_HINT = (
    "To use a real model, set OPENAI_API_KEY (and OPENAI_BASE_URL for another "
    "OpenAI-compatible server, such as http://localhost:11434/v1 for Ollama), and use "
    "OpenAIChat with a pinned model name, e.g. OpenAIChat('gpt-4o-mini-2024-07-18')."
)

_MATH_WORDS = frozenset(
    {
        "calc",
        "calculator",
        "calculate",
        "math",
        "arithmetic",
        "add",
        "sum",
        "plus",
        "multiply",
        "evaluate",
        "eval",
        "compute",
        "expression",
    }
)
_TIME_WORDS = frozenset({"time", "clock", "now", "date", "datetime", "timezone"})
_TIME_QUESTION = re.compile(r"\b(time|clock|date|today|what day)\b", re.I)
_STOP_WORDS = frozenset(
    {
        "get",
        "set",
        "list",
        "run",
        "make",
        "tool",
        "func",
        "fn",
        "the",
        "a",
        "an",
        "of",
        "to",
        "for",
        "and",
        "or",
        "is",
        "by",
        "with",
        "in",
        "on",
        "do",
        "from",
        "this",
        "that",
        "it",
        "returns",
        "return",
        "given",
        "value",
        "values",
        "result",
        "string",
        "text",
        "input",
        "user",
        "current",
        "number",
        "numbers",
        "about",
        "which",
        "their",
        "there",
        "these",
    }
)
_WORD_OPS = (
    (re.compile(r"\bmultiplied by\b", re.I), "*"),
    (re.compile(r"\bdivided by\b", re.I), "/"),
    (re.compile(r"\btimes\b", re.I), "*"),
    (re.compile(r"\bplus\b", re.I), "+"),
    (re.compile(r"\bminus\b", re.I), "-"),
    (re.compile(r"(?<=\d)\s*[x\u00d7]\s*(?=\d)"), "*"),
    (re.compile("\u00f7"), "/"),
)
_NUMBER = r"-?\d+(?:\.\d+)?"
_EXPRESSION = re.compile(rf"[(\s]*{_NUMBER}\)*(?:\s*(?:\*\*|[-+*/^%])\s*[(\s]*{_NUMBER}\)*)+")
_UNSIGNED = re.compile(r"\d+(?:\.\d+)?")
_PLACE = re.compile(r"\b(?:in|at|for|of)\s+([A-Z][\w.'-]*(?:[ ,]+[A-Z][\w.'-]*)*)")
_TZ = re.compile(r"\b(UTC|GMT|[A-Z][a-z]+/[A-Z][A-Za-z_]+)\b")


def _words(text: str) -> set[str]:
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)
    return {w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w}


def _tool_words(tool: ToolSchema) -> tuple[set[str], set[str]]:
    name_words = _words(str(tool.get("name", ""))) - _STOP_WORDS
    desc_words = {
        w for w in _words(str(tool.get("description") or "")) if len(w) >= 5
    } - _STOP_WORDS
    return name_words, desc_words


def _params(tool: ToolSchema) -> tuple[dict[str, Any], list[str]]:
    schema = tool.get("parameters") or {}
    props = schema.get("properties") or {}
    required = [r for r in schema.get("required") or [] if r in props]
    return dict(props), list(required)


def _find_expression(text: str) -> str | None:
    normalized = text
    for pattern, op in _WORD_OPS:
        normalized = pattern.sub(op, normalized)
    match = _EXPRESSION.search(normalized)
    return match.group(0).strip() if match else None


def _numbers(text: str) -> list[str]:
    """Numbers in text; a '-' is a sign only when no number or ')' comes before it."""
    found: list[str] = []
    for match in _UNSIGNED.finditer(text):
        before = text[: match.start()].rstrip()
        if (
            before.endswith("-")
            and not before[:-1].rstrip()[-1:].isdigit()
            and not (before[:-1].rstrip().endswith(")"))
        ):
            found.append("-" + match.group(0))
        else:
            found.append(match.group(0))
    return found


def _as_number(raw: str, schema: Mapping[str, Any]) -> int | float:
    value = float(raw)
    if schema.get("type") == "integer" or value.is_integer():
        return int(value)
    return value


def _fill_arguments(tool: ToolSchema, text: str, *, math: str | None) -> dict[str, Any] | None:
    """Arguments for ``tool`` built from the user's text; None when a required one is unknown."""
    props, required = _params(tool)
    if not props:
        return {}
    strings = [n for n, s in props.items() if (s or {}).get("type", "string") == "string"]
    numbers = [n for n, s in props.items() if (s or {}).get("type") in ("number", "integer")]
    arrays = [n for n, s in props.items() if (s or {}).get("type") == "array"]
    found = _numbers(math or text)
    args: dict[str, Any] = {}
    if math is not None and numbers and len(found) >= len(numbers):
        for name, raw in zip(numbers, found, strict=False):
            args[name] = _as_number(raw, props[name])
    elif math is not None and arrays:
        args[arrays[0]] = [_as_number(raw, {}) for raw in found]
    elif numbers and found and all(n in required for n in numbers):
        for name, raw in zip(numbers, found, strict=False):
            args[name] = _as_number(raw, props[name])
    for name in strings:
        if name in args:
            continue
        lowered = name.lower()
        if "zone" in lowered or lowered == "tz":
            tz = _TZ.search(text)
            if tz:
                args[name] = tz.group(1)
            elif name in required:
                args[name] = "UTC"
        elif lowered in ("city", "location", "place", "country", "region"):
            place = _PLACE.search(text)
            if place:
                args[name] = place.group(1).rstrip(" ,")
            elif name in required:
                args[name] = text.strip()
        elif math is not None and name in required:
            args[name] = math
        elif name in required and len([s for s in strings if s in required]) == 1:
            args[name] = text.strip()
    if any(name not in args for name in required):
        return None
    return args


class DemoChat(_OfflineChat):
    """A small rule-based offline model for templates and demos; no API key needed.

    * If tools are offered and the last user message clearly asks for one -- arithmetic such
      as "what is 2+3" with a calculator/add/math tool, a question about the time with a
      time/clock tool, or a message naming a tool's words -- it calls that tool, with
      arguments taken from the message (a tool with one string parameter gets the text).
    * When tool results come back it answers with them.
    * Otherwise it says that it is an offline demo model that cannot really reason, and how to
      switch to a real model (``setup_hint``).

    Deterministic: the same conversation always gets the same answer.
    """

    def __init__(self, *, name: str = "demo", setup_hint: str = DEFAULT_SETUP_HINT) -> None:
        self.name = name
        self.setup_hint = setup_hint

    def _respond(self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None) -> Message:
        if messages and messages[-1].role == "tool":
            return self._answer_from_tools(messages)
        text = _last_user_text(messages)
        if tools and text.strip():
            picked = self._pick_tool(text, tools)
            if picked is not None:
                tool, args = picked
                call = ToolCall(name=str(tool["name"]), arguments=args)
                call.id = f"call_demo_{len([m for m in messages if m.tool_calls]) + 1}"
                return Message.assistant("", tool_calls=[call])
        return Message.assistant(self._honest_answer(text, tools))

    def _pick_tool(
        self, text: str, tools: Sequence[ToolSchema]
    ) -> tuple[ToolSchema, dict[str, Any]] | None:
        usable = [t for t in tools if isinstance(t.get("name"), str) and t.get("name")]
        math = _find_expression(text)
        if math is not None:
            for tool in usable:
                name_words, desc_words = _tool_words(tool)
                if (name_words | desc_words) & _MATH_WORDS:
                    args = _fill_arguments(tool, text, math=math)
                    if args is not None:
                        return tool, args
        if _TIME_QUESTION.search(text):
            for tool in usable:
                name_words, desc_words = _tool_words(tool)
                if name_words & _TIME_WORDS or desc_words & {"clock", "timezone", "datetime"}:
                    args = _fill_arguments(tool, text, math=None)
                    if args is not None:
                        return tool, args
        said = _words(text)
        for by_description in (False, True):
            for tool in usable:
                name_words, desc_words = _tool_words(tool)
                if said & (desc_words if by_description else name_words):
                    args = _fill_arguments(tool, text, math=None)
                    if args is not None:
                        return tool, args
        return None

    def _answer_from_tools(self, messages: Sequence[Message]) -> Message:
        results: list[Message] = []
        for message in reversed(messages):
            if message.role != "tool":
                break
            results.append(message)
        results.reverse()
        names: dict[str, str] = {}
        for message in messages:
            for call in message.tool_calls:
                names[call.id] = call.name
        lines = []
        for result in results:
            tool = names.get(result.tool_call_id or "") or result.name or "tool"
            lines.append(f"The {tool} tool returned: {result.text.strip()}")
        return Message.assistant("\n".join(lines))

    def _honest_answer(self, text: str, tools: Sequence[ToolSchema] | None) -> str:
        quoted = text.strip()
        if len(quoted) > 200:
            quoted = quoted[:200] + "..."
        parts = [
            "I'm DemoChat, an offline demo model: I can't do real reasoning or answer "
            "open questions."
        ]
        if quoted:
            parts.append(f'You said: "{quoted}".')
        if tools:
            names = ", ".join(str(t.get("name")) for t in tools)
            parts.append(f"I can only call a tool ({names}) when your message clearly asks for it.")
        parts.append(self.setup_hint)
        return " ".join(parts)
