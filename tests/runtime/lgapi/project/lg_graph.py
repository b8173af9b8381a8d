"""The LangGraph graphs of the conformance tests, served as-is by `langgraph dev` and agentflow.

`agent` answers "echo: <text>" through a fake chat model of langchain_core, which streams the
answer word by word (so `messages-tuple` has chunks) without any network. A message
"sleep <seconds> ..." keeps the run busy that long first (for multitask and cancel); every
run writes one `custom` event. `approve` asks a question with `interrupt()` and answers with
what `Command(resume=...)` brought back.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import interrupt


def last_text(state: MessagesState) -> str:
    content = state["messages"][-1].content if state["messages"] else ""
    return content if isinstance(content, str) else str(content)


async def answer(state: MessagesState) -> dict[str, Any]:
    text = last_text(state)
    if text.startswith("sleep "):
        await asyncio.sleep(float(text.split()[1]))
    get_stream_writer()({"progress": "answering", "length": len(text)})
    model = GenericFakeChatModel(messages=iter([AIMessage(content=f"echo: {text}")]))
    reply = await model.ainvoke(state["messages"])
    return {"messages": [reply]}


async def ask(state: MessagesState) -> dict[str, Any]:
    decision = interrupt({"question": "approve?", "about": last_text(state)})
    return {"messages": [AIMessage(content=f"decision: {decision}")]}


def build_agent() -> Any:
    graph = StateGraph(MessagesState)
    graph.add_node("answer", answer)
    graph.add_edge(START, "answer")
    graph.add_edge("answer", END)
    return graph.compile()


def build_approve() -> Any:
    graph = StateGraph(MessagesState)
    graph.add_node("ask", ask)
    graph.add_edge(START, "ask")
    graph.add_edge("ask", END)
    return graph.compile()


agent = build_agent()
approve = build_approve()
