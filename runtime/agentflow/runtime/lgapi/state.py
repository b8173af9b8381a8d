"""A thread's state as the LangGraph API shows it, for either kind of served graph: values,
next nodes, tasks (with their interrupts), checkpoint and parent, metadata."""

from __future__ import annotations

from typing import Any

from agentflow.errors import InvalidInputError
from agentflow.graph.compiled import CompiledGraph, StateSnapshot
from agentflow.graph.messages import Message
from agentflow.runtime.errors import ApiError
from agentflow.runtime.lgapi.convert import from_lc_message, jsonable
from agentflow.runtime.lgapi.frames import lg_values
from agentflow.runtime.lgapi.views import iso
from agentflow.runtime.loader import ServedGraph

__all__ = ["EMPTY_STATE", "history", "state_of", "update_state"]

HISTORY_PAGE = 1000  # checkpoints one storage read returns at most
EMPTY_STATE: dict[str, Any] = {
    "values": {}, "next": [], "tasks": [], "metadata": None, "created_at": None,
    "checkpoint": None, "parent_checkpoint": None, "interrupts": [], "checkpoint_id": None,
    "parent_checkpoint_id": None,
}  # fmt: skip


def _ref(thread_id: str, checkpoint_id: str | None, ns: str | None = "") -> dict[str, Any] | None:
    """A checkpoint's reference; `ns` None: the reference a client gave, which names none."""
    if checkpoint_id is None:
        return None
    ref = {"checkpoint_id": checkpoint_id, "thread_id": thread_id}
    return ref if ns is None else ref | {"checkpoint_ns": ns}


def _agentflow_view(snap: StateSnapshot, parent: str | None) -> dict[str, Any]:
    interrupts = []
    if snap.interrupt is not None:
        interrupts = [{"value": jsonable(snap.interrupt.value), "id": snap.checkpoint_id}]
    tasks = [
        {"id": f"{snap.checkpoint_id}:{node}", "name": node, "path": ["__pregel_pull", node],
         "error": None, "interrupts": interrupts if i == 0 else [], "checkpoint": None,
         "state": None}
        for i, node in enumerate(snap.next)
    ]  # fmt: skip
    return {
        "values": lg_values(snap.state),
        "next": list(snap.next),
        "tasks": tasks,
        "metadata": {"run_id": snap.run_id, "step": snap.step, "thread_id": snap.thread_id},
        "created_at": iso(snap.created_at),
        "checkpoint": _ref(snap.thread_id, snap.checkpoint_id),
        "parent_checkpoint": _ref(snap.thread_id, parent),
        "interrupts": interrupts,
        "checkpoint_id": snap.checkpoint_id,
        "parent_checkpoint_id": parent,
    }


def _interrupt(interrupt: Any) -> dict[str, Any]:
    """An interrupt in a state, as LangGraph's API shows it there: its value and id."""
    return {"value": jsonable(interrupt.value), "id": interrupt.id}


def langgraph_view(snapshot: Any, *, named: bool = False) -> dict[str, Any]:
    """A LangGraph StateSnapshot as its API sends it; `named`: the one a client asked for by
    its id, whose reference is the client's (no namespace)."""
    configurable = (snapshot.config or {}).get("configurable", {})
    parent = (snapshot.parent_config or {}).get("configurable") or {}
    thread_id = configurable.get("thread_id")
    tasks = [
        {"id": t.id, "name": t.name, "path": jsonable(t.path),
         "error": str(t.error) if t.error is not None else None,
         "interrupts": [_interrupt(i) for i in t.interrupts],
         "checkpoint": jsonable((t.state or {}).get("configurable")) if isinstance(t.state, dict)
         else None,
         "state": langgraph_view(t.state) if hasattr(t.state, "values") else None,
         "result": jsonable(t.result)}
        for t in snapshot.tasks
    ]  # fmt: skip
    interrupts = [i for t in tasks for i in t["interrupts"]]
    return {
        "values": jsonable(snapshot.values),
        "next": list(snapshot.next),
        "tasks": tasks,
        "metadata": jsonable(snapshot.metadata),
        "created_at": snapshot.created_at,
        "checkpoint": _ref(thread_id, configurable.get("checkpoint_id"),
                           None if named else configurable.get("checkpoint_ns", "")),
        "parent_checkpoint": _ref(thread_id, parent.get("checkpoint_id"),
                                  parent.get("checkpoint_ns", "")),
        "interrupts": interrupts,
        "checkpoint_id": configurable.get("checkpoint_id"),
        "parent_checkpoint_id": parent.get("checkpoint_id"),
    }  # fmt: skip


async def state_of(
    graph: ServedGraph, thread_id: str, checkpoint_id: str | None = None,
    *, subgraphs: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """The thread's latest state (or the one at `checkpoint_id`); EMPTY_STATE before any."""
    if not isinstance(graph, CompiledGraph):
        snapshot = await graph.state(thread_id, checkpoint_id, subgraphs=subgraphs)
        if checkpoint_id is None and snapshot.created_at is None:  # no checkpoint yet
            return dict(EMPTY_STATE)
        return langgraph_view(snapshot, named=checkpoint_id is not None)
    snap = await graph.aget_snapshot({"thread_id": thread_id}, checkpoint_id)
    if snap is None:
        if checkpoint_id is not None:
            raise ApiError(404, "checkpoint_not_found", "no such checkpoint on this thread")
        return dict(EMPTY_STATE)
    older = await _parents(graph, thread_id, snap.checkpoint_id)
    return _agentflow_view(snap, older)


async def _parents(graph: CompiledGraph, thread_id: str, checkpoint_id: str) -> str | None:
    checkpointer = graph.checkpointer
    assert checkpointer is not None
    before = await checkpointer.list_history(thread_id, limit=1, before=checkpoint_id)
    return before[0].checkpoint_id if before else None


async def history(
    graph: ServedGraph, thread_id: str, *, limit: int, before: str | None = None,
    metadata: dict[str, Any] | None = None, checkpoint_id: str | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """The thread's states, newest first."""
    if not isinstance(graph, CompiledGraph):
        found = await graph.history(
            thread_id, limit=limit, before=before, metadata=metadata, checkpoint_id=checkpoint_id
        )
        return [langgraph_view(s) for s in found]
    checkpointer = graph.checkpointer
    assert checkpointer is not None
    # one more than asked, for the last one's parent (the store's limit is its page size)
    checkpoints = await checkpointer.list_history(
        thread_id, limit=min(limit + 1, HISTORY_PAGE), before=before
    )
    views = []
    for i, checkpoint in enumerate(checkpoints[:limit]):
        snap = await graph.aget_snapshot({"thread_id": thread_id}, checkpoint.checkpoint_id)
        if snap is None:
            continue
        parent = checkpoints[i + 1].checkpoint_id if i + 1 < len(checkpoints) else None
        views.append(_agentflow_view(snap, parent))
    return views


async def update_state(
    graph: ServedGraph, thread_id: str, values: Any, *, user_id: str, as_node: str | None,
    checkpoint_id: str | None,
) -> dict[str, Any]:  # fmt: skip
    """Write `values` as if `as_node` returned them; the new checkpoint."""
    if isinstance(graph, CompiledGraph):
        if checkpoint_id is not None:
            raise ApiError(
                409, "not_supported",
                "an agentflow graph's state is updated at its latest checkpoint; leave out "
                "checkpoint_id",
            )  # fmt: skip
        if isinstance(values, dict | list):
            update = dict(values) if isinstance(values, dict) else {"messages": values}
        else:
            raise ApiError(
                422, "invalid_update",
                "an agentflow graph's state update is an object of its fields (and "
                "`messages`), or a list of messages",
            )  # fmt: skip
        try:
            lc = update.pop("messages", None) or []
            lc = lc if isinstance(lc, list) else [lc]
            messages = [Message.from_dict(from_lc_message(m)) for m in lc]
            identity = {"thread_id": thread_id, "user_id": user_id}
            snap = await graph.aupdate_state(identity, {"messages": messages, **update},
                                             as_node=as_node)  # fmt: skip
        except (ValueError, InvalidInputError) as exc:
            raise ApiError(422, "invalid_update", str(exc)) from None
        ref = _ref(thread_id, snap.checkpoint_id)
        return {"checkpoint": ref, "configurable": ref, "checkpoint_id": snap.checkpoint_id}
    config = await graph.update_state(
        thread_id, values, as_node=as_node, checkpoint_id=checkpoint_id
    )
    configurable = jsonable(config.get("configurable", {}))
    return {
        "checkpoint": configurable,
        "configurable": configurable,
        "checkpoint_id": configurable.get("checkpoint_id"),
    }
