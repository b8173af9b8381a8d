"""LangGraph graphs the LangGraph API tests serve (imported only with the langgraph extra)."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.store.base import BaseStore
from langgraph.types import interrupt


async def answer(state: MessagesState) -> dict[str, Any]:
    """Echoes the last message, token by token (a chat model that streams), and writes a
    custom stream part."""
    text = str(state["messages"][-1].content)
    get_stream_writer()({"progress": "answering"})
    if text.startswith("slow"):
        await asyncio.sleep(1.0)
    model = GenericFakeChatModel(messages=iter([AIMessage(content=f"echo: {text}")]))
    reply = await model.ainvoke(state["messages"])
    return {"messages": [reply]}


def ask(state: MessagesState) -> dict[str, Any]:
    got = interrupt({"question": "approve?"})
    return {"messages": [AIMessage(content=f"approved: {got}")]}


def _one_node(name: str, node: Any) -> Any:
    builder = StateGraph(MessagesState)
    builder.add_node(name, node)
    builder.add_edge(START, name)
    builder.add_edge(name, END)
    return builder.compile()


agent = _one_node("answer", answer)
approve = _one_node("ask", ask)


async def remember(state: MessagesState, *, store: BaseStore) -> dict[str, Any]:
    """Keeps each message in the store under ("notes",) and answers with all it keeps."""
    text = str(state["messages"][-1].content)
    await store.aput(("notes",), text, {"text": text})
    kept = sorted(item.key for item in await store.asearch(("notes",)))
    return {"messages": [AIMessage(content=", ".join(kept))]}


memory = _one_node("remember", remember)
