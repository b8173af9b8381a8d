"""DemoChat: arithmetic goes to the tool that does it (or it says it cannot), other tools by
their words, an honest answer otherwise; no message can keep it busy for long."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentflow.graph import Message
from agentflow.models import DemoChat
from agentflow.tools import create_react_agent, tool

ROOT = Path(__file__).resolve().parents[2]

CALCULATOR = {
    "name": "calculator",
    "description": "Evaluate an arithmetic expression.",
    "parameters": {
        "type": "object",
        "properties": {"expression": {"type": "string"}},
        "required": ["expression"],
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


@tool(read_only=True)
def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


@tool(read_only=True)
def subtract(a: float, b: float) -> float:
    """Subtract b from a."""
    return a - b


@tool(read_only=True)
def multiply(a: float, b: float) -> float:
    """Multiply two numbers."""
    return a * b


@tool(read_only=True)
def divide(a: float, b: float) -> float:
    """Divide a by b."""
    if b == 0:
        raise ValueError("cannot divide by zero")
    return a / b


@tool(read_only=True)
def add_integers(a: int, b: int) -> int:
    """Add two whole numbers."""
    return a + b


ARITHMETIC = [add, subtract, multiply, divide]


async def ask(text: str, tools: list[Any]) -> list[Message]:
    """The messages of one turn of a ReAct agent on DemoChat with real tools."""
    agent = create_react_agent(DemoChat(), tools)
    result = await agent.ainvoke({"messages": [{"role": "user", "content": text}]})
    return result.messages


def calls(messages: list[Message]) -> list[tuple[str, dict[str, Any]]]:
    return [(c.name, c.arguments) for m in messages for c in m.tool_calls]


# -- arithmetic with one tool per operation ------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "expected_calls", "answer"),
    [
        ("what is 12 + 30", [("add", {"a": 12, "b": 30})], "The add tool returned: 42"),
        ("what is 12 plus 30?", [("add", {"a": 12, "b": 30})], "The add tool returned: 42"),
        ("what is 10 - 4", [("subtract", {"a": 10, "b": 4})], "The subtract tool returned: 6"),
        ("what is 2 * 3", [("multiply", {"a": 2, "b": 3})], "The multiply tool returned: 6"),
        ("what is 2 x 3", [("multiply", {"a": 2, "b": 3})], "The multiply tool returned: 6"),
        ("what is 7 / 2", [("divide", {"a": 7, "b": 2})], "The divide tool returned: 3.5"),
        ("9 divided by 3?", [("divide", {"a": 9, "b": 3})], "The divide tool returned: 3.0"),
        ("what is -3 + 5", [("add", {"a": -3, "b": 5})], "The add tool returned: 2"),
        ("what is 1.5 * 4", [("multiply", {"a": 1.5, "b": 4})], "The multiply tool returned: 6.0"),
    ],
)  # fmt: skip
async def test_each_operation_goes_to_its_tool(
    question: str, expected_calls: list[Any], answer: str
) -> None:
    messages = await ask(question, ARITHMETIC)
    assert calls(messages) == expected_calls
    assert messages[-1].text == answer


async def test_parentheses_and_precedence_chain_the_tools_on_earlier_results() -> None:
    messages = await ask("what is (2 + 3) * 4", ARITHMETIC)
    assert calls(messages) == [("add", {"a": 2, "b": 3}), ("multiply", {"a": 5, "b": 4})]
    assert messages[-1].text == "The add tool returned: 5\nThe multiply tool returned: 20"

    messages = await ask("what is 2 + 3 * 4 - 1", ARITHMETIC)
    assert calls(messages) == [
        ("multiply", {"a": 3, "b": 4}),
        ("add", {"a": 2, "b": 12}),
        ("subtract", {"a": 14, "b": 1}),
    ]
    assert messages[-1].text.endswith("The subtract tool returned: 13")


async def test_division_by_zero_is_the_tools_error_said_plainly() -> None:
    messages = await ask("what is 1 / 0", ARITHMETIC)
    assert calls(messages) == [("divide", {"a": 1, "b": 0})]
    assert messages[-1].text == (
        "The divide tool returned an error: divide failed: ValueError: cannot divide by zero"
    )


async def test_a_failed_step_stops_the_chain() -> None:
    messages = await ask("what is (1 / 0) + 2", ARITHMETIC)
    assert calls(messages) == [("divide", {"a": 1, "b": 0})]
    assert "cannot divide by zero" in messages[-1].text


async def test_without_a_tool_for_the_operation_it_says_so_and_calls_nothing() -> None:
    messages = await ask("what is 2 * 3", [add])
    assert calls(messages) == []
    text = messages[-1].text
    assert text.startswith("I can't work out 2 * 3: none of my tools (add) can multiply.")
    assert "offline demo model" in text and "OPENAI_API_KEY" in text

    messages = await ask("what is 2 ** 3 / 4", ARITHMETIC)
    assert calls(messages) == []
    assert "can raise to a power." in messages[-1].text


async def test_an_integer_tool_is_not_given_a_fraction() -> None:
    messages = await ask("what is 1.5 + 2", [add_integers])
    assert calls(messages) == []
    assert "takes whole numbers only" in messages[-1].text
    messages = await ask("what is 2 + 3", [add_integers])
    assert calls(messages) == [("add_integers", {"a": 2, "b": 3})]


async def test_a_question_without_arithmetic_gets_the_honest_answer() -> None:
    messages = await ask("what is the capital of France?", ARITHMETIC)
    assert calls(messages) == []
    text = messages[-1].text
    assert "offline demo model" in text and "Paris" not in text
    assert "add, subtract, multiply, divide" in text


async def test_words_alone_never_call_an_arithmetic_tool() -> None:
    """'subtract 2 from 5' named a tool's word but is not an expression: guessing the order
    of the operands would answer wrongly."""
    for text in ("subtract 2 from 5", "add a note", "divide the work"):
        assert calls(await ask(text, ARITHMETIC)) == []


async def test_dates_and_long_numbers_are_not_computed() -> None:
    assert calls(await ask("what happened on 2024-01-05", ARITHMETIC)) == []
    messages = await ask("what is 1234567890123456789 + 1", ARITHMETIC)
    assert calls(messages) == []
    assert "longer than 15 digits" in messages[-1].text


# -- a calculator tool, and the other tools ---------------------------------------------------


async def run_tool_flow(
    question: str, tools: list[dict[str, Any]], result: str
) -> tuple[Message, Message]:
    model = DemoChat()
    history = [Message.user(question)]
    first = await model.ainvoke(history, tools=tools)
    assert first.tool_calls, first.content
    history.append(first)
    for call in first.tool_calls:
        history.append(Message.tool(result, tool_call_id=call.id))
    final = await model.ainvoke(history, tools=tools)
    return first, final


async def test_a_calculator_gets_the_whole_expression() -> None:
    first, final = await run_tool_flow("What is (2+3)*4?", [CLOCK, CALCULATOR], "20")
    assert [(c.name, c.arguments) for c in first.tool_calls] == [
        ("calculator", {"expression": "(2 + 3) * 4"})
    ]
    assert first.usage is not None
    assert final.tool_calls == []
    assert final.content == "The calculator tool returned: 20"


async def test_demo_uses_a_time_tool() -> None:
    first, final = await run_tool_flow("What time is it?", [CALCULATOR, CLOCK], "12:00 UTC")
    assert first.tool_calls[0].name == "get_current_time"
    assert first.tool_calls[0].arguments == {}
    assert "12:00 UTC" in final.content


async def test_demo_matches_tools_by_name_words() -> None:
    first, _ = await run_tool_flow("What's the weather in Paris?", [CALCULATOR, WEATHER], "sunny")
    assert first.tool_calls[0].name == "get_weather"
    assert first.tool_calls[0].arguments == {"city": "Paris"}


async def test_demo_passes_the_text_to_a_single_string_tool() -> None:
    first, _ = await run_tool_flow("search for agent frameworks", [SEARCH], "...")
    assert first.tool_calls[0].arguments == {"query": "search for agent frameworks"}


async def test_demo_answers_honestly_without_a_matching_tool() -> None:
    model = DemoChat()
    reply = await model.ainvoke([Message.user("Write me a poem about love")], tools=[CALCULATOR])
    assert reply.tool_calls == []
    text = reply.text
    assert "offline demo" in text
    assert "OPENAI_API_KEY" in text
    assert "OPENAI_BASE_URL" in text
    assert "calculator" in text
    again = await model.ainvoke([Message.user("Write me a poem about love")], tools=[CALCULATOR])
    assert again.content == text


async def test_demo_without_tools_and_custom_hint() -> None:
    model = DemoChat(setup_hint="Run `agentflow doctor` to configure a model.")
    reply = await model.ainvoke([Message.user("what is 2+3")])
    assert reply.tool_calls == []
    assert "offline demo" in reply.text
    assert "agentflow doctor" in reply.text


async def test_demo_streams_its_answer() -> None:
    items = [item async for item in DemoChat().astream([Message.user("hello")])]
    final = items[-1]
    assert isinstance(final, Message)
    assert "".join(str(i) for i in items[:-1]) == final.content


# -- hostile messages --------------------------------------------------------------------------

SIZE = 200_000
HOSTILE = {
    "digits then an operator": "1" * SIZE + "+",
    "a long sum": "1+" * (SIZE // 2),
    "spaces then a digit": " " * (SIZE - 1) + "1",
    "open brackets": "(" * SIZE,
    "signs": "- " * (SIZE // 2),
    "numbers and x": "1 x " * (SIZE // 4),
    "dotted digits": "1." * (SIZE // 2),
    "repeated words": "what is the time " * (SIZE // 17),
    "word operators": "multiplied divided plus " * (SIZE // 24),
    "a place": "weather in " + "Paris, " * (SIZE // 7),
    "spaces after in": "weather in" + " " * SIZE + "x",
    "time zones": "time in " + "Ab/" * (SIZE // 3) + "1",
    "one long word": "a" * SIZE,
}
# Runs DemoChat on every hostile message with both kinds of arithmetic tools and prints, per
# message, the tools it called and the length of its answer.
HOSTILE_SCRIPT = """
import asyncio, json, sys
from agentflow.graph import Message
from agentflow.models import DemoChat
from tests.models.test_demo import ARITHMETIC, CALCULATOR, CLOCK, HOSTILE, WEATHER
from agentflow.tools import ToolNode

async def main():
    model = DemoChat()
    toolsets = [ToolNode([*ARITHMETIC]).schemas + [CLOCK, WEATHER], [CALCULATOR, CLOCK, WEATHER]]
    out = {}
    for name, text in HOSTILE.items():
        for index, tools in enumerate(toolsets):
            reply = await model.ainvoke([Message.user(text)], tools=tools)
            out[f"{name} {index}"] = [[c.name for c in reply.tool_calls], len(reply.text)]
    print(json.dumps(out))

asyncio.run(main())
"""


def test_no_message_keeps_the_demo_model_busy() -> None:
    """200,000 characters of digits, operators, spaces or repeated words: the whole set is
    answered in one subprocess (the timeout only guards against a hang)."""
    done = subprocess.run(
        [sys.executable, "-c", HOSTILE_SCRIPT], cwd=ROOT, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    replies = json.loads(done.stdout)
    assert len(replies) == 2 * len(HOSTILE)
    for name, (called, length) in replies.items():
        assert length < 2_000, name  # quotes are cut, never the whole message
        assert set(called) <= {"get_current_time", "get_weather", "calculator", "add"}, name
    assert replies["digits then an operator 0"][0] == []
    assert replies["a long sum 0"][0] == []  # too many operations: said, not computed
    assert replies["a place 0"][0] == ["get_weather"]
