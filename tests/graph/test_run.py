"""Running a graph: nodes, what they return, how updates merge, run input and RunResult."""

import asyncio
import dataclasses
import itertools
import operator
import threading
from typing import Annotated, Any

import pytest

from agentflow.graph import (
    END,
    START,
    AgentState,
    Command,
    CompiledGraph,
    GraphError,
    InvalidInputError,
    Message,
    RunResult,
    StateGraph,
    Usage,
)


class Notes(AgentState):
    topic: str = ""
    count: Annotated[int, operator.add] = 0
    notes: Annotated[list[str], operator.add] = dataclasses.field(default_factory=list)
    tags: list[str] = dataclasses.field(default_factory=list)


def texts(state: AgentState) -> list[str]:
    return [m.text for m in state.context]


def single(fn: Any, state_cls: type[AgentState] = AgentState, name: str = "node") -> CompiledGraph:
    g = StateGraph(state_cls)
    g.add_node(name, fn)
    g.set_entry_point(name)
    return g.compile()


def chain(*nodes: tuple[str, Any], state_cls: type[AgentState] = AgentState) -> CompiledGraph:
    g = StateGraph(state_cls)
    for name, fn in nodes:
        g.add_node(name, fn)
    g.add_edge(START, nodes[0][0])
    for (a, _), (b, _) in itertools.pairwise(nodes):
        g.add_edge(a, b)
    return g.compile()


HI = {"messages": [{"role": "user", "content": "hi"}]}


# -- how nodes are called ---------------------------------------------------------------------


async def test_sync_node_runs_in_a_worker_thread() -> None:
    seen: list[int] = []

    def node(state: AgentState) -> None:
        seen.append(threading.get_ident())

    await single(node).ainvoke(HI)
    assert len(seen) == 1
    assert seen[0] != threading.get_ident()


async def test_async_node_runs_on_the_event_loop_thread() -> None:
    seen: list[int] = []

    async def node(state: AgentState) -> None:
        await asyncio.sleep(0)
        seen.append(threading.get_ident())

    await single(node).ainvoke(HI)
    assert seen == [threading.get_ident()]


async def test_sync_node_does_not_block_the_event_loop() -> None:
    started = threading.Event()
    release = threading.Event()

    def slow(state: AgentState) -> Message:
        started.set()
        assert release.wait(5)
        return Message.assistant("done")

    task = asyncio.create_task(single(slow).ainvoke(HI))
    # the loop keeps running while the node blocks its thread
    for _ in range(500):
        if started.is_set():
            break
        await asyncio.sleep(0.01)
    assert started.is_set()
    assert not task.done()
    release.set()
    result = await asyncio.wait_for(task, 5)
    assert texts(result.state) == ["hi", "done"]


async def test_node_receives_the_current_state() -> None:
    seen: list[list[str]] = []

    def first(state: AgentState) -> Message:
        seen.append(texts(state))
        return Message.assistant("one")

    def second(state: AgentState) -> Message:
        seen.append(texts(state))
        return Message.assistant("two")

    await chain(("first", first), ("second", second)).ainvoke(HI)
    assert seen == [["hi"], ["hi", "one"]]


async def test_node_taking_config_gets_run_details_and_extra_keys() -> None:
    configs: list[dict[str, Any]] = []

    def a(state: AgentState, config: dict[str, Any]) -> None:
        configs.append(dict(config))

    async def b(state: AgentState, config: dict[str, Any]) -> None:
        configs.append(dict(config))

    app = chain(("a", a), ("b", b))
    result = await app.ainvoke(
        HI,
        {
            "thread_id": "thread-1",
            "run_id": "run-1",
            "user_id": "alice",
            "recursion_limit": 10,
            "model": "m-large",
        },
    )
    assert [c["node"] for c in configs] == ["a", "b"]
    for c in configs:
        assert c["thread_id"] == "thread-1" == result.thread_id
        assert c["run_id"] == "run-1" == result.run_id
        assert c["user_id"] == "alice"
        assert c["recursion_limit"] == 10
        assert c["model"] == "m-large"
    assert isinstance(configs[0]["step"], int)
    assert configs[1]["step"] == configs[0]["step"] + 1


async def test_config_defaults() -> None:
    configs: list[dict[str, Any]] = []

    def node(state: AgentState, config: dict[str, Any]) -> None:
        configs.append(dict(config))

    result = await single(node).ainvoke(HI)
    (config,) = configs
    assert config["user_id"] == "anonymous"
    assert config["recursion_limit"] == 25
    assert config["thread_id"] == result.thread_id and result.thread_id
    assert config["run_id"] == result.run_id and result.run_id


async def test_config_can_be_passed_as_keyword_with_default() -> None:
    seen: list[Any] = []

    def node(state: AgentState, config: dict[str, Any] | None = None) -> None:
        seen.append(config)

    await single(node).ainvoke(HI, {"thread_id": "kw"})
    assert seen[0] is not None and seen[0]["thread_id"] == "kw"


async def test_node_with_only_state_gets_no_config() -> None:
    calls: list[tuple[Any, ...]] = []

    def node(*args: Any) -> None:
        calls.append(args)

    def state_only(state: AgentState) -> None:
        calls.append((state,))

    await single(node).ainvoke(HI)
    await single(state_only).ainvoke(HI)
    assert len(calls[0]) == 2  # *args accepts the config too
    assert len(calls[1]) == 1


async def test_callable_objects_and_methods_work_as_nodes() -> None:
    class Replier:
        def __init__(self, text: str) -> None:
            self.text = text

        async def __call__(self, state: AgentState) -> Message:
            return Message.assistant(self.text)

        def method(self, state: AgentState, config: dict[str, Any]) -> Message:
            return Message.assistant(f"{self.text}:{config['node']}")

    obj = Replier("obj")
    app = chain(("call", obj), ("meth", obj.method))
    assert texts((await app.ainvoke(HI)).state) == ["hi", "obj", "obj:meth"]


# -- what nodes return ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "returned",
    [
        Message.assistant("a"),
        [Message.assistant("a"), Message.assistant("b")],
        [{"role": "assistant", "content": "a"}],
        {"messages": [Message.assistant("a")]},
        {"messages": Message.assistant("a")},
        {"context": [Message.assistant("a")]},
        {"messages": [{"role": "assistant", "content": [{"type": "text", "text": "a"}]}]},
    ],
    ids=[
        "message",
        "list",
        "dict-list",
        "messages-key",
        "messages-single",
        "context-key",
        "blocks",
    ],
)
async def test_returned_messages_are_appended(returned: Any) -> None:
    expected = (
        [m.text for m in returned]
        if isinstance(returned, list) and isinstance(returned[0], Message)
        else ["a"]
    )

    def node(state: AgentState) -> Any:
        return returned

    result = await single(node).ainvoke({"messages": [Message.user("one"), Message.user("two")]})
    assert texts(result.state) == ["one", "two", *expected]
    assert all(isinstance(m, Message) for m in result.state.context)


async def test_returning_none_or_empty_dict_changes_nothing() -> None:
    app = chain(
        ("a", lambda s: None),
        ("b", lambda s: {}),
        ("c", lambda s: []),
        state_cls=Notes,
    )
    result = await app.ainvoke({"messages": [Message.user("x")], "state": {"topic": "t"}})
    assert texts(result.state) == ["x"]
    assert result.state.topic == "t"
    assert result.status == "done"


async def test_plain_fields_are_replaced_and_reducer_fields_combined() -> None:
    app = chain(
        ("a", lambda s: {"topic": "first", "count": 2, "notes": ["a"], "tags": ["x"]}),
        ("b", lambda s: {"topic": "second", "count": 3, "notes": ["b"], "tags": ["y"]}),
        state_cls=Notes,
    )
    state = (await app.ainvoke(HI)).state
    assert isinstance(state, Notes)
    assert state.topic == "second"
    assert state.tags == ["y"]
    assert state.count == 5
    assert state.notes == ["a", "b"]


async def test_node_sees_fields_set_by_an_earlier_node() -> None:
    seen: list[tuple[str, int]] = []

    def b(state: Notes) -> None:
        seen.append((state.topic, state.count))

    app = chain(("a", lambda s: {"topic": "cats", "count": 1}), ("b", b), state_cls=Notes)
    await app.ainvoke(HI)
    assert seen == [("cats", 1)]


async def test_node_update_mixing_messages_and_fields() -> None:
    def node(state: Notes) -> dict[str, Any]:
        return {"messages": [Message.assistant("hello")], "topic": "greeting", "count": 1}

    state = (await single(node, Notes).ainvoke(HI)).state
    assert texts(state) == ["hi", "hello"]
    assert (state.topic, state.count) == ("greeting", 1)


async def test_command_goto_with_update() -> None:
    def a(state: Notes) -> Command:
        return Command(goto="c", update={"topic": "jumped", "messages": [Message.assistant("a")]})

    app = chain(
        ("a", a),
        ("b", lambda s: Message.assistant("b")),
        ("c", lambda s: Message.assistant("c")),
        state_cls=Notes,
    )
    result = await app.ainvoke(HI)
    assert texts(result.state) == ["hi", "a", "c"]
    assert result.state.topic == "jumped"


async def test_command_goto_end_stops_the_run() -> None:
    app = chain(
        ("a", lambda s: Command(goto=END, update=Message.assistant("bye"))),
        ("b", lambda s: Message.assistant("never")),
    )
    result = await app.ainvoke(HI)
    assert texts(result.state) == ["hi", "bye"]
    assert result.status == "done"


async def test_command_without_goto_follows_the_normal_edge() -> None:
    app = chain(
        ("a", lambda s: Command(update={"topic": "t"})),
        ("b", lambda s: Message.assistant("b")),
        state_cls=Notes,
    )
    result = await app.ainvoke(HI)
    assert texts(result.state) == ["hi", "b"]
    assert result.state.topic == "t"


async def test_command_goto_unknown_node_is_a_graph_error_naming_it() -> None:
    app = single(lambda s: Command(goto="nowhere"))
    with pytest.raises(GraphError, match="'nowhere'"):
        await app.ainvoke(HI)


async def test_unknown_field_in_update_names_node_and_field() -> None:
    app = single(lambda s: {"topic": "ok", "mood": "happy"}, Notes, name="writer")
    with pytest.raises(InvalidInputError, match=r"'writer'.*'mood'"):
        await app.ainvoke(HI)


async def test_unknown_field_in_command_update_names_node_and_field() -> None:
    app = single(lambda s: Command(goto=END, update={"mood": 1}), name="writer")
    with pytest.raises(InvalidInputError, match=r"'writer'.*'mood'"):
        await app.ainvoke(HI)


@pytest.mark.parametrize(
    "returned",
    [42, "hello", ("a", "b"), AgentState(), [1, 2], {"messages": "hi"}, {"messages": 7}],
    ids=["int", "str", "tuple", "state", "list-of-ints", "messages-str", "messages-int"],
)
async def test_bad_return_value_is_invalid_input_naming_the_node(returned: Any) -> None:
    app = single(lambda s: returned, name="broken")
    with pytest.raises(InvalidInputError, match="'broken'"):
        await app.ainvoke(HI)


async def test_bad_message_dict_returned_is_invalid_input() -> None:
    app = single(lambda s: [{"role": "wizard", "content": "x"}], name="broken")
    with pytest.raises(InvalidInputError, match=r"'broken'.*role"):
        await app.ainvoke(HI)


# -- run input --------------------------------------------------------------------------------


async def test_input_messages_as_objects_dicts_and_content_blocks() -> None:
    seen: list[Message] = []

    def node(state: AgentState) -> None:
        seen.extend(state.context)

    blocks = [
        {"type": "text", "text": "what is "},
        {"type": "image", "url": "u"},
        {"type": "text", "text": "this"},
    ]
    await single(node).ainvoke(
        {
            "messages": [
                Message.system("be brief"),
                {"role": "user", "content": blocks},
                {"role": "assistant", "content": "a picture"},
            ]
        }
    )
    assert [m.role for m in seen] == ["system", "user", "assistant"]
    assert all(isinstance(m, Message) for m in seen)
    assert seen[1].content == blocks
    assert seen[1].text == "what is this"


async def test_input_state_fields_are_set_before_the_first_node() -> None:
    seen: list[tuple[str, list[str]]] = []

    def node(state: Notes) -> None:
        seen.append((state.topic, state.tags))

    await single(node, Notes).ainvoke({"messages": [], "state": {"topic": "dogs", "tags": ["a"]}})
    assert seen == [("dogs", ["a"])]


async def test_input_without_messages_key_runs_with_empty_context() -> None:
    seen: list[int] = []
    await single(lambda s: seen.append(len(s.context))).ainvoke({})
    await single(lambda s: seen.append(len(s.context))).ainvoke(None)
    assert seen == [0, 0]


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        ("hello", "dict"),
        ([{"role": "user", "content": "x"}], "dict"),
        ({"messages": [], "extra": 1}, "extra"),
        ({"message": []}, "message"),
        ({"messages": [{"role": "bot", "content": "x"}]}, "role"),
        ({"messages": [{"role": "user", "content": 3}]}, "content"),
        ({"messages": ["just text"]}, "message"),
        ({"messages": {"role": "user", "content": "x"}}, "list"),
        ({"messages": "hello"}, "list"),
        ({"state": ["topic"]}, "state"),
    ],
)
async def test_bad_input_is_invalid_input(bad: Any, needle: str) -> None:
    calls: list[int] = []
    app = single(lambda s: calls.append(1), Notes)
    with pytest.raises(InvalidInputError, match=needle):
        await app.ainvoke(bad)
    assert calls == []


async def test_messages_that_are_not_a_list_at_all_are_invalid_input() -> None:
    """`{"messages": 5}` is as wrong as `{"messages": "hello"}` and must be reported the
    same way, not as a bare TypeError from iterating an int."""
    app = single(lambda s: None)
    with pytest.raises(InvalidInputError):
        await app.ainvoke({"messages": 5})


async def test_unknown_state_field_in_input_is_invalid_input_naming_it() -> None:
    """A node returning an unknown field gets an InvalidInputError naming it; run input
    with the same mistake must not fail with a bare TypeError from the dataclass."""
    app = single(lambda s: None, Notes)
    with pytest.raises(InvalidInputError, match="mood"):
        await app.ainvoke({"messages": [], "state": {"mood": "happy"}})


async def test_input_state_cannot_put_raw_dicts_into_the_conversation() -> None:
    """`state={"context": [...]}` must either be rejected or end up as Message objects;
    nodes rely on `state.context` holding messages."""
    app = single(lambda s: None)
    try:
        result = await app.ainvoke({"state": {"context": [{"role": "user", "content": "x"}]}})
    except InvalidInputError:
        return
    assert all(isinstance(m, Message) for m in result.state.context), result.state.context


@pytest.mark.parametrize(
    ("config", "needle"),
    [({"thread_id": 7}, "thread_id"), ({"user_id": ["u"]}, "user_id"), ({"run_id": 1.5}, "run_id")],
)
async def test_non_string_ids_in_config_are_invalid_input(
    config: dict[str, Any], needle: str
) -> None:
    with pytest.raises(InvalidInputError, match=needle):
        await single(lambda s: None).ainvoke(HI, config)


# -- RunResult --------------------------------------------------------------------------------


async def test_run_result_fields() -> None:
    def a(state: AgentState) -> Message:
        return Message.assistant("one", usage=Usage(10, 5))

    def b(state: AgentState) -> list[Message]:
        return [Message.assistant("two", usage=Usage(3, 2)), Message.assistant("three")]

    app = chain(("a", a), ("b", b))
    user = Message.user("hi", usage=None)
    result = await app.ainvoke({"messages": [user]}, {"thread_id": "t-9", "run_id": "r-9"})
    assert isinstance(result, RunResult)
    assert result.thread_id == "t-9"
    assert result.run_id == "r-9"
    assert result.status == "done"
    assert [m.text for m in result.messages] == ["hi", "one", "two", "three"]
    assert result.messages[0].id == user.id
    assert result.usage == Usage(13, 7)
    assert result.usage.total_tokens == 20
    assert result.interrupt is None
    assert result.next == []
    assert texts(result.state) == ["hi", "one", "two", "three"]


async def test_run_without_usage_reports_zero_usage() -> None:
    result = await single(lambda s: Message.assistant("x")).ainvoke(HI)
    assert result.usage == Usage(0, 0)


async def test_each_run_gets_fresh_ids_when_none_given() -> None:
    app = single(lambda s: None)
    one = await app.ainvoke(HI)
    two = await app.ainvoke(HI)
    assert one.thread_id != two.thread_id
    assert one.run_id != two.run_id


async def test_without_checkpointer_runs_do_not_share_state() -> None:
    app = single(lambda s: Message.assistant(f"seen {len(s.context)}"))
    first = await app.ainvoke(HI, {"thread_id": "same"})
    second = await app.ainvoke(HI, {"thread_id": "same"})
    assert texts(first.state) == texts(second.state) == ["hi", "seen 1"]


async def test_input_is_not_mutated_and_state_not_shared_between_runs() -> None:
    app = single(lambda s: {"notes": ["n"], "tags": [*s.tags, "t"]}, Notes)
    payload = {"messages": [{"role": "user", "content": "x"}], "state": {"tags": ["given"]}}
    first = await app.ainvoke(payload)
    second = await app.ainvoke(payload)
    assert payload == {"messages": [{"role": "user", "content": "x"}], "state": {"tags": ["given"]}}
    assert first.state.notes == second.state.notes == ["n"]
    assert first.state.tags == second.state.tags == ["given", "t"]


# -- invoke (sync wrapper) --------------------------------------------------------------------


def test_invoke_works_outside_an_event_loop() -> None:
    def node(state: AgentState, config: dict[str, Any]) -> Message:
        return Message.assistant(f"hi {config['user_id']}")

    result = single(node).invoke(HI, {"user_id": "bob"})
    assert result.status == "done"
    assert texts(result.state) == ["hi", "hi bob"]


async def test_invoke_inside_a_running_loop_raises_graph_error() -> None:
    calls: list[int] = []
    app = single(lambda s: calls.append(1))
    with pytest.raises(GraphError, match="ainvoke"):
        app.invoke(HI)
    assert calls == []
