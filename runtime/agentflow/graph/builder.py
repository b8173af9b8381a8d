"""`StateGraph`: declare nodes and edges, then `compile()` into a runnable graph."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentflow.graph.errors import GraphError
from agentflow.graph.state import AgentState

if TYPE_CHECKING:
    from agentflow.graph.compiled import CompiledGraph
    from agentflow.graph.storage import Checkpointer

START = "__start__"
END = "__end__"
RESERVED = frozenset({START, END})


@dataclass(frozen=True, slots=True)
class Step:
    """A user callable (node or router) with how to call it."""

    fn: Callable[..., Any]
    is_async: bool
    takes_config: bool

    @classmethod
    def wrap(cls, fn: Callable[..., Any], what: str) -> Step:
        if not callable(fn):
            raise GraphError(f"{what} must be callable, got {type(fn).__name__}")
        target = fn if inspect.isfunction(fn) or inspect.ismethod(fn) else fn.__call__  # type: ignore[operator]
        is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(target)
        try:
            params = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):
            return cls(fn, is_async, takes_config=True)
        positional = [
            p
            for p in params
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
        varargs = any(p.kind is p.VAR_POSITIONAL for p in params)
        if not positional and not varargs:
            raise GraphError(f"{what} must accept the state as its first argument")
        takes_config = varargs or len(positional) >= 2 or any(p.name == "config" for p in params)
        return cls(fn, is_async, takes_config)


@dataclass(frozen=True, slots=True)
class Router:
    step: Step
    path_map: dict[Hashable, str] | None


@dataclass(frozen=True, slots=True)
class GraphSpec:
    """The validated, immutable definition a CompiledGraph runs."""

    state_cls: type[AgentState]
    nodes: dict[str, Step]
    edges: dict[str, str]
    routers: dict[str, Router]
    entry: str | Router
    interrupt_before: frozenset[str]
    interrupt_after: frozenset[str]


class StateGraph:
    """A graph of nodes over a state class (`AgentState` unless given)."""

    def __init__(self, state_cls: type[AgentState] = AgentState) -> None:
        if not (isinstance(state_cls, type) and issubclass(state_cls, AgentState)):
            raise GraphError(f"StateGraph needs AgentState or a subclass of it, got {state_cls!r}")
        try:
            state_cls()
        except TypeError as exc:
            raise GraphError(
                f"{state_cls.__name__} cannot be created empty ({exc}); give every field a "
                "default value"
            ) from None
        self.state_cls = state_cls
        self.nodes: dict[str, Step] = {}
        self.edges: dict[str, list[str]] = {}
        self.routers: dict[str, Router] = {}

    def add_node(
        self, name: str | Callable[..., Any], fn: Callable[..., Any] | None = None
    ) -> StateGraph:
        """Add a node; `add_node(fn)` names it after the function."""
        if fn is None:
            if not callable(name):
                raise GraphError(f"add_node({name!r}) needs a function")
            fn, name = name, getattr(name, "__name__", type(name).__name__)
        if not isinstance(name, str) or not name:
            raise GraphError(f"node name must be a non-empty string, got {name!r}")
        if name in RESERVED:
            raise GraphError(f"{name!r} is reserved; pick another node name")
        if name in self.nodes:
            raise GraphError(f"duplicate node {name!r}: each node name can be added once")
        self.nodes[name] = Step.wrap(fn, f"node {name!r}")
        return self

    def add_edge(self, source: str, target: str) -> StateGraph:
        if source == END:
            raise GraphError("END cannot have outgoing edges")
        if target == START:
            raise GraphError("START cannot be an edge target")
        self.edges.setdefault(source, []).append(target)
        return self

    def add_conditional_edges(
        self,
        source: str,
        router: Callable[..., Any],
        path_map: Mapping[Hashable, str] | Sequence[str] | None = None,
    ) -> StateGraph:
        """After `source`, call `router(state[, config])` to pick the next node. Its result is
        a node name (or END), or a key of `path_map`."""
        if source in self.routers:
            raise GraphError(f"node {source!r} already has conditional edges")
        mapping: dict[Hashable, str] | None
        if path_map is None:
            mapping = None
        elif isinstance(path_map, Mapping):
            mapping = dict(path_map)
        else:
            mapping = {name: name for name in path_map}
        self.routers[source] = Router(Step.wrap(router, f"router of {source!r}"), mapping)
        return self

    def set_entry_point(self, node: str) -> StateGraph:
        return self.add_edge(START, node)

    def set_finish_point(self, node: str) -> StateGraph:
        return self.add_edge(node, END)

    def compile(
        self,
        checkpointer: Checkpointer | None = None,
        *,
        interrupt_before: Sequence[str] = (),
        interrupt_after: Sequence[str] = (),
        name: str = "graph",
    ) -> CompiledGraph:
        from agentflow.graph.compiled import CompiledGraph

        return CompiledGraph(self._validate(interrupt_before, interrupt_after), checkpointer, name)

    def _validate(self, before: Sequence[str], after: Sequence[str]) -> GraphSpec:
        known = set(self.nodes)

        def check(name: str, where: str) -> None:
            if name != END and name not in known:
                hint = f"; known nodes: {sorted(known)}" if known else ""
                raise GraphError(f"{where} refers to unknown node {name!r}{hint}")

        for source, targets in self.edges.items():
            if source != START:
                check(source, f"edge {source!r} -> {targets[0]!r}")
            for target in targets:
                check(target, f"edge {source!r} -> {target!r}")
            if len(targets) > 1:
                raise GraphError(
                    f"node {source!r} has {len(targets)} outgoing edges {targets}; parallel "
                    "branches are not supported: use add_conditional_edges to choose one"
                )
            if source in self.routers:
                raise GraphError(
                    f"node {source!r} has both a fixed edge and conditional edges; keep one"
                )
        for source, router in self.routers.items():
            if source != START:
                check(source, f"conditional edges from {source!r}")
            for target in (router.path_map or {}).values():
                check(target, f"path map of {source!r}")
        for name in (*before, *after):
            if name in RESERVED:
                raise GraphError(f"interrupt_before/interrupt_after take node names, not {name!r}")
            check(name, "interrupt_before/interrupt_after")

        entry: str | Router
        if START in self.routers:
            entry = self.routers[START]
        elif START in self.edges:
            entry = self.edges[START][0]
        else:
            raise GraphError(
                "the graph has no entry point: add add_edge(START, 'first_node') "
                "or set_entry_point('first_node')"
            )
        edges = {source: targets[0] for source, targets in self.edges.items()}
        self._check_end_reachable(edges)
        return GraphSpec(
            state_cls=self.state_cls,
            nodes=dict(self.nodes),
            edges=edges,
            routers={k: v for k, v in self.routers.items() if k != START},
            entry=entry,
            interrupt_before=frozenset(before),
            interrupt_after=frozenset(after),
        )

    def _check_end_reachable(self, edges: dict[str, str]) -> None:
        """END must be reachable from START. A node with no outgoing edge ends the run; a
        router without a path map may go anywhere, so it counts as reaching END."""

        def successors(node: str) -> list[str] | None:
            if node in self.routers:
                router = self.routers[node]
                return None if router.path_map is None else list(router.path_map.values())
            if node in edges:
                return [edges[node]]
            return [END] if node != START else []

        seen: set[str] = set()
        todo = [START]
        while todo:
            node = todo.pop()
            if node in seen:
                continue
            seen.add(node)
            nexts = successors(node)
            if nexts is None or END in nexts:
                return
            todo.extend(nexts)
        loop = sorted(seen - {START})
        raise GraphError(
            f"END is unreachable: nodes {loop} only lead to each other. Add an edge to END or "
            "a conditional edge that can return END"
        )
