"""models_in_graph: the models a graph's nodes hold, wherever a node keeps them."""

from __future__ import annotations

import functools
from typing import Any

from agentflow.graph import END, START, AgentState, CompiledGraph, Message, StateGraph
from agentflow.models import (
    DemoChat,
    EchoChat,
    FallbackChat,
    ModelInfo,
    OpenAIChat,
    ScriptedChat,
    call_model,
    models_in_graph,
)
from agentflow.tools import create_react_agent

GLOBAL_MODEL = EchoChat(name="global-echo")


def one_node(node: Any) -> CompiledGraph:
    graph = StateGraph()
    graph.add_node("answer", node)
    graph.add_edge(START, "answer")
    graph.add_edge("answer", END)
    return graph.compile()


def real_model(name: str = "gpt-test-2024-01-01") -> OpenAIChat:
    return OpenAIChat(name, base_url="http://127.0.0.1:1/v1", api_key="sk-inventory-0123456789")


def test_a_react_agent_and_a_fallback_chain() -> None:
    assert models_in_graph(create_react_agent(DemoChat(), [])) == [
        ModelInfo("demo", "DemoChat", offline=True)
    ]
    chain = FallbackChat([real_model(), DemoChat(name="backup")])
    agent = create_react_agent(chain, []).with_checkpointer(None)
    assert [m.to_dict() for m in models_in_graph(agent)] == [
        {"name": "gpt-test-2024-01-01", "class": "OpenAIChat", "offline": False},
        {"name": "backup", "class": "DemoChat", "offline": True},
    ]


def test_a_model_in_a_module_global_a_bound_method_or_a_partial() -> None:
    async def uses_global(state: AgentState) -> Message:
        return await call_model(GLOBAL_MODEL, state.context)

    class Responder:
        def __init__(self) -> None:
            self.model = ScriptedChat(["hi"], name="method")

        async def respond(self, state: AgentState) -> Message:
            return await call_model(self.model, state.context)

    async def with_model(state: AgentState, *, model: Any) -> Message:
        return await call_model(model, state.context)

    partial = functools.partial(with_model, model=real_model("partial-model-1"))
    assert [m.name for m in models_in_graph(one_node(uses_global))] == ["global-echo"]
    assert [m.name for m in models_in_graph(one_node(Responder().respond))] == ["method"]
    assert [m.name for m in models_in_graph(one_node(partial))] == ["partial-model-1"]


def test_a_graph_without_a_model_and_objects_that_refuse_inspection() -> None:
    class Touchy:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"the walk must not run attribute hooks ({name})")

    touchy = Touchy()

    async def plain(state: AgentState) -> Message:
        return Message.assistant(str(touchy))

    assert models_in_graph(one_node(plain)) == []
    assert models_in_graph(object()) == []


def test_a_model_is_reported_once_and_never_with_its_key() -> None:
    model = real_model()

    async def twice(state: AgentState) -> Message:
        await call_model(model, state.context)
        return await call_model(model, state.context)

    found = models_in_graph(one_node(twice))
    assert found == [ModelInfo("gpt-test-2024-01-01", "OpenAIChat", offline=False)]
    assert "sk-inventory" not in repr(found)
