"""`ToolNode`: runs the last assistant message's tool calls; failures become messages."""

import asyncio
import logging
import threading
import time
from typing import Any

import pytest

from agentflow.graph import AgentState, Message, ToolCall
from agentflow.tools import Tool, ToolContext, ToolNode, tool


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
async def greet(name: str) -> str:
    """Greet someone."""
    return f"Hello, {name}!"


def calls_state(*calls: ToolCall, history: list[Message] | None = None) -> AgentState:
    return AgentState(
        context=[*(history or [Message.user("go")]), Message.assistant("", tool_calls=list(calls))]
    )


async def run(
    node: ToolNode, *calls: ToolCall, config: dict[str, Any] | None = None
) -> list[Message]:
    return await node(calls_state(*calls), config or {})


def assert_well_formed(messages: list[Message], calls: list[ToolCall]) -> None:
    assert len(messages) == len(calls)
    for message, call in zip(messages, calls, strict=True):
        assert message.role == "tool"
        assert message.tool_call_id == call.id
        assert message.name == call.name
        assert message.metadata["status"] in ("ok", "error")
        assert isinstance(message.metadata["duration_ms"], float | int)
        assert message.metadata["duration_ms"] >= 0


# -- happy path ------------------------------------------------------------------------------


async def test_runs_every_call_and_answers_each_by_id() -> None:
    node = ToolNode([add, greet])
    calls = [
        ToolCall("add", {"a": 2, "b": 3}, id="call_a"),
        ToolCall("greet", {"name": "Ada"}, id="call_g"),
    ]
    out = await run(node, *calls)
    assert_well_formed(out, calls)
    assert [m.content for m in out] == ["5", "Hello, Ada!"]
    assert [m.metadata["status"] for m in out] == ["ok", "ok"]


async def test_same_tool_called_twice_gets_two_answers() -> None:
    node = ToolNode([add])
    calls = [ToolCall("add", {"a": 1, "b": 1}), ToolCall("add", {"a": 2, "b": 2})]
    out = await run(node, *calls)
    assert_well_formed(out, calls)
    assert [m.content for m in out] == ["2", "4"]


async def test_plain_functions_are_wrapped_as_tools() -> None:
    def shout(text: str) -> str:
        """Shout."""
        return text.upper()

    node = ToolNode([shout])
    assert isinstance(node.tools["shout"], Tool)
    assert node.schemas == [
        {
            "name": "shout",
            "description": "Shout.",
            "parameters": {
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
                "additionalProperties": False,
            },
        }
    ]
    out = await run(node, ToolCall("shout", {"text": "hi"}))
    assert out[0].content == "HI"


async def test_schemas_list_every_tool_in_order() -> None:
    node = ToolNode([add, greet])
    assert node.schemas == [add.schema, greet.schema]


async def test_results_come_back_in_call_order_even_when_finishing_out_of_order() -> None:
    @tool
    async def wait(seconds: float, label: str) -> str:
        await asyncio.sleep(seconds)
        return label

    calls = [
        ToolCall("wait", {"seconds": 0.15, "label": "slow"}),
        ToolCall("wait", {"seconds": 0.0, "label": "fast"}),
    ]
    out = await run(ToolNode([wait]), *calls)
    assert [m.content for m in out] == ["slow", "fast"]
    assert [m.tool_call_id for m in out] == [c.id for c in calls]


# -- nothing to do ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "context",
    [
        [],
        [Message.user("hello")],
        [Message.user("hello"), Message.assistant("Hi there!")],
        [
            Message.user("2+3?"),
            Message.assistant("", tool_calls=[ToolCall("add", {"a": 2, "b": 3})]),
            Message.tool("5", tool_call_id="x", name="add"),
        ],
    ],
    ids=["empty", "user-last", "answer-last", "tool-last"],
)
async def test_returns_nothing_without_pending_tool_calls(context: list[Message]) -> None:
    ran: list[int] = []

    @tool
    def spy() -> str:
        ran.append(1)
        return "x"

    node = ToolNode([add, spy])
    assert await node(AgentState(context=context), {}) == []
    assert ran == []


async def test_only_the_last_assistant_message_is_run() -> None:
    old = Message.assistant("", tool_calls=[ToolCall("add", {"a": 100, "b": 1}, id="old")])
    state = calls_state(
        ToolCall("add", {"a": 1, "b": 1}, id="new"),
        history=[Message.user("go"), old, Message.tool("101", tool_call_id="old", name="add")],
    )
    out = await ToolNode([add])(state, {})
    assert [(m.tool_call_id, m.content) for m in out] == [("new", "2")]


# -- concurrency and threads -----------------------------------------------------------------


async def test_async_tool_calls_run_concurrently() -> None:
    @tool
    async def nap(label: str) -> str:
        await asyncio.sleep(0.3)
        return label

    calls = [ToolCall("nap", {"label": "one"}), ToolCall("nap", {"label": "two"})]
    started = time.perf_counter()
    out = await run(ToolNode([nap]), *calls)
    elapsed = time.perf_counter() - started
    assert [m.content for m in out] == ["one", "two"]
    assert elapsed < 0.55, f"two 0.3s tools took {elapsed:.2f}s: they ran one after the other"


async def test_sync_tool_calls_run_concurrently_in_worker_threads() -> None:
    @tool
    def block(label: str) -> str:
        time.sleep(0.3)
        return label

    calls = [ToolCall("block", {"label": "one"}), ToolCall("block", {"label": "two"})]
    started = time.perf_counter()
    out = await run(ToolNode([block]), *calls)
    assert [m.content for m in out] == ["one", "two"]
    assert time.perf_counter() - started < 0.55


async def test_max_concurrency_limits_parallel_calls() -> None:
    running = 0
    peak = 0

    @tool
    async def busy(i: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1
        return i

    calls = [ToolCall("busy", {"i": i}) for i in range(6)]
    out = await run(ToolNode([busy], max_concurrency=2), *calls)
    assert [m.content for m in out] == [str(i) for i in range(6)]
    assert peak == 2


async def test_sync_tools_run_off_the_event_loop_thread() -> None:
    seen: list[int] = []

    @tool
    def where() -> str:
        seen.append(threading.get_ident())
        return "ok"

    loop_thread = threading.get_ident()
    out = await run(ToolNode([where]), ToolCall("where"))
    assert out[0].content == "ok"
    assert len(seen) == 1
    assert seen[0] != loop_thread


async def test_async_tools_run_on_the_event_loop_thread() -> None:
    seen: list[int] = []

    @tool
    async def where() -> str:
        seen.append(threading.get_ident())
        return "ok"

    await run(ToolNode([where]), ToolCall("where"))
    assert seen == [threading.get_ident()]


# -- timeouts --------------------------------------------------------------------------------


async def test_hanging_async_tool_times_out_with_an_error_message() -> None:
    @tool
    async def hang() -> str:
        await asyncio.Event().wait()
        return "never"

    calls = [ToolCall("hang", id="call_h"), ToolCall("add", {"a": 1, "b": 2}, id="call_a")]
    started = time.perf_counter()
    out = await run(ToolNode([hang, add], timeout=0.2), *calls)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0
    assert_well_formed(out, calls)
    assert out[0].metadata["status"] == "error"
    assert out[0].text.startswith("Error: hang")
    assert "0.2s" in out[0].content
    assert "did not finish" in out[0].content
    assert out[0].metadata["duration_ms"] >= 150
    assert (out[1].content, out[1].metadata["status"]) == ("3", "ok")


async def test_hanging_sync_tool_is_abandoned_after_the_timeout() -> None:
    release = threading.Event()

    @tool
    def stuck() -> str:
        release.wait(5)
        return "late"

    started = time.perf_counter()
    try:
        out = await run(ToolNode([stuck], timeout=0.2), ToolCall("stuck"))
    finally:
        release.set()
    assert time.perf_counter() - started < 1.0
    assert out[0].metadata["status"] == "error"
    assert "did not finish within 0.2s" in out[0].content


async def test_tool_timeout_overrides_the_node_timeout() -> None:
    @tool(timeout=0.1)
    async def slow() -> str:
        await asyncio.sleep(5)
        return "never"

    started = time.perf_counter()
    out = await run(ToolNode([slow], timeout=30), ToolCall("slow"))
    assert time.perf_counter() - started < 1.0
    assert out[0].metadata["status"] == "error"
    assert "0.1s" in out[0].content


async def test_fast_tool_is_not_affected_by_the_timeout() -> None:
    @tool
    async def quick() -> str:
        await asyncio.sleep(0.01)
        return "done"

    out = await run(ToolNode([quick], timeout=1.0), ToolCall("quick"))
    assert (out[0].content, out[0].metadata["status"]) == ("done", "ok")


# -- failures never raise --------------------------------------------------------------------


async def test_exception_becomes_an_error_message_naming_tool_and_class() -> None:
    @tool
    def lookup(key: str) -> str:
        raise KeyError(key)

    @tool
    async def fetch(url: str) -> str:
        raise ConnectionError(f"cannot reach {url}")

    calls = [ToolCall("lookup", {"key": "nope"}), ToolCall("fetch", {"url": "http://x"})]
    out = await run(ToolNode([lookup, fetch]), *calls)
    assert_well_formed(out, calls)
    assert out[0].content == "Error: lookup failed: KeyError: 'nope'"
    assert out[1].content == "Error: fetch failed: ConnectionError: cannot reach http://x"
    assert [m.metadata["status"] for m in out] == ["error", "error"]


async def test_tool_raising_its_own_timeout_error_is_reported_as_a_failure() -> None:
    # A tool's own TimeoutError (an HTTP client giving up, say) happens at once; reporting it
    # as "did not finish within 30s and was abandoned" would be false and hide its text.
    @tool
    async def fetch(url: str) -> str:
        raise TimeoutError("upstream API timed out after 5s")

    started = time.perf_counter()
    out = await run(ToolNode([fetch], timeout=30), ToolCall("fetch", {"url": "http://x"}))
    assert time.perf_counter() - started < 1.0
    assert out[0].metadata["status"] == "error"
    assert out[0].content == "Error: fetch failed: TimeoutError: upstream API timed out after 5s"


async def test_secrets_in_exception_text_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    @tool
    def login(user: str) -> str:
        raise PermissionError(f"login failed for {user} with password=hunter2")

    with caplog.at_level(logging.WARNING, logger="agentflow.tools"):
        out = await run(ToolNode([login]), ToolCall("login", {"user": "ada"}))
    text = out[0].text
    assert text.startswith("Error: login failed: PermissionError: login failed for ada")
    assert "hunter2" not in text
    assert "[REDACTED]" in text
    assert "hunter2" not in caplog.text
    assert "login" in caplog.text


async def test_unknown_tool_gets_an_error_listing_available_tools() -> None:
    calls = [ToolCall("multiply", {"a": 2, "b": 3}, id="call_m")]
    out = await run(ToolNode([greet, add]), *calls)
    assert_well_formed(out, calls)
    assert out[0].metadata["status"] == "error"
    assert "no tool named 'multiply'" in out[0].content
    assert "Available tools: add, greet" in out[0].content


async def test_unknown_tool_with_no_tools_says_none() -> None:
    out = await run(ToolNode([]), ToolCall("anything"))
    assert "Available tools: none" in out[0].content


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({"a": 1}, "missing required 'b'"),
        ({"a": 1, "b": "2"}, "arguments.b: expected integer"),
        ({"a": 1, "b": 2, "c": 3}, "unexpected argument 'c'"),
        ({"a": True, "b": 2}, "arguments.a: expected integer"),
    ],
)
async def test_bad_arguments_become_an_error_message(
    arguments: dict[str, Any], fragment: str
) -> None:
    out = await run(ToolNode([add]), ToolCall("add", arguments, id="call_bad"))
    assert out[0].tool_call_id == "call_bad"
    assert out[0].metadata["status"] == "error"
    assert out[0].text.startswith("Error: invalid arguments for add:")
    assert fragment in out[0].content


async def test_non_object_arguments_become_an_error_message() -> None:
    call = ToolCall("add", id="call_x")
    call.arguments = [1, 2]  # type: ignore[assignment]
    out = await run(ToolNode([add]), call)
    assert out[0].metadata["status"] == "error"
    assert "invalid arguments for add" in out[0].content


async def test_one_failure_does_not_spoil_the_other_calls() -> None:
    @tool
    def broken() -> str:
        raise ValueError("nope")

    calls = [
        ToolCall("add", {"a": 1, "b": 1}),
        ToolCall("broken"),
        ToolCall("missing"),
        ToolCall("greet", {"name": "Bo"}),
    ]
    out = await run(ToolNode([add, broken, greet]), *calls)
    assert_well_formed(out, calls)
    assert [m.metadata["status"] for m in out] == ["ok", "error", "error", "ok"]
    assert out[3].content == "Hello, Bo!"


# -- construction and context ----------------------------------------------------------------


def test_duplicate_tool_names_raise_value_error() -> None:
    @tool(name="add")
    def other_add(x: int) -> int:
        return x

    with pytest.raises(ValueError, match=r"duplicate tool names: \['add'\]"):
        ToolNode([add, greet, other_add])


def _plain_greet() -> Any:
    def greet(name: str) -> str:
        return name

    return greet


def test_duplicate_plain_function_and_tool_names_raise_value_error() -> None:
    with pytest.raises(ValueError, match=r"duplicate tool names: \['greet'\]"):
        ToolNode([_plain_greet(), greet])


async def test_tool_context_comes_from_the_node_config() -> None:
    got: list[ToolContext] = []

    @tool
    def charge(amount: int, ctx: ToolContext) -> str:
        got.append(ctx)
        return "ok"

    calls = [
        ToolCall("charge", {"amount": 1}, id="call_1"),
        ToolCall("charge", {"amount": 2}, id="call_2"),
    ]
    config = {"thread_id": "th", "run_id": "rn", "user_id": "alice", "step": 4}
    await run(ToolNode([charge]), *calls, config=config)
    by_call = {c.tool_call_id: c for c in got}
    assert set(by_call) == {"call_1", "call_2"}
    for ctx in got:
        assert (ctx.thread_id, ctx.run_id, ctx.user_id, ctx.step) == ("th", "rn", "alice", 4)
    assert by_call["call_1"].idempotency_key != by_call["call_2"].idempotency_key

    got.clear()
    await run(ToolNode([charge]), calls[0], config=config)  # the same call, retried
    assert got[0].idempotency_key == by_call["call_1"].idempotency_key
