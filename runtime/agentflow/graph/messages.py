"""Conversation messages: what nodes, models and checkpointers exchange."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from agentflow.graph.errors import InvalidInputError

Role = Literal["system", "user", "assistant", "tool"]
ROLES: frozenset[str] = frozenset({"system", "user", "assistant", "tool"})
ContentBlock = dict[str, Any]
Content = str | list[ContentBlock]


def new_id() -> str:
    """128 random bits as 32 hex characters (the shape of a uuid4 hex, at a third of the
    cost: ids are made several times per request)."""
    return os.urandom(16).hex()


@dataclass(slots=True)
class Usage:
    """Token counts reported by a model for one call (or summed over a run)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )

    def to_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Usage:
        """Counts as a provider reports them; one that is not a count (a string of words,
        a list, an infinite or negative number) counts as 0 instead of failing the call."""
        return cls(
            prompt_tokens=token_count(data.get("prompt_tokens")),
            completion_tokens=token_count(data.get("completion_tokens")),
        )


def token_count(value: Any) -> int:
    """A reported token count as a non-negative int; 0 for anything else."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return 0
    return max(int(value), 0)


@dataclass(slots=True)
class ToolCall:
    """A model's request to run one tool; `arguments` is the decoded JSON object."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: "call_" + new_id()[:24])

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ToolCall:
        if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
            raise InvalidInputError("a tool call must be an object with a string 'name'")
        args = data.get("arguments") or {}
        if not isinstance(args, dict):
            raise InvalidInputError("tool call 'arguments' must be an object")
        if data.get("id"):
            return cls(name=data["name"], arguments=args, id=str(data["id"]))
        return cls(name=data["name"], arguments=args)


@dataclass(slots=True)
class Message:
    """One conversation message. `content` is a string or a list of content blocks."""

    role: Role
    content: Content = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    id: str = field(default_factory=new_id)
    usage: Usage | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)

    @classmethod
    def system(cls, content: Content, **kwargs: Any) -> Message:
        return cls(role="system", content=content, **kwargs)

    @classmethod
    def user(cls, content: Content, **kwargs: Any) -> Message:
        return cls(role="user", content=content, **kwargs)

    @classmethod
    def assistant(cls, content: Content = "", **kwargs: Any) -> Message:
        return cls(role="assistant", content=content, **kwargs)

    @classmethod
    def tool(cls, content: Content, *, tool_call_id: str, **kwargs: Any) -> Message:
        return cls(role="tool", content=content, tool_call_id=tool_call_id, **kwargs)

    @property
    def text(self) -> str:
        """The text of the message: the string, or the text blocks joined."""
        if isinstance(self.content, str):
            return self.content
        parts = [str(b.get("text", "")) for b in self.content if b.get("type") == "text"]
        return "".join(parts)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "role": self.role, "content": self.content}
        if self.tool_calls:
            data["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        if self.tool_call_id is not None:
            data["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            data["name"] = self.name
        if self.usage is not None:
            data["usage"] = self.usage.to_dict()
        if self.metadata:
            data["metadata"] = self.metadata
        data["created_at"] = self.created_at
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Message:
        """Build a message from a plain mapping, validating every field."""
        if not isinstance(data, Mapping):
            raise InvalidInputError(
                f"a message must be an object with 'role' and 'content', got {type(data).__name__}"
            )
        role = data.get("role")
        if role not in ROLES:
            raise InvalidInputError(f"message role must be one of {sorted(ROLES)}")
        content = data.get("content", "")
        if content is None:
            content = ""
        if not isinstance(content, str) and (
            not isinstance(content, list) or not all(isinstance(b, dict) for b in content)
        ):
            raise InvalidInputError(
                "message content must be a string or a list of content-block objects"
            )
        calls = data.get("tool_calls") or []
        if not isinstance(calls, list):
            raise InvalidInputError("message 'tool_calls' must be a list")
        metadata = data.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise InvalidInputError("message 'metadata' must be an object")
        usage = data.get("usage")
        if usage is not None and not isinstance(usage, Mapping):
            raise InvalidInputError("message 'usage' must be an object")
        stored_id = data.get("id")
        created = data.get("created_at")
        # A stored message brings its id and time: none is made only to be replaced (a
        # random id is a system call, and a conversation is loaded message by message).
        return cls(
            role=role,
            content=content,
            tool_calls=[ToolCall.from_dict(c) for c in calls],
            tool_call_id=_optional_str(data, "tool_call_id"),
            name=_optional_str(data, "name"),
            id=str(stored_id) if stored_id else new_id(),
            usage=Usage.from_dict(usage) if usage is not None else None,
            metadata=metadata,
            created_at=float(created) if isinstance(created, int | float) else time.time(),
        )


def _optional_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"message '{key}' must be a string")
    return value


def coerce_message(value: Message | Mapping[str, Any]) -> Message:
    """Accept a Message or a role/content mapping."""
    if isinstance(value, Message):
        return value
    return Message.from_dict(value)


def coerce_messages(values: Iterable[Message | Mapping[str, Any]] | Message) -> list[Message]:
    if isinstance(values, Message):
        return [values]
    if not isinstance(values, list | tuple):
        raise InvalidInputError(
            f"'messages' must be a list of messages, got {type(values).__name__}"
        )
    return [coerce_message(v) for v in values]
