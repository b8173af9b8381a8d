"""A LangGraph compiled graph served by agentflow's run service.

The adapter runs the graph with its state in agentflow's store (`LangGraphSaver` on the
server's SQLite file or Postgres pool; LangGraph's in-memory saver with the memory store) and
passes what LangGraph streams to the run service as `StreamChunk`s whose `data["lg"]` holds
the JSON payload LangGraph's API sends for that stream mode (`data["ns"]`: the subgraph
namespace). Needs the `langgraph` extra; imported only when a LangGraph graph is served.
"""

from __future__ import annotations

import contextlib
import datetime
import uuid
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig
from langchain_core.utils.pydantic import create_model
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.pregel import Pregel
from langgraph.types import Command, StateSnapshot, StreamMode

from agentflow.checkpointer.items import ItemStore, item_store
from agentflow.checkpointer.langgraph import LangGraphSaver
from agentflow.checkpointer.langgraph_store import LangGraphStore
from agentflow.errors import InvalidInputError
from agentflow.graph.command import Interrupt
from agentflow.graph.compiled import RunResult
from agentflow.graph.messages import Message, Usage
from agentflow.graph.state import AgentState
from agentflow.graph.storage import Checkpointer
from agentflow.graph.stream import StreamChunk, StreamEvent
from agentflow.runtime.lgapi.convert import jsonable, to_message

__all__ = ["LangGraphAdapter", "LangGraphInput", "run_config"]

EventSink = Any  # Callable[[StreamChunk], None]
# agentflow's stream events -> LangGraph's stream modes
MODES: dict[StreamEvent, StreamMode] = {
    StreamEvent.VALUES: "values",
    StreamEvent.UPDATES: "updates",
    StreamEvent.DELTA: "messages",
    StreamEvent.CUSTOM: "custom",
}
EVENTS: dict[str, StreamEvent] = {mode: event for event, mode in MODES.items()}


@dataclass(slots=True)
class LangGraphInput:
    """A run of a LangGraph graph as a LangGraph client asks for it."""

    input: Any = None
    command: dict[str, Any] | None = None
    configurable: dict[str, Any] = field(default_factory=dict)
    checkpoint_id: str | None = None
    subgraphs: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    interrupt_before: list[str] | None = None  # pause before these nodes ("*": every node)
    interrupt_after: list[str] | None = None

    def graph_input(self) -> Any:
        if self.command is None:
            return self.input
        return Command(
            resume=self.command.get("resume"),
            update=self.command.get("update"),
            goto=self.command.get("goto") or (),
        )


def run_config(
    thread_id: str,
    *,
    checkpoint_id: str | None = None,
    configurable: Mapping[str, Any] | None = None,
) -> RunnableConfig:
    """The config naming a thread (and a checkpoint of its root graph) for LangGraph."""
    values = {**(configurable or {}), "thread_id": thread_id}
    if checkpoint_id:
        values["checkpoint_id"] = checkpoint_id
    return {"configurable": values}


class LangGraphAdapter:
    """What the run service and the LangGraph API need of a LangGraph compiled graph."""

    kind = "langgraph"

    def __init__(
        self,
        graph: Pregel[Any, Any, Any, Any],
        saver: BaseCheckpointSaver[Any] | None = None,
        items: ItemStore | None = None,
    ) -> None:
        self.graph = graph
        self.saver = saver
        # The store a run's nodes get (`get_store()`, a `store` argument): the run user's
        # items, the ones the /store API shows that user. A graph compiled with its own
        # store keeps it.
        self.items = items if graph.store is None else None
        self.name = graph.get_name() or "LangGraph"

    def __repr__(self) -> str:
        return f"LangGraphAdapter({self.name!r})"

    def with_checkpointer(self, checkpointer: Checkpointer) -> LangGraphAdapter:
        """The graph with its state kept in `checkpointer`'s store."""
        saver: BaseCheckpointSaver[Any] = (
            LangGraphSaver.for_store(checkpointer) if checkpointer.durable else InMemorySaver()
        )
        bound = self.graph.copy(update={"checkpointer": saver})
        return LangGraphAdapter(bound, saver, item_store(checkpointer))

    async def setup(self) -> None:
        if isinstance(self.saver, LangGraphSaver):
            await self.saver.setup()

    # -- running ---------------------------------------------------------------------

    async def arun(
        self,
        input: Any,
        config: Mapping[str, Any] | None = None,
        *,
        on_event: EventSink | None = None,
        events: Collection[StreamEvent] | None = None,
        new_thread: bool = False,
    ) -> RunResult:
        """Run to the end or to an interrupt; each streamed part goes to `on_event`."""
        config = dict(config or {})
        thread_id, run_id = str(config["thread_id"]), str(config["run_id"])
        if not isinstance(input, LangGraphInput):  # a run of agentflow's API (/v1)
            return await AgentflowRun(self, thread_id, run_id, on_event).run(input, config)
        request = input
        lg_config = run_config(
            thread_id, checkpoint_id=request.checkpoint_id, configurable=request.configurable
        )
        lg_config["configurable"].update(
            user_id=config.get("user_id"),
            run_id=run_id,
            langgraph_request_id=config.get("request_id"),
        )
        lg_config["recursion_limit"] = int(config.get("recursion_limit") or 25)
        lg_config["metadata"] = {**request.metadata, "run_id": run_id, "thread_id": thread_id}
        with contextlib.suppress(ValueError):  # LangChain's run ids are uuids
            lg_config["run_id"] = uuid.UUID(run_id)

        def emit(event: StreamEvent, data: dict[str, Any]) -> None:
            if on_event is not None:
                on_event(StreamChunk(event, thread_id, run_id, data=data))

        emit(StreamEvent.METADATA, {"thread_id": thread_id, "run_id": run_id})
        wanted = set(events) if events is not None else set(MODES)
        modes: list[StreamMode] = [m for e, m in MODES.items() if e in wanted] or ["values"]
        graph = self.graph
        if self.items is not None:
            store = LangGraphStore(self.items, user_id=str(config.get("user_id") or ""))
            graph = graph.copy(update={"store": store})
        if StreamEvent.TRACE in wanted:
            parts = _traced(graph, request, lg_config, modes, emit)
        else:
            parts = graph.astream(
                request.graph_input(), lg_config, stream_mode=modes, subgraphs=request.subgraphs,
                interrupt_before=request.interrupt_before, interrupt_after=request.interrupt_after,
            )  # fmt: skip
        async for part in parts:
            ns, mode, payload = part if request.subgraphs else ((), *part)
            emit(EVENTS[mode], {"lg": jsonable(payload), "ns": list(ns)})
        snapshot = await self.graph.aget_state(run_config(thread_id))
        interrupts = jsonable([i for task in snapshot.tasks for i in task.interrupts])
        status = "interrupted" if interrupts else "done"
        if interrupts:
            emit(StreamEvent.INTERRUPT, {"lg": interrupts})
        emit(StreamEvent.END, {"status": status})
        result = RunResult(thread_id, run_id, status, [], AgentState(), Usage())
        result.values = jsonable(snapshot.values)
        if interrupts:  # what LangGraph's wait and join answer for a paused run
            result.values["__interrupt__"] = interrupts
        result.next = list(snapshot.next)
        return result

    # -- state ---------------------------------------------------------------------

    async def state(self, thread_id: str, checkpoint_id: str | None = None,
                    *, subgraphs: bool = False) -> StateSnapshot:  # fmt: skip
        return await self.graph.aget_state(
            run_config(thread_id, checkpoint_id=checkpoint_id), subgraphs=subgraphs
        )

    async def messages(self, thread_id: str) -> list[Message]:
        """The thread's conversation as agentflow messages (/v1)."""
        values = jsonable((await self.state(thread_id)).values)
        return [to_message(m) for m in values.get("messages") or [] if isinstance(m, Mapping)]

    async def thread_state(self, thread_id: str) -> dict[str, Any] | None:
        """The thread's latest state as /v1 shows a state; None before its first step."""
        snapshot = await self.state(thread_id)
        if snapshot.created_at is None:
            return None
        values = jsonable(snapshot.values)
        messages = values.pop("messages", None) or []
        paused = [i for task in snapshot.tasks for i in task.interrupts]
        interrupt = Interrupt(snapshot.next[0], jsonable(paused[0].value)) if paused else None
        return {
            "thread_id": thread_id,
            "checkpoint_id": snapshot.config["configurable"].get("checkpoint_id"),
            "status": "interrupted" if paused else "running" if snapshot.next else "done",
            "step": max(int((snapshot.metadata or {}).get("step", 0)), 0),
            "values": values,
            "message_count": len(messages),
            "next": list(snapshot.next),
            "interrupt": interrupt.to_dict() if interrupt else None,
            "created_at": datetime.datetime.fromisoformat(snapshot.created_at).timestamp(),
        }

    async def history(
        self,
        thread_id: str,
        *,
        limit: int = 10,
        before: str | None = None,
        metadata: dict[str, Any] | None = None,
        checkpoint_id: str | None = None,
    ) -> list[StateSnapshot]:
        found = []
        async for snapshot in self.graph.aget_state_history(
            run_config(thread_id, checkpoint_id=checkpoint_id),
            filter=metadata or None,
            before=run_config(thread_id, checkpoint_id=before) if before else None,
            limit=limit,
        ):
            found.append(snapshot)
        return found

    async def update_state(
        self, thread_id: str, values: Any, *, as_node: str | None = None,
        checkpoint_id: str | None = None,
    ) -> RunnableConfig:  # fmt: skip
        try:
            return await self.graph.aupdate_state(
                run_config(thread_id, checkpoint_id=checkpoint_id), values, as_node=as_node
            )
        except (ValueError, KeyError) as exc:  # LangGraph: an unknown node, an ambiguous update
            raise InvalidInputError(f"the state update was refused: {exc}") from None

    async def delete_run(self, run_id: str) -> None:
        """Discard the checkpoints a run wrote (its steps are rolled back)."""
        if self.saver is not None:
            with contextlib.suppress(NotImplementedError):  # LangGraph's in-memory saver
                await self.saver.adelete_for_runs([run_id])

    async def delete_thread(self, thread_id: str) -> None:
        if self.saver is not None:
            await self.saver.adelete_thread(thread_id)

    # -- describing ------------------------------------------------------------------

    def drawing(self, *, xray: int | bool = False) -> dict[str, Any]:
        """Nodes and edges, without the classes behind the nodes (LangGraph's internals)."""
        drawing: dict[str, Any] = jsonable(self.graph.get_graph(xray=xray).to_json())
        for node in drawing["nodes"]:
            if isinstance(node.get("data"), dict):
                node["data"].pop("id", None)
        return drawing

    def schemas(self) -> dict[str, Any]:
        graph = self.graph
        context = getattr(graph, "get_context_jsonschema", None)
        return {
            "input_schema": graph.get_input_jsonschema(),
            "output_schema": graph.get_output_jsonschema(),
            "state_schema": _state_schema(graph),
            "config_schema": {},  # configurable keys: LangGraph 1.x graphs use `context`
            "context_schema": context() if callable(context) else None,
        }

    def get_graph(self) -> dict[str, Any]:
        """The drawing in agentflow's form (/v1/graph): nodes, edges, a Mermaid chart."""
        drawn = self.graph.get_graph()
        kinds = {"__start__": "start", "__end__": "end"}
        nodes = [{"id": n, "type": kinds.get(n, "node")} for n in drawn.nodes]
        edges = [
            {"source": e.source, "target": e.target, "conditional": bool(e.conditional)}
            for e in drawn.edges
        ]
        return {"name": self.name, "state": "LangGraph", "nodes": nodes, "edges": edges,
                "mermaid": drawn.draw_mermaid()}  # fmt: skip

    def node_names(self) -> list[str]:
        return [name for name in self.graph.nodes if not name.startswith("__")]


async def _traced(
    graph: Pregel[Any, Any, Any, Any],
    request: LangGraphInput,
    config: RunnableConfig,
    modes: list[StreamMode],
    emit: Callable[[StreamEvent, dict[str, Any]], None],
) -> AsyncIterator[Any]:
    """The run's stream parts, from LangChain's callback events (each of which goes out as a
    TRACE event): the parts are the root run's `on_chain_stream` chunks."""
    root = str(config.get("run_id"))
    async for event in graph.astream_events(
        request.graph_input(), config, version="v2", stream_mode=modes,
        subgraphs=request.subgraphs, interrupt_before=request.interrupt_before,
        interrupt_after=request.interrupt_after,
    ):  # fmt: skip
        if "langsmith:hidden" in (event.get("tags") or ()):
            continue
        if event["event"] == "on_chain_stream" and event["run_id"] == root:
            yield event["data"]["chunk"]
        else:
            emit(StreamEvent.TRACE, {"lg": jsonable(event)})


def _state_schema(graph: Pregel[Any, Any, Any, Any]) -> dict[str, Any]:
    """The graph's channels as one model's fields, each typed as its channel's updates (as
    LangGraph's API describes a state)."""
    fields: dict[str, Any] = {}
    for name in graph.stream_channels_list:
        kind = getattr(graph.channels[name], "UpdateType", Any)
        try:
            create_model(name, __root__=(kind, None)).model_json_schema()
        except Exception:  # a type pydantic cannot describe: any value
            kind = Any
        fields[name] = (kind, None)
    schema: dict[str, Any] = create_model(graph.get_name("State"), **fields).model_json_schema()
    return schema


def _from_agentflow(input: Any) -> LangGraphInput:
    """agentflow's run input (messages, state fields, resume) for a LangGraph graph."""
    data = dict(input or {})
    if "resume" in data:
        return LangGraphInput(command={"resume": data["resume"]})
    values: dict[str, Any] = dict(data.get("state") or {})
    if data.get("messages"):
        values["messages"] = [jsonable(m) for m in data["messages"]]
    return LangGraphInput(input=values or None)


class AgentflowRun:
    """A run of a LangGraph graph through agentflow's own API (/v1, the playground): its
    input in agentflow's shape, its stream as agentflow's events (token deltas, each node's
    messages, the interrupt, the end) and its result with agentflow's messages and state."""

    def __init__(
        self, adapter: LangGraphAdapter, thread_id: str, run_id: str, on_event: EventSink | None
    ) -> None:
        self.adapter, self.thread_id, self.run_id = adapter, thread_id, run_id
        self.on_event = on_event
        self.added: list[Message] = []  # the run's new messages, its input first

    def emit(self, event: StreamEvent, **fields: Any) -> None:
        if self.on_event is not None:
            self.on_event(StreamChunk(event, self.thread_id, self.run_id, **fields))

    async def run(self, input: Any, config: dict[str, Any]) -> RunResult:
        request = _from_agentflow(input)
        self.added = [to_message(m) for m in (request.input or {}).get("messages", [])]

        def collect(chunk: StreamChunk) -> None:
            if chunk.event == StreamEvent.UPDATES:
                self._updates(chunk.data["lg"])
            elif chunk.event == StreamEvent.DELTA:
                self._delta(chunk.data["lg"])
            elif chunk.event == StreamEvent.METADATA:
                self.emit(StreamEvent.METADATA, data=chunk.data)

        wanted = {StreamEvent.UPDATES, StreamEvent.DELTA}
        native = await self.adapter.arun(request, config, on_event=collect, events=wanted)
        values = native.values or {}
        history = [to_message(m) for m in values.get("messages", []) if isinstance(m, Mapping)]
        interrupts = values.get("__interrupt__") or []
        interrupt = None
        if interrupts:
            node = native.next[0] if native.next else "graph"
            interrupt = Interrupt(node, interrupts[0].get("value"))
            self.emit(StreamEvent.INTERRUPT, node=node, data=interrupt.to_dict())
        status = "interrupted" if interrupt else "done"
        state = AgentState(context=history)
        result = RunResult(self.thread_id, self.run_id, status, self.added, state, Usage(),
                           interrupt=interrupt, next=list(native.next))  # fmt: skip
        result.usage = sum((m.usage for m in self.added if m.usage), Usage())
        self.emit(StreamEvent.STATE, state=state)
        self.emit(StreamEvent.END, data={"status": status, "usage": result.usage_report()})
        return result

    def _updates(self, update: Mapping[str, Any]) -> None:
        for node, change in update.items():
            if node.startswith("__") or not isinstance(change, Mapping):
                continue
            new = [to_message(m) for m in change.get("messages") or [] if isinstance(m, Mapping)]
            self.added += new
            for message in new:
                self.emit(StreamEvent.MESSAGE, node=node, message=message)
            self.emit(StreamEvent.NODE_END, node=node, data={"duration_ms": 0.0})
            fields = {k: v for k, v in change.items() if k != "messages"}
            self.emit(StreamEvent.UPDATES, node=node, data={"messages": new, "fields": fields})

    def _delta(self, part: Any) -> None:
        message, meta = part
        text = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(text, str) and text and "chunk" in str(message.get("type", "")).lower():
            node = meta.get("langgraph_node") if isinstance(meta, Mapping) else None
            data = {"delta": text, "message_id": message.get("id")}
            self.emit(StreamEvent.DELTA, node=node, data=data)
