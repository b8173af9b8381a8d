"""An offline, deterministic chat model: the agent runs with no API key and no network.

It is a LangChain chat model like any other (`bind_tools`, `invoke`, `stream`, token
usage), so the graph cannot tell it from a real one. It understands two questions:
arithmetic ("what is 12 + 30", "6 times 7"), which it answers by calling the arithmetic
tools, and the time ("what time is it?"), from the current_time tool. Its answers stream
word by word. Anything else gets a note on how to plug in a real model (README.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.chat_models import (
    agenerate_from_stream,
    generate_from_stream,
)
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolCall,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

NUMBER = r"-?\d+(?:\.\d+)?"
OPERATOR = r"\+|-|\*|x|/|÷|plus|minus|times|multiplied by|divided by|over"
EXPRESSION = re.compile(rf"({NUMBER})\s*({OPERATOR})\s*({NUMBER})", re.IGNORECASE)
TOOL_OF = {
    "+": "add",
    "plus": "add",
    "-": "subtract",
    "minus": "subtract",
    "*": "multiply",
    "x": "multiply",
    "times": "multiply",
    "multiplied by": "multiply",
    "/": "divide",
    "÷": "divide",
    "divided by": "divide",
    "over": "divide",
}
SYMBOL_OF = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/"}
TIME = re.compile(r"\b(time|date|day|today|clock)\b", re.IGNORECASE)
HELP = (
    "I am the offline model: I do arithmetic with the tools (try 'what is 12 + 30?') "
    "and tell the time. Set MODEL (e.g. openai:gpt-4o-mini-2024-07-18) for a real one."
)
WORDS = re.compile(r"\s*\S+")


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() else value


def _tool_calls(question: str, tools: set[str], turn: int) -> list[ToolCall]:
    """The tool calls a question needs: one per arithmetic expression in it, else the
    clock when it asks for the time. Ids are unique within a thread (`turn` counts its
    messages) and the same on every run."""
    calls: list[ToolCall] = []
    for a, operator, b in EXPRESSION.findall(question):
        name = TOOL_OF[operator.lower()]
        if name in tools:
            args = {"a": _number(a), "b": _number(b)}
            calls.append(ToolCall(name=name, args=args, id=f"call_{turn}_{len(calls)}"))
    if not calls and "current_time" in tools and TIME.search(question):
        calls.append(ToolCall(name="current_time", args={}, id=f"call_{turn}_0"))
    return calls


def _answer(messages: Sequence[BaseMessage]) -> str:
    """The answer from the tool results that end `messages`."""
    results: list[ToolMessage] = []
    for message in reversed(messages):
        if not isinstance(message, ToolMessage):
            break
        results.insert(0, message)
    asked = messages[-len(results) - 1] if len(messages) > len(results) else None
    calls = {}
    if isinstance(asked, AIMessage):
        calls = {call["id"]: call for call in asked.tool_calls}
    lines = []
    for result in results:
        call = calls.get(result.tool_call_id)
        name = call["name"] if call else result.name or "the tool"
        if result.status == "error":
            lines.append(f"The {name} tool failed. {result.text}")
        elif call and name in SYMBOL_OF:
            a, b = call["args"]["a"], call["args"]["b"]
            lines.append(f"{a} {SYMBOL_OF[name]} {b} = {result.text}")
        elif name == "current_time":
            lines.append(f"It is {result.text}.")
        else:
            lines.append(f"The {name} tool returned: {result.text}")
    return "\n".join(lines)


def _count_words(messages: Sequence[BaseMessage]) -> int:
    return sum(len(message.text.split()) for message in messages)


class OfflineChat(BaseChatModel):
    """Deterministic and offline: calls the bound tools a question needs, then answers
    from their results, streamed in several chunks with usage metadata."""

    model_name: str = "offline"

    @property
    def _llm_type(self) -> str:
        return "offline"

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _chunks(
        self, messages: list[BaseMessage], tools: Sequence[dict[str, Any]]
    ) -> list[ChatGenerationChunk]:
        names = {tool["function"]["name"] for tool in tools}
        last = messages[-1] if messages else None
        calls: list[ToolCall] = []
        if isinstance(last, ToolMessage):
            text = _answer(messages)
        elif isinstance(last, HumanMessage):
            calls = _tool_calls(last.text, names, len(messages))
            text = "" if calls else HELP
        else:
            text = HELP
        pieces = [
            AIMessageChunk(
                content="",
                tool_call_chunks=[
                    tool_call_chunk(
                        name=call["name"],
                        args=json.dumps(call["args"]),
                        id=call["id"],
                        index=index,
                    )
                    for index, call in enumerate(calls)
                ],
            )
        ]
        if not calls:
            pieces = [AIMessageChunk(content=word) for word in WORDS.findall(text)]
        input_tokens = _count_words(messages)
        output_tokens = len(text.split()) + sum(len(c["args"]) + 1 for c in calls)
        usage = UsageMetadata(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=input_tokens + output_tokens,
        )
        finish = "tool_calls" if calls else "stop"
        pieces.append(
            AIMessageChunk(
                content="",
                usage_metadata=usage,
                response_metadata={
                    "finish_reason": finish,
                    "model_name": self.model_name,
                },
                chunk_position="last",
            )
        )
        return [ChatGenerationChunk(message=piece) for piece in pieces]

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        yield from self._chunks(messages, kwargs.get("tools", []))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._chunks(messages, kwargs.get("tools", [])):
            yield chunk

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return generate_from_stream(self._stream(messages, stop, **kwargs))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return await agenerate_from_stream(self._astream(messages, stop, **kwargs))
