"""Describe a graph's structure: nodes, edges and a Mermaid drawing."""

from __future__ import annotations

from typing import Any

from agentflow.graph.builder import END, START, GraphSpec


def graph_edges(spec: GraphSpec) -> list[dict[str, Any]]:
    edges: list[dict[str, Any]] = []
    if isinstance(spec.entry, str):
        edges.append({"source": START, "target": spec.entry, "conditional": False})
    else:
        edges += _router_edges(START, spec.entry.path_map, spec)
    for source, target in spec.edges.items():
        if source != START:
            edges.append({"source": source, "target": target, "conditional": False})
    for source, router in spec.routers.items():
        edges += _router_edges(source, router.path_map, spec)
    for node in spec.nodes:
        if node not in spec.edges and node not in spec.routers:
            edges.append({"source": node, "target": END, "conditional": False})
    return edges


def _router_edges(
    source: str, path_map: dict[Any, str] | None, spec: GraphSpec
) -> list[dict[str, Any]]:
    if path_map is None:  # may go anywhere
        targets = [*spec.nodes, END]
        return [{"source": source, "target": t, "conditional": True} for t in targets]
    return [
        {"source": source, "target": target, "conditional": True, "label": str(key)}
        for key, target in path_map.items()
    ]


def describe(spec: GraphSpec, name: str) -> dict[str, Any]:
    edges = graph_edges(spec)
    nodes: list[dict[str, Any]] = [{"id": START, "type": "start"}]
    nodes += [
        {
            "id": node,
            "type": "node",
            "interrupt_before": node in spec.interrupt_before,
            "interrupt_after": node in spec.interrupt_after,
        }
        for node in spec.nodes
    ]
    nodes.append({"id": END, "type": "end"})
    return {
        "name": name,
        "state": spec.state_cls.__name__,
        "nodes": nodes,
        "edges": edges,
        "mermaid": mermaid(spec, edges),
    }


def mermaid(spec: GraphSpec, edges: list[dict[str, Any]] | None = None) -> str:
    ids = {START: "__start__", END: "__end__"}
    ids.update({node: f"n{i}" for i, node in enumerate(spec.nodes)})
    lines = ["flowchart TD", f"    {ids[START]}([START])", f"    {ids[END]}([END])"]
    lines += [f'    {ids[node]}["{_escape(node)}"]' for node in spec.nodes]
    for edge in edges or graph_edges(spec):
        arrow = "-.->" if edge["conditional"] else "-->"
        label = f"|{_escape(edge['label'])}|" if edge.get("label") else ""
        lines.append(f"    {ids[edge['source']]} {arrow}{label} {ids[edge['target']]}")
    return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace('"', "#quot;").replace("|", "#124;")
