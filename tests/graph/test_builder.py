"""StateGraph construction and the validation `compile()` performs."""

import dataclasses
import itertools
import operator
from typing import Annotated, Any

import pytest

from agentflow.graph import (
    END,
    START,
    AgentState,
    CompiledGraph,
    GraphError,
    Message,
    StateGraph,
)


class Extra(AgentState):
    topic: str = ""
    count: int = 0
    notes: Annotated[list[str], operator.add] = dataclasses.field(default_factory=list)


def noop(state: AgentState) -> None:
    return None


def reply(text: str) -> Any:
    def node(state: AgentState) -> Message:
        return Message.assistant(text)

    return node


def texts(state: AgentState) -> list[str]:
    return [m.text for m in state.context]


def linear(*names: str) -> StateGraph:
    g = StateGraph()
    for name in names:
        g.add_node(name, reply(name))
    g.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        g.add_edge(a, b)
    g.add_edge(names[-1], END)
    return g


# -- state classes --------------------------------------------------------------------------


def test_default_state_class_is_agent_state() -> None:
    g = StateGraph()
    g.add_node("a", noop)
    g.set_entry_point("a")
    app = g.compile()
    assert g.state_cls is AgentState
    assert app.state_cls is AgentState


def test_state_subclass_becomes_kw_only_dataclass() -> None:
    assert dataclasses.is_dataclass(Extra)
    assert [f.name for f in dataclasses.fields(Extra)] == ["context", "topic", "count", "notes"]
    state = Extra(topic="t", count=2)
    assert (state.topic, state.count, state.notes, state.context) == ("t", 2, [], [])
    with pytest.raises(TypeError):
        Extra("t")  # type: ignore[misc]
    # every instance gets its own list
    assert Extra().notes is not Extra().notes


def test_state_graph_uses_the_given_subclass() -> None:
    g = StateGraph(Extra)
    g.add_node("a", noop)
    g.set_entry_point("a")
    assert g.compile().state_cls is Extra


@pytest.mark.parametrize("bad", [dict, object, AgentState(), "AgentState", None])
def test_state_graph_rejects_non_state_classes(bad: Any) -> None:
    with pytest.raises(GraphError, match="AgentState"):
        StateGraph(bad)


# -- nodes ------------------------------------------------------------------------------------


def test_add_node_names_a_node_after_its_function_and_chains() -> None:
    def greet(state: AgentState) -> Message:
        return Message.assistant("hello")

    g = StateGraph()
    assert g.add_node(greet) is g
    assert list(g.nodes) == ["greet"]
    app = g.set_entry_point("greet").compile()
    assert texts(app.invoke({"messages": [Message.user("hi")]}).state) == ["hi", "hello"]


def test_duplicate_node_name_is_rejected_naming_the_node() -> None:
    g = StateGraph()
    g.add_node("writer", noop)
    with pytest.raises(GraphError, match="'writer'"):
        g.add_node("writer", noop)


@pytest.mark.parametrize("name", [START, END])
def test_reserved_node_names_are_rejected(name: str) -> None:
    with pytest.raises(GraphError, match=name):
        StateGraph().add_node(name, noop)


def test_node_must_be_callable_and_take_the_state() -> None:
    g = StateGraph()
    with pytest.raises(GraphError, match=r"'a'.*callable"):
        g.add_node("a", 42)  # type: ignore[arg-type]
    with pytest.raises(GraphError, match=r"'b'.*state"):
        g.add_node("b", lambda: None)
    with pytest.raises(GraphError, match="needs a function"):
        g.add_node("c")
    with pytest.raises(GraphError, match="non-empty"):
        g.add_node("", noop)


# -- compile-time validation ------------------------------------------------------------------


def test_missing_entry_point() -> None:
    g = StateGraph()
    g.add_node("a", noop)
    with pytest.raises(GraphError, match="entry point"):
        g.compile()


def test_edge_to_unknown_node_names_it() -> None:
    g = StateGraph()
    g.add_node("a", noop)
    g.set_entry_point("a")
    g.add_edge("a", "ghost")
    with pytest.raises(GraphError, match="'ghost'"):
        g.compile()


def test_edge_from_unknown_node_names_it() -> None:
    g = StateGraph()
    g.add_node("a", noop)
    g.set_entry_point("a")
    g.add_edge("phantom", "a")
    with pytest.raises(GraphError, match="'phantom'"):
        g.compile()


def test_entry_point_to_unknown_node_names_it() -> None:
    g = StateGraph()
    g.add_node("a", noop)
    g.set_entry_point("nowhere")
    with pytest.raises(GraphError, match="'nowhere'"):
        g.compile()


@pytest.mark.parametrize(
    "path_map", [{"go": "ghost", "stop": END}, ["ghost", END]], ids=["dict", "list"]
)
def test_path_map_to_unknown_node_names_it(path_map: Any) -> None:
    g = StateGraph()
    g.add_node("a", noop)
    g.set_entry_point("a")
    g.add_conditional_edges("a", lambda s: END, path_map)
    with pytest.raises(GraphError, match="'ghost'"):
        g.compile()


def test_conditional_edges_from_unknown_node_names_it() -> None:
    g = StateGraph()
    g.add_node("a", noop)
    g.set_entry_point("a")
    g.add_conditional_edges("phantom", lambda s: END)
    with pytest.raises(GraphError, match="'phantom'"):
        g.compile()


@pytest.mark.parametrize("option", ["interrupt_before", "interrupt_after"])
def test_interrupt_list_with_unknown_node_names_it(option: str) -> None:
    g = linear("a", "b")
    with pytest.raises(GraphError, match="'ghost'"):
        g.compile(**{option: ["a", "ghost"]})


def test_multiple_fixed_edges_from_one_node() -> None:
    g = linear("a", "b")
    g.add_node("c", noop)
    g.add_edge("a", "c")
    with pytest.raises(GraphError, match=r"'a'.*outgoing edges"):
        g.compile()


def test_fixed_and_conditional_edges_from_one_node() -> None:
    g = linear("a", "b")
    g.add_conditional_edges("a", lambda s: "b")
    with pytest.raises(GraphError, match=r"'a'.*both"):
        g.compile()


def test_conditional_edges_can_only_be_added_once_per_node() -> None:
    g = StateGraph()
    g.add_node("a", noop)
    g.add_conditional_edges("a", lambda s: END)
    with pytest.raises(GraphError, match="'a'"):
        g.add_conditional_edges("a", lambda s: END)


def test_edges_out_of_end_or_into_start_are_rejected() -> None:
    g = StateGraph()
    g.add_node("a", noop)
    with pytest.raises(GraphError, match="END"):
        g.add_edge(END, "a")
    with pytest.raises(GraphError, match="START"):
        g.add_edge("a", START)


def test_static_cycle_without_way_to_end_is_rejected_naming_the_nodes() -> None:
    g = StateGraph()
    g.add_node("ping", noop)
    g.add_node("pong", noop)
    g.set_entry_point("ping")
    g.add_edge("ping", "pong")
    g.add_edge("pong", "ping")
    with pytest.raises(GraphError, match=r"END is unreachable.*'ping'.*'pong'"):
        g.compile()


def test_path_map_that_only_loops_is_rejected() -> None:
    g = StateGraph()
    g.add_node("a", noop)
    g.add_node("b", noop)
    g.set_entry_point("a")
    g.add_edge("a", "b")
    g.add_conditional_edges("b", lambda s: "a", {"again": "a", "stay": "b"})
    with pytest.raises(GraphError, match="END is unreachable"):
        g.compile()


def test_cycle_with_an_exit_compiles() -> None:
    g = StateGraph()
    g.add_node("a", noop)
    g.add_node("b", noop)
    g.set_entry_point("a")
    g.add_edge("a", "b")
    g.add_conditional_edges("b", lambda s: "a", {"again": "a", "done": END})
    assert isinstance(g.compile(), CompiledGraph)


def test_router_without_path_map_counts_as_reaching_end() -> None:
    g = StateGraph()
    g.add_node("a", noop)
    g.set_entry_point("a")
    g.add_conditional_edges("a", lambda s: "a")
    assert isinstance(g.compile(), CompiledGraph)


def test_node_without_outgoing_edge_ends_the_run() -> None:
    g = StateGraph()
    g.add_node("a", reply("only"))
    g.set_entry_point("a")
    result = g.compile().invoke({"messages": [{"role": "user", "content": "hi"}]})
    assert result.status == "done"
    assert texts(result.state) == ["hi", "only"]


# -- routing ----------------------------------------------------------------------------------


def branching(router: Any, path_map: Any = None) -> CompiledGraph:
    g = StateGraph()
    g.add_node("decide", noop)
    g.add_node("left", reply("left"))
    g.add_node("right", reply("right"))
    g.set_entry_point("decide")
    g.add_conditional_edges("decide", router, path_map)
    g.set_finish_point("left")
    g.set_finish_point("right")
    return g.compile()


def by_last_word(state: AgentState) -> str:
    return state.context[-1].text.split()[-1]


async def test_router_returning_node_names() -> None:
    app = branching(by_last_word)
    for word in ("left", "right"):
        result = await app.ainvoke({"messages": [Message.user(f"go {word}")]})
        assert texts(result.state)[-1] == word


async def test_router_with_list_path_map() -> None:
    app = branching(by_last_word, ["left", "right"])
    result = await app.ainvoke({"messages": [Message.user("go right")]})
    assert texts(result.state) == ["go right", "right"]


async def test_router_with_dict_path_map_and_non_string_keys() -> None:
    app = branching(lambda s: "left" in s.context[-1].text, {True: "left", False: "right"})
    assert texts((await app.ainvoke({"messages": [Message.user("left")]})).state)[-1] == "left"
    assert texts((await app.ainvoke({"messages": [Message.user("up")]})).state)[-1] == "right"


async def test_router_can_return_end() -> None:
    app = branching(lambda s: END)
    result = await app.ainvoke({"messages": [Message.user("stop")]})
    assert result.status == "done"
    assert texts(result.state) == ["stop"]


async def test_router_result_missing_from_path_map_is_a_graph_error() -> None:
    app = branching(lambda s: "up", {"l": "left", "r": "right"})
    with pytest.raises(GraphError, match=r"'up'.*path map"):
        await app.ainvoke({"messages": [Message.user("x")]})


async def test_router_returning_unknown_node_is_a_graph_error() -> None:
    app = branching(lambda s: "sideways")
    with pytest.raises(GraphError, match="'sideways'"):
        await app.ainvoke({"messages": [Message.user("x")]})


async def test_async_router_with_config() -> None:
    seen: list[str] = []

    async def router(state: AgentState, config: dict[str, Any]) -> str:
        seen.append(config["thread_id"])
        return config["side"]

    app = branching(router)
    result = await app.ainvoke(
        {"messages": [Message.user("x")]}, {"thread_id": "t1", "side": "right"}
    )
    assert texts(result.state)[-1] == "right"
    assert seen == ["t1"]


async def test_conditional_entry_point() -> None:
    g = StateGraph()
    g.add_node("left", reply("left"))
    g.add_node("right", reply("right"))
    g.add_conditional_edges(START, by_last_word, ["left", "right"])
    app = g.compile()
    result = await app.ainvoke({"messages": [Message.user("go left")]})
    assert texts(result.state) == ["go left", "left"]


# -- compiled objects -------------------------------------------------------------------------


async def test_compiling_twice_gives_independent_graphs() -> None:
    g = linear("a", "b")
    first = g.compile()
    second = g.compile()
    assert first is not second
    # changing the builder afterwards affects neither compiled graph
    g.add_node("c", reply("c"))
    first_out = await first.ainvoke({"messages": [Message.user("hi")]})
    second_out = await second.ainvoke({"messages": [Message.user("hi")]})
    assert texts(first_out.state) == texts(second_out.state) == ["hi", "a", "b"]


async def test_builder_changes_after_compile_do_not_leak_into_the_compiled_graph() -> None:
    g = StateGraph()
    g.add_node("a", reply("a"))
    g.add_node("b", reply("b"))
    g.set_entry_point("a")
    before = g.compile()
    g.add_edge("a", "b")
    after = g.compile()
    assert texts((await before.ainvoke({"messages": [Message.user("x")]})).state) == ["x", "a"]
    assert texts((await after.ainvoke({"messages": [Message.user("x")]})).state) == [
        "x",
        "a",
        "b",
    ]


def test_repr_names_the_nodes() -> None:
    app = linear("a", "b").compile()
    assert "'a'" in repr(app) and "'b'" in repr(app)
