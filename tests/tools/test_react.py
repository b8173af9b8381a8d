"""`create_react_agent` and `tools_condition`: the agent ⇄ tools loop end to end."""

from pathlib import Path
from typing import Any

import pytest

from agentflow.checkpointer import SqliteCheckpointer
from agentflow.graph import END, AgentState, Message, StreamEvent, ToolCall
from agentflow.models import DemoChat, ScriptedChat
from agentflow.tools import ToolContext, create_react_agent, tool, tools_condition


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def ask(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def two_calls_then_answer(answer: str = "2+3=5 and 2*3=6.") -> list[Any]:
    return [
        {
            "content": "",
            "tool_calls": [
                {"id": "call_add", "name": "add", "arguments": {"a": 2, "b": 3}},
                {"id": "call_mul", "name": "multiply", "arguments": {"a": 2, "b": 3}},
            ],
        },
        answer,
    ]


# -- tools_condition -------------------------------------------------------------------------


def test_tools_condition_routes_tool_calls_to_tools() -> None:
    state = AgentState(
        context=[Message.user("hi"), Message.assistant("", tool_calls=[ToolCall("add")])]
    )
    assert tools_condition(state) == "tools"


@pytest.mark.parametrize(
    "context",
    [
        [],
        [Message.user("hi")],
        [Message.user("hi"), Message.assistant("Hello!")],
        [
            Message.assistant("", tool_calls=[ToolCall("add", id="c")]),
            Message.tool("5", tool_call_id="c"),
        ],
    ],
    ids=["empty", "user-last", "answer-last", "tool-last"],
)
def test_tools_condition_ends_otherwise(context: list[Message]) -> None:
    assert tools_condition(AgentState(context=context)) == END


# -- the loop with a scripted model ----------------------------------------------------------


async def test_two_tool_calls_then_an_answer() -> None:
    model = ScriptedChat(two_calls_then_answer())
    agent = create_react_agent(model, [add, multiply])
    result = await agent.ainvoke(ask("What are 2+3 and 2*3?"))

    assert result.status == "done"
    assert [m.role for m in result.messages] == ["user", "assistant", "tool", "tool", "assistant"]
    user, asked, first, second, final = result.messages
    assert user.text == "What are 2+3 and 2*3?"
    assert [c.name for c in asked.tool_calls] == ["add", "multiply"]
    assert (first.tool_call_id, first.name, first.content) == ("call_add", "add", "5")
    assert (second.tool_call_id, second.name, second.content) == ("call_mul", "multiply", "6")
    assert first.metadata["status"] == second.metadata["status"] == "ok"
    assert final.text == "2+3=5 and 2*3=6."
    assert final.tool_calls == []
    assert [m.role for m in result.state.context] == [m.role for m in result.messages]
    assert model.remaining == 0


async def test_system_prompt_and_tool_schemas_reach_the_model() -> None:
    model = ScriptedChat(two_calls_then_answer())
    agent = create_react_agent(model, [add, multiply], system_prompt="You are a calculator.")
    result = await agent.ainvoke(ask("What are 2+3 and 2*3?"))

    assert len(model.calls) == 2
    first, second = model.calls
    assert first.messages[0].role == "system"
    assert first.messages[0].text == "You are a calculator."
    assert [m.role for m in first.messages] == ["system", "user"]
    assert first.tools == [add.schema, multiply.schema]
    # The second call sees the tool results and still gets the system prompt first.
    assert [m.role for m in second.messages] == ["system", "user", "assistant", "tool", "tool"]
    assert [m.text for m in second.messages[3:]] == ["5", "6"]
    assert second.tools == [add.schema, multiply.schema]
    # The system prompt is given to the model, not stored in the conversation.
    assert all(m.role != "system" for m in result.state.context)


async def test_without_system_prompt_the_model_gets_only_the_conversation() -> None:
    model = ScriptedChat(["Hi!"])
    agent = create_react_agent(model, [add])
    await agent.ainvoke(ask("hello"))
    assert [m.role for m in model.calls[0].messages] == ["user"]


async def test_without_tools_the_model_is_offered_none() -> None:
    model = ScriptedChat(["Just talking."])
    agent = create_react_agent(model, [])
    result = await agent.ainvoke(ask("hello"))
    assert model.calls[0].tools is None
    assert result.messages[-1].text == "Just talking."


async def test_answer_without_tool_calls_ends_after_one_model_call() -> None:
    model = ScriptedChat(["No tools needed."])
    result = await create_react_agent(model, [add]).ainvoke(ask("hi"))
    assert [m.role for m in result.messages] == ["user", "assistant"]
    assert len(model.calls) == 1


async def test_tool_failures_go_back_to_the_model_and_the_run_finishes() -> None:
    @tool
    def flaky(x: int) -> int:
        """Flaky."""
        raise RuntimeError("service down, api_key=sk-abc123")

    model = ScriptedChat(
        [
            {"tool_calls": [{"id": "c1", "name": "flaky", "arguments": {"x": 1}}]},
            {"tool_calls": [{"id": "c2", "name": "nonexistent", "arguments": {}}]},
            {"tool_calls": [{"id": "c3", "name": "add", "arguments": {"a": "two", "b": 3}}]},
            "Sorry, I could not do it.",
        ]
    )
    result = await create_react_agent(model, [flaky, add]).ainvoke(ask("try"))
    assert result.status == "done"
    errors = [m for m in result.messages if m.role == "tool"]
    assert [m.metadata["status"] for m in errors] == ["error", "error", "error"]
    assert errors[0].text.startswith("Error: flaky failed: RuntimeError: service down")
    assert "sk-abc123" not in errors[0].content
    assert "Available tools: add, flaky" in errors[1].content
    assert "invalid arguments for add" in errors[2].content
    # The model saw each error before deciding what to do next.
    assert model.calls[1].messages[-1].content == errors[0].content
    assert result.messages[-1].text == "Sorry, I could not do it."


async def test_tool_timeout_option_applies_to_the_tools() -> None:
    import asyncio

    @tool
    async def hang() -> str:
        """Hang."""
        await asyncio.Event().wait()
        return "never"

    model = ScriptedChat([{"tool_calls": [{"id": "c", "name": "hang"}]}, "gave up"])
    agent = create_react_agent(model, [hang], tool_timeout=0.1)
    result = await asyncio.wait_for(agent.ainvoke(ask("go")), 2)
    tool_message = result.messages[2]
    assert tool_message.metadata["status"] == "error"
    assert "0.1s" in tool_message.content


def test_duplicate_tool_names_are_rejected() -> None:
    @tool(name="add")
    def plus(a: int, b: int) -> int:
        return a + b

    with pytest.raises(ValueError, match="duplicate tool names"):
        create_react_agent(ScriptedChat([]), [add, plus])


async def test_tools_get_the_run_context() -> None:
    got: list[ToolContext] = []

    @tool
    def charge(amount: int, ctx: ToolContext) -> str:
        """Charge."""
        got.append(ctx)
        return "charged"

    # The model reuses the same call id in two rounds: the keys must still differ.
    model = ScriptedChat(
        [
            {"tool_calls": [{"id": "call_1", "name": "charge", "arguments": {"amount": 5}}]},
            {"tool_calls": [{"id": "call_1", "name": "charge", "arguments": {"amount": 5}}]},
            "Done.",
        ]
    )
    agent = create_react_agent(model, [charge])
    result = await agent.ainvoke(
        ask("charge me twice"), {"thread_id": "thread-9", "user_id": "alice"}
    )
    assert len(got) == 2
    for ctx in got:
        assert ctx.thread_id == "thread-9"
        assert ctx.user_id == "alice"
        assert ctx.run_id == result.run_id
        assert ctx.tool_call_id == "call_1"
        assert ctx.step > 0
    assert got[0].step < got[1].step
    assert got[0].idempotency_key != got[1].idempotency_key


# -- persistence -----------------------------------------------------------------------------


async def test_thread_continues_across_runs_with_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    model = ScriptedChat([*two_calls_then_answer(), "You asked about 2 and 3."])
    config = {"thread_id": "calc-thread"}

    async with SqliteCheckpointer(db) as cp:
        agent = create_react_agent(
            model, [add, multiply], system_prompt="Be brief.", checkpointer=cp
        )
        first = await agent.ainvoke(ask("What are 2+3 and 2*3?"), config)
    assert first.messages[-1].text == "2+3=5 and 2*3=6."

    # A fresh checkpointer on the same file: the conversation comes back from disk.
    async with SqliteCheckpointer(db) as cp:
        agent = create_react_agent(
            model, [add, multiply], system_prompt="Be brief.", checkpointer=cp
        )
        second = await agent.ainvoke(ask("Which numbers did I ask about?"), config)
        state = await agent.aget_state(config)

    assert [m.role for m in second.messages] == ["user", "assistant"]
    assert second.messages[-1].text == "You asked about 2 and 3."
    seen = model.calls[2].messages
    assert [m.role for m in seen] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
        "user",
    ]
    assert seen[0].text == "Be brief."
    assert seen[1].text == "What are 2+3 and 2*3?"
    assert [m.text for m in seen[3:5]] == ["5", "6"]
    assert seen[5].text == "2+3=5 and 2*3=6."
    assert seen[6].text == "Which numbers did I ask about?"
    assert state is not None
    assert len(state.context) == 7
    assert [m.tool_call_id for m in state.context[2:4]] == ["call_add", "call_mul"]
    assert state.context[-1].text == "You asked about 2 and 3."


# -- DemoChat --------------------------------------------------------------------------------


async def test_demo_chat_uses_the_add_tool_for_arithmetic() -> None:
    result = await create_react_agent(DemoChat(), [add]).ainvoke(ask("what is 2 + 3"))
    roles = [m.role for m in result.messages]
    assert roles == ["user", "assistant", "tool", "assistant"]
    call = result.messages[1].tool_calls[0]
    assert (call.name, call.arguments) == ("add", {"a": 2, "b": 3})
    assert result.messages[2].content == "5"
    assert "5" in result.messages[-1].text


async def test_demo_chat_answers_other_questions_honestly() -> None:
    result = await create_react_agent(DemoChat(), [add]).ainvoke(
        ask("What is the capital of France?")
    )
    assert [m.role for m in result.messages] == ["user", "assistant"]
    answer = result.messages[-1].text
    assert "offline demo" in answer
    assert "add" in answer  # it says which tool it could have called
    assert "Paris" not in answer


# -- streaming -------------------------------------------------------------------------------


async def test_stream_deltas_carry_the_final_message_id() -> None:
    model = ScriptedChat(two_calls_then_answer("Two plus three is five."))
    agent = create_react_agent(model, [add, multiply])
    chunks = [c async for c in agent.astream(ask("2+3 and 2*3?"))]

    deltas = [c for c in chunks if c.event is StreamEvent.DELTA]
    messages = [c.message for c in chunks if c.event is StreamEvent.MESSAGE]
    assert all(m is not None for m in messages)
    assert [m.role for m in messages if m] == ["assistant", "tool", "tool", "assistant"]
    final = messages[-1]
    assert final is not None
    assert deltas, "a streamed run must yield token deltas"
    assert {d.data["message_id"] for d in deltas} == {final.id}
    assert "".join(d.data["delta"] for d in deltas) == final.text == "Two plus three is five."
    assert {d.node for d in deltas} == {"agent"}
    # Every delta comes before the MESSAGE it belongs to.
    final_index = next(i for i, c in enumerate(chunks) if c.message is final)
    assert max(chunks.index(d) for d in deltas) < final_index
    assert chunks[-1].event is StreamEvent.END


async def test_stream_with_demo_chat_matches_deltas_to_the_answer() -> None:
    agent = create_react_agent(DemoChat(), [add])
    chunks = [c async for c in agent.astream(ask("what is 2 + 3"))]
    final = [c.message for c in chunks if c.event is StreamEvent.MESSAGE][-1]
    assert final is not None and "5" in final.text
    deltas = [c for c in chunks if c.event is StreamEvent.DELTA]
    assert deltas
    assert all(d.data["message_id"] == final.id for d in deltas)
    assert "".join(d.data["delta"] for d in deltas) == final.text
