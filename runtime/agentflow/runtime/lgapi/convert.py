"""Values as the LangGraph API sends them: LangChain messages and LangGraph's own types as
plain JSON, and agentflow's messages in LangChain's message shape (what langgraph-sdk
clients and the chat UIs built on them read)."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import uuid
from collections.abc import Mapping
from typing import Any

from agentflow.graph.messages import Message, ToolCall, Usage, new_id, token_count

__all__ = ["LC_TYPES", "ROLES", "from_lc_message", "jsonable", "to_lc_message", "to_message"]

# agentflow role -> LangChain message type, and back
LC_TYPES = {"user": "human", "assistant": "ai", "system": "system", "tool": "tool"}
ROLES = {lc: role for role, lc in LC_TYPES.items()} | {"user": "user", "assistant": "assistant"}
ROLES |= {"developer": "system", "function": "tool", "AIMessageChunk": "assistant"}


def jsonable(value: Any) -> Any:
    """`value` with LangChain/pydantic models, dataclasses (LangGraph's Interrupt, Send),
    tuples, sets, uuids and datetimes turned into JSON values; a LangChain message keeps its
    `type`."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, Message):
        return to_lc_message(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # pydantic v2: LangChain messages, documents
        return jsonable(dump())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def to_lc_message(message: Message) -> dict[str, Any]:
    """An agentflow message in LangChain's serialized shape."""
    out: dict[str, Any] = {
        "content": message.content,
        "additional_kwargs": {},
        "response_metadata": {},
        "type": LC_TYPES.get(message.role, message.role),
        "name": message.name,
        "id": message.id,
    }
    if message.role == "assistant":
        out["tool_calls"] = [
            {"name": c.name, "args": c.arguments, "id": c.id, "type": "tool_call"}
            for c in message.tool_calls
        ]
        out["invalid_tool_calls"] = []
        usage = message.usage
        out["usage_metadata"] = (
            {
                "input_tokens": usage.prompt_tokens,
                "output_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
            }
            if usage is not None
            else None
        )
    if message.role == "tool":
        out["tool_call_id"] = message.tool_call_id
        out["status"] = message.metadata.get("status", "success")
    return out


def to_message(data: Mapping[str, Any]) -> Message:
    """A LangChain message (as `jsonable` gives it) as an agentflow message."""
    fields = from_lc_message(data)
    calls = [
        ToolCall(str(c.get("name")), dict(c.get("args") or {}), str(c.get("id") or new_id()))
        for c in data.get("tool_calls") or ()
        if isinstance(c, Mapping)
    ]
    usage = data.get("usage_metadata")
    return Message(
        role=fields["role"],
        content=_content(fields["content"]),
        tool_calls=calls,
        tool_call_id=fields.get("tool_call_id"),
        name=fields.get("name"),
        id=str(fields.get("id") or new_id()),
        usage=Usage(token_count(usage.get("input_tokens")), token_count(usage.get("output_tokens")))
        if isinstance(usage, Mapping)
        else None,
    )


def _content(content: Any) -> Any:
    return content if isinstance(content, str | list) else str(content)


def from_lc_message(data: Any) -> dict[str, Any]:
    """A message as a LangGraph client sends it (`{"type": "human", ...}`, `{"role": "user",
    ...}`, or a bare string) in agentflow's message shape (role, content, ...)."""
    if isinstance(data, str):
        return {"role": "user", "content": data}
    if not isinstance(data, Mapping):
        raise ValueError("a message must be an object or a string")
    kind = data.get("role") or data.get("type") or "human"
    role = ROLES.get(str(kind))
    if role is None:
        raise ValueError(f"unknown message type {kind!r}")
    out: dict[str, Any] = {"role": role, "content": data.get("content", "")}
    for key in ("id", "name", "tool_call_id"):
        if data.get(key) is not None:
            out[key] = data[key]
    return out
