"""DemoChat: a small rule-based offline model for templates and demos; no API key needed.

* Arithmetic ("what is (2 + 3) * 4", "12 plus 30") goes to a calculator tool that takes the
  whole expression, or else to one tool per operation (add, subtract, multiply, divide,
  power), one call per model turn, each on the results of the ones before. When no offered
  tool does an operation the question needs, it says so instead of calling another one.
* A question about the time goes to a time/clock tool; a message naming a tool's words calls
  that tool, with arguments taken from the message (a tool with one string parameter gets
  the text).
* When the tool results are in, it answers with them.
* Otherwise it says that it is an offline demo model that cannot really reason, and how to
  switch to a real model (``setup_hint``).

Deterministic: the same conversation always gets the same answer. Every pattern it matches
runs in time linear in the message (see ``agentflow.models.arithmetic``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from agentflow.graph.messages import Message, ToolCall
from agentflow.models.arithmetic import (
    Arithmetic,
    Number,
    Operation,
    Ref,
    find_arithmetic,
    numbers_in,
)
from agentflow.models.base import ToolSchema
from agentflow.models.offline import OfflineChat

DEFAULT_SETUP_HINT = (
    "To use a real model, set OPENAI_API_KEY (and OPENAI_BASE_URL for another "
    "OpenAI-compatible server, such as http://localhost:11434/v1 for Ollama), and use "
    "OpenAIChat with a pinned model name, e.g. OpenAIChat('gpt-4o-mini-2024-07-18')."
)
QUOTE_LIMIT = 200

OPERATION_WORDS: dict[str, frozenset[str]] = {
    "+": frozenset({"add", "addition", "plus", "sum"}),
    "-": frozenset({"subtract", "subtraction", "minus", "difference", "sub"}),
    "*": frozenset({"multiply", "multiplication", "times", "product", "mul"}),
    "/": frozenset({"divide", "division", "quotient", "div"}),
    "**": frozenset({"power", "pow", "exponent", "exponentiate"}),
}
_VERBS = {"+": "add", "-": "subtract", "*": "multiply", "/": "divide", "**": "raise to a power"}
_EXPRESSION_WORDS = frozenset(
    {"calc", "calculator", "calculate", "evaluate", "eval", "compute", "expression", "math",
     "arithmetic"}
)  # fmt: skip
_ARITHMETIC_WORDS = _EXPRESSION_WORDS.union(*OPERATION_WORDS.values())
_TIME_WORDS = frozenset({"time", "clock", "now", "date", "datetime", "timezone"})
_TIME_QUESTION = re.compile(r"\b(time|clock|date|today|what day)\b", re.I)
_STOP_WORDS = frozenset(
    {"get", "set", "list", "run", "make", "tool", "func", "fn", "the", "a", "an", "of", "to",
     "for", "and", "or", "is", "by", "with", "in", "on", "do", "from", "this", "that", "it",
     "returns", "return", "given", "value", "values", "result", "string", "text", "input",
     "user", "current", "number", "numbers", "about", "which", "their", "there", "these"}
)  # fmt: skip
# Separators are exactly ", " or " ", which no name character matches: linear per start.
_PLACE = re.compile(r"\b(?:in|at|for|of)[ \t]+([A-Z][\w.'-]*(?:,? [A-Z][\w.'-]*)*)")
_TZ = re.compile(r"\b(UTC|GMT|[A-Z][a-z]+/[A-Z][A-Za-z_]+)\b")
_CAMEL = re.compile(r"([a-z])([A-Z])")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def _words(text: str) -> set[str]:
    return {w for w in _NON_WORD.split(_CAMEL.sub(r"\1 \2", text).lower()) if w}


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


def _kind(schema: Any) -> str:
    return str((schema or {}).get("type", "string"))


def _argument(value: Number, schema: Any) -> Number | None:
    """``value`` as the parameter's JSON type; None when an integer parameter gets a
    fraction."""
    integral = float(value).is_integer()
    if _kind(schema) == "integer":
        return int(value) if integral else None
    return int(value) if integral and abs(value) < 2**53 else value


def _quote(text: str) -> str:
    text = text.strip()
    return text if len(text) <= QUOTE_LIMIT else text[:QUOTE_LIMIT] + "..."


def _names(tools: Sequence[ToolSchema]) -> str:
    return ", ".join(str(t.get("name")) for t in tools)


# -- arithmetic --------------------------------------------------------------------------------


def _expression_tool(tools: Sequence[ToolSchema]) -> tuple[ToolSchema, str] | None:
    """A calculator: arithmetic words and one string parameter (the one required, if any)."""
    for tool in tools:
        name_words, desc_words = _tool_words(tool)
        if not (name_words | desc_words) & _EXPRESSION_WORDS:
            continue
        props, required = _params(tool)
        strings = [n for n, s in props.items() if _kind(s) == "string"]
        wanted = required if required else strings
        if len(wanted) == 1 and wanted[0] in strings:
            return tool, wanted[0]
    return None


def _operand_names(tool: ToolSchema) -> tuple[str, str] | None:
    """The tool's two number parameters, when they are all it requires."""
    props, required = _params(tool)
    numeric = [n for n, s in props.items() if _kind(s) in ("number", "integer")]
    if len(numeric) < 2 or any(name not in numeric[:2] for name in required):
        return None
    return numeric[0], numeric[1]


def _operation_tools(question: Arithmetic, tools: Sequence[ToolSchema]) -> dict[str, ToolSchema]:
    """The tool for each operator of the question that one of ``tools`` does."""
    found: dict[str, ToolSchema] = {}
    for op in question.operators:
        for by_description in (False, True):
            for tool in tools:
                name_words, desc_words = _tool_words(tool)
                words = desc_words if by_description else name_words
                if words & OPERATION_WORDS[op] and _operand_names(tool) is not None:
                    found.setdefault(op, tool)
    return found


def _step_arguments(
    tool: ToolSchema, step: Operation, results: Sequence[Number]
) -> dict[str, Any] | None:
    names = _operand_names(tool)
    assert names is not None
    props, _ = _params(tool)
    args: dict[str, Any] = {}
    for name, operand in zip(names, (step.left, step.right), strict=True):
        value = results[operand.step] if isinstance(operand, Ref) else operand
        converted = _argument(value, props[name])
        if converted is None:
            return None
        args[name] = converted
    return args


def _as_number(text: str) -> Number | None:
    text = text.strip()
    if not text or len(text) > 40:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


# -- other tools -------------------------------------------------------------------------------


def _fill_arguments(tool: ToolSchema, text: str) -> dict[str, Any] | None:
    """Arguments for ``tool`` built from the user's text; None when a required one is unknown."""
    props, required = _params(tool)
    if not props:
        return {}
    strings = [n for n, s in props.items() if _kind(s) == "string"]
    numbers = [n for n, s in props.items() if _kind(s) in ("number", "integer")]
    found = numbers_in(text)
    args: dict[str, Any] = {}
    if numbers and found and all(n in required for n in numbers):
        for name, raw in zip(numbers, found, strict=False):
            value = _argument(raw, props[name])
            if value is not None:
                args[name] = value
    for name in strings:
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
        elif name in required and len([s for s in strings if s in required]) == 1:
            args[name] = text.strip()
    if any(name not in args for name in required):
        return None
    return args


def _is_arithmetic_tool(tool: ToolSchema) -> bool:
    name_words, desc_words = _tool_words(tool)
    return bool(name_words & _ARITHMETIC_WORDS) or bool(desc_words & _EXPRESSION_WORDS)


def _pick_other_tool(
    text: str, tools: Sequence[ToolSchema]
) -> tuple[ToolSchema, dict[str, Any]] | None:
    if _TIME_QUESTION.search(text):
        for tool in tools:
            name_words, desc_words = _tool_words(tool)
            if name_words & _TIME_WORDS or desc_words & {"clock", "timezone", "datetime"}:
                args = _fill_arguments(tool, text)
                if args is not None:
                    return tool, args
    said = _words(text)
    others = [t for t in tools if not _is_arithmetic_tool(t)]  # arithmetic: expressions only
    for by_description in (False, True):
        for tool in others:
            name_words, desc_words = _tool_words(tool)
            if said & (desc_words if by_description else name_words):
                args = _fill_arguments(tool, text)
                if args is not None:
                    return tool, args
    return None


# -- the model ---------------------------------------------------------------------------------


def _turn_start(messages: Sequence[Message]) -> int:
    """The index of the last user message (0 when there is none)."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            return index
    return 0


class DemoChat(OfflineChat):
    """A small rule-based offline model for templates and demos (see the module docstring).

    Deterministic: the same conversation always gets the same answer.
    """

    def __init__(self, *, name: str = "demo", setup_hint: str = DEFAULT_SETUP_HINT) -> None:
        self.name = name
        self.setup_hint = setup_hint

    def _respond(self, messages: Sequence[Message], tools: Sequence[ToolSchema] | None) -> Message:
        usable = [t for t in tools or () if isinstance(t.get("name"), str) and t.get("name")]
        start = _turn_start(messages)
        text = messages[start].text if messages and messages[start].role == "user" else ""
        if messages and messages[-1].role == "tool":
            follow_up = self._next_step(messages, start, text, usable)
            return follow_up or self._answer_from_tools(messages, start)
        if usable and text.strip():
            question = find_arithmetic(text)
            if question is not None:
                return self._arithmetic(question, usable, messages)
            picked = _pick_other_tool(text, usable)
            if picked is not None:
                return self._call(messages, picked[0], picked[1])
        return Message.assistant(self._honest_answer(text, tools))

    def _call(self, messages: Sequence[Message], tool: ToolSchema, args: dict[str, Any]) -> Message:
        call = ToolCall(name=str(tool["name"]), arguments=args)
        call.id = f"call_demo_{len([m for m in messages if m.tool_calls]) + 1}"
        return Message.assistant("", tool_calls=[call])

    def _arithmetic(
        self, question: Arithmetic, tools: Sequence[ToolSchema], messages: Sequence[Message]
    ) -> Message:
        if question.problem is not None:
            return self._cannot(f"I can't work out {_quote(question.text)}: {question.problem}.")
        calculator = _expression_tool(tools)
        if calculator is not None:
            return self._call(messages, calculator[0], {calculator[1]: question.text})
        by_op = _operation_tools(question, tools)
        missing = [op for op in question.operators if op not in by_op]
        if missing:
            verbs = " or ".join(_VERBS[op] for op in missing)
            return self._cannot(
                f"I can't work out {question.text}: none of my tools ({_names(tools)}) can {verbs}."
            )
        first = question.steps[0]
        args = _step_arguments(by_op[first.op], first, [])
        if args is None:
            return self._cannot(
                f"I can't work out {question.text}: the {by_op[first.op]['name']} tool "
                "takes whole numbers only."
            )
        return self._call(messages, by_op[first.op], args)

    def _next_step(
        self, messages: Sequence[Message], start: int, text: str, tools: Sequence[ToolSchema]
    ) -> Message | None:
        """The next operation of the user's arithmetic, once the results of the ones before
        are in; None when the turn is not such a chain or it is complete (or failed)."""
        question = find_arithmetic(text)
        if question is None or not question.steps or _expression_tool(tools) is not None:
            return None
        by_op = _operation_tools(question, tools)
        turn = messages[start + 1 :]
        calls = [call for m in turn if m.role == "assistant" for call in m.tool_calls]
        answers = {m.tool_call_id: m for m in turn if m.role == "tool"}
        if len(calls) >= len(question.steps):
            return None
        results: list[Number] = []
        for call, step in zip(calls, question.steps, strict=False):
            answer = answers.get(call.id)
            tool = by_op.get(step.op)
            if answer is None or tool is None or call.name != tool["name"]:
                return None
            value = _as_number(answer.text) if answer.metadata.get("status") != "error" else None
            if value is None:
                return None
            results.append(value)
        step = question.steps[len(results)]
        args = _step_arguments(by_op[step.op], step, results)
        return None if args is None else self._call(messages, by_op[step.op], args)

    def _answer_from_tools(self, messages: Sequence[Message], start: int) -> Message:
        names: dict[str, str] = {}
        lines = []
        for message in messages[start:]:
            for call in message.tool_calls:
                names[call.id] = call.name
            if message.role != "tool":
                continue
            tool = names.get(message.tool_call_id or "") or message.name or "tool"
            result = message.text.strip()
            if message.metadata.get("status") == "error":
                result = result.removeprefix("Error: ")
                lines.append(f"The {tool} tool returned an error: {result}")
            else:
                lines.append(f"The {tool} tool returned: {result}")
        return Message.assistant("\n".join(lines))

    def _cannot(self, what: str) -> Message:
        return Message.assistant(
            f"{what} I'm DemoChat, an offline demo model: I only call the tools I am given. "
            f"{self.setup_hint}"
        )

    def _honest_answer(self, text: str, tools: Sequence[ToolSchema] | None) -> str:
        quoted = _quote(text)
        parts = [
            "I'm DemoChat, an offline demo model: I can't do real reasoning or answer "
            "open questions."
        ]
        if quoted:
            parts.append(f'You said: "{quoted}".')
        if tools:
            parts.append(
                f"I can only call a tool ({_names(tools)}) when your message clearly asks for it."
            )
        parts.append(self.setup_hint)
        return " ".join(parts)
