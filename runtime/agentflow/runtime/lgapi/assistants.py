"""`/assistants/...`: each served graph is one assistant (LangGraph's default assistant of
a graph); searching, counting, reading one, its drawing and its schemas."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from agentflow.graph.compiled import CompiledGraph
from agentflow.runtime.endpoints import Call
from agentflow.runtime.lgapi.types import AssistantSearch, GraphQuery
from agentflow.runtime.lgapi.views import assistant_view, graph_named
from agentflow.runtime.publisher import ApiJSONResponse
from agentflow.runtime.state import AppRuntime


def state_schema(graph: CompiledGraph) -> dict[str, Any]:
    """An agentflow graph's state as LangGraph values: `messages` and its other fields."""
    from agentflow.graph.state import field_names

    fields = sorted(f for f in field_names(graph.state_cls) if f != "context")
    properties: dict[str, Any] = {"messages": {"type": "array", "items": {"type": "object"}}}
    properties |= {name: {} for name in fields}
    return {"title": graph.state_cls.__name__, "type": "object", "properties": properties}


def _matching(rt: AppRuntime, body: AssistantSearch) -> list[dict[str, Any]]:
    found = []
    for name in rt.graphs:
        view = assistant_view(rt, name)
        if body.graph_id is not None and body.graph_id != name:
            continue
        if body.name is not None and body.name.lower() not in name.lower():
            continue
        if body.metadata and any(view["metadata"].get(k) != v for k, v in body.metadata.items()):
            continue
        found.append(view)
    return found


async def search(call: Call[AssistantSearch, None]) -> Response:
    found = _matching(call.rt, call.body)
    start = int(call.body.offset)
    page = found[start : start + int(call.body.limit)]
    return ApiJSONResponse(page, headers={"X-Pagination-Total": str(len(found))})


async def count(call: Call[AssistantSearch, None]) -> int:
    return len(_matching(call.rt, call.body))


async def get(call: Call[None, None]) -> dict[str, Any]:
    name, _ = graph_named(call.rt, call.path["assistant_id"])
    return assistant_view(call.rt, name)


async def drawing(call: Call[None, GraphQuery]) -> dict[str, Any]:
    _, graph = graph_named(call.rt, call.path["assistant_id"])
    if not isinstance(graph, CompiledGraph):
        return graph.drawing(xray=call.query.xray)
    drawn = graph.get_graph()  # drawn as LangGraph draws: the end node bare, plain edges
    nodes = [
        {"id": n["id"]} if n["type"] == "end"
        else {"id": n["id"], "type": "runnable", "data": {"name": n["id"]}}
        for n in drawn["nodes"]
    ]  # fmt: skip
    edges = [{"source": e["source"], "target": e["target"]} for e in drawn["edges"]]
    for edge, drawn_edge in zip(edges, drawn["edges"], strict=True):
        if drawn_edge["conditional"]:
            edge["conditional"] = True
    return {"nodes": nodes, "edges": edges}


async def schemas(call: Call[None, None]) -> dict[str, Any]:
    name, graph = graph_named(call.rt, call.path["assistant_id"])
    if not isinstance(graph, CompiledGraph):
        return {"graph_id": name, **graph.schemas()}
    state = state_schema(graph)
    return {
        "graph_id": name,
        "input_schema": state,
        "output_schema": state,
        "state_schema": state,
        "config_schema": {"type": "object", "properties": {}},
        "context_schema": None,
    }
