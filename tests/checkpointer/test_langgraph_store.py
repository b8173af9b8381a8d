"""LangGraphStore: a LangGraph graph's nodes keep long-term memory in agentflow's item store,
per user, on every backend; LangGraph's own store API (sync and async) reads it back."""

from __future__ import annotations

import asyncio
from typing import Any, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.store.base import BaseStore

from agentflow.checkpointer import Checkpointer, LangGraphStore, item_store


class State(TypedDict):
    text: str
    seen: int


async def remember(state: State, *, store: BaseStore) -> dict[str, Any]:
    """Stores the text, then counts what it remembers with the same word."""
    await store.aput(("memories", "notes"), f"n{state['seen']}", {"text": state["text"]})
    found = await store.asearch(("memories",), filter={"text": state["text"]})
    return {"seen": len(found)}


async def test_a_langgraph_graph_keeps_memories_per_user(cp: Checkpointer) -> None:
    builder: StateGraph[State] = StateGraph(State)
    builder.add_node("remember", remember)
    builder.add_edge(START, "remember")
    builder.add_edge("remember", END)
    items = item_store(cp)
    alice = LangGraphStore(items, user_id="alice")
    graph = builder.compile(store=alice)

    assert (await graph.ainvoke({"text": "tea", "seen": 0}))["seen"] == 1
    assert (await graph.ainvoke({"text": "tea", "seen": 1}))["seen"] == 2
    bobs = builder.compile(store=alice.for_user("bob"))
    assert (await bobs.ainvoke({"text": "tea", "seen": 0}))["seen"] == 1  # alice's unseen

    # LangGraph's store API reads what the nodes wrote: async, and sync from a thread
    item = await alice.aget(("memories", "notes"), "n1")
    assert item is not None and item.value == {"text": "tea"} and item.key == "n1"
    assert await alice.alist_namespaces(prefix=("memories",)) == [("memories", "notes")]
    sync = await asyncio.to_thread(alice.search, ("memories",), limit=1)
    assert [found.key for found in sync] == ["n1"]  # the newest first
    await asyncio.to_thread(alice.delete, ("memories", "notes"), "n1")
    assert await alice.aget(("memories", "notes"), "n1") is None
    assert [i.key for i in await items.search("alice", ("memories",))] == ["n0"]
    assert [i.key for i in await items.search("bob", ("memories",))] == ["n0"]

    with pytest.raises(ValueError, match="operators"):
        await alice.asearch(("memories",), filter={"text": {"$ne": "tea"}})
