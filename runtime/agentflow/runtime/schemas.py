"""Request bodies: parsing with field-path errors that never echo the body, and the JSON
Schemas the OpenAPI document publishes for them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from agentflow.graph.errors import InvalidInputError
from agentflow.graph.messages import Message
from agentflow.runtime.errors import ApiError, validation_error

THREAD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
MAX_RECURSION_LIMIT = 10_000
RUN_KEYS = ("messages", "thread_id", "config", "resume", "metadata", "state")


@dataclass(slots=True)
class RunRequest:
    messages: list[Message] = field(default_factory=list)
    thread_id: str | None = None
    recursion_limit: int | None = None
    resume: Any = None
    has_resume: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)

    def graph_input(self) -> dict[str, Any] | None:
        data: dict[str, Any] = {}
        if self.messages:
            data["messages"] = self.messages
        if self.state:
            data["state"] = self.state
        if self.has_resume:
            data["resume"] = self.resume
        return data or None


async def read_json(request: Request, max_bytes: int) -> Any:
    """The request's JSON body, refusing bodies over `max_bytes` (413) and bad JSON (400)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise too_large(max_bytes)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/"):
        raise ApiError(
            415, "unsupported_media_type", "send the body as JSON (Content-Type: application/json)"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise too_large(max_bytes)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise ApiError(400, "invalid_json", "the request body is empty; send a JSON object")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ApiError(
            400,
            "invalid_json",
            f"the request body is not valid JSON (line {exc.lineno} column {exc.colno})",
        ) from None
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_json", "the request body is not UTF-8 JSON") from None


def too_large(max_bytes: int) -> ApiError:
    return ApiError(
        413, "body_too_large", f"the request body is larger than the limit of {max_bytes} bytes"
    )


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, int | float) else type(value).__name__
    )


def parse_run_request(body: Any, *, max_recursion_limit: int = MAX_RECURSION_LIMIT) -> RunRequest:
    """Validate an invoke/stream body; every problem is reported with its field path."""
    if not isinstance(body, dict):
        raise validation_error(
            [{"loc": ["body"], "msg": f"expected a JSON object, got {_type_name(body)}"}]
        )
    details: list[dict[str, Any]] = []

    def problem(loc: list[str | int], msg: str) -> None:
        details.append({"loc": ["body", *loc], "msg": msg})

    for key in body:
        if key not in RUN_KEYS:
            problem([key], f"unknown field; allowed fields are {', '.join(RUN_KEYS)}")
    request = RunRequest()
    messages = body.get("messages", [])
    if not isinstance(messages, list):
        problem(["messages"], f"expected an array of messages, got {_type_name(messages)}")
    else:
        for i, item in enumerate(messages):
            try:
                message = Message.from_dict(item)
            except InvalidInputError as exc:
                problem(["messages", i], str(exc))
                continue
            if message.role not in ("user", "system", "assistant", "tool"):
                problem(["messages", i, "role"], "unsupported role")
            request.messages.append(message)
    thread_id = body.get("thread_id")
    if thread_id is not None:
        if not isinstance(thread_id, str) or not THREAD_ID.match(thread_id):
            problem(
                ["thread_id"],
                "expected 1-128 characters of letters, digits, '.', '_', ':' or '-'",
            )
        else:
            request.thread_id = thread_id
    config = body.get("config")
    if config is not None:
        if not isinstance(config, dict):
            problem(["config"], f"expected an object, got {_type_name(config)}")
        else:
            for key in config:
                if key != "recursion_limit":
                    problem(["config", key], "unknown field; allowed: recursion_limit")
            limit = config.get("recursion_limit")
            if limit is not None:
                if isinstance(limit, bool) or not isinstance(limit, int):
                    problem(["config", "recursion_limit"], "expected an integer")
                elif not 1 <= limit <= max_recursion_limit:
                    problem(
                        ["config", "recursion_limit"],
                        f"must be between 1 and {max_recursion_limit}",
                    )
                else:
                    request.recursion_limit = limit
    for key in ("metadata", "state"):
        value = body.get(key)
        if value is not None and not isinstance(value, dict):
            problem([key], f"expected an object, got {_type_name(value)}")
        elif value is not None:
            setattr(request, key, value)
    if "resume" in body:
        request.has_resume = True
        request.resume = body["resume"]
    if details:
        raise validation_error(details)
    return request


def parse_stop_request(body: Any) -> str:
    thread_id = body.get("thread_id") if isinstance(body, dict) else None
    if not isinstance(thread_id, str) or not THREAD_ID.match(thread_id):
        raise validation_error([{"loc": ["body", "thread_id"], "msg": "a thread id is required"}])
    return thread_id


def query_int(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise validation_error(
            [{"loc": ["query", name], "msg": f"expected an integer between {low} and {high}"}]
        )
    return value


# -- JSON Schemas for the OpenAPI document ----------------------------------------------------

CONTENT_BLOCK = {"type": "object", "properties": {"type": {"type": "string"}}}
USAGE = {
    "type": "object",
    "properties": {
        "prompt_tokens": {"type": "integer"},
        "completion_tokens": {"type": "integer"},
        "total_tokens": {"type": "integer"},
    },
}
TOOL_CALL = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "arguments": {"type": "object"},
    },
}
MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "id": {"type": "string"},
        "role": {"type": "string", "enum": ["system", "user", "assistant", "tool"]},
        "content": {
            "oneOf": [{"type": "string"}, {"type": "array", "items": CONTENT_BLOCK}],
        },
        "tool_calls": {"type": "array", "items": TOOL_CALL},
        "tool_call_id": {"type": "string"},
        "name": {"type": "string"},
        "usage": USAGE,
        "metadata": {"type": "object"},
        "created_at": {"type": "number"},
    },
}
RUN_REQUEST = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "messages": {"type": "array", "items": MESSAGE},
        "thread_id": {"type": "string", "pattern": THREAD_ID.pattern},
        "config": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "recursion_limit": {
                    "type": "integer", "minimum": 1, "maximum": MAX_RECURSION_LIMIT,
                }
            },
        },
        "resume": {"description": "the answer to a pending interrupt"},
        "metadata": {"type": "object"},
        "state": {"type": "object", "description": "fields of the graph's state to set"},
    },
}  # fmt: skip
INTERRUPT = {
    "type": ["object", "null"],
    "properties": {
        "node": {"type": "string"},
        "value": {},
        "when": {"type": "string", "enum": ["before", "during", "after"]},
    },
}
RUN_RESPONSE = {
    "type": "object",
    "required": ["thread_id", "run_id", "status", "messages", "usage"],
    "properties": {
        "thread_id": {"type": "string"},
        "run_id": {"type": "string"},
        "status": {"type": "string", "enum": ["done", "interrupted"]},
        "messages": {"type": "array", "items": MESSAGE},
        "state": {"type": "object"},
        "usage": USAGE,
        "interrupt": INTERRUPT,
        "next": {"type": "array", "items": {"type": "string"}},
    },
}
ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "request_id"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "request_id": {"type": "string"},
                "details": {"type": "array", "items": {"type": "object"}},
            },
        }
    },
}
THREAD = {
    "type": "object",
    "properties": {
        "thread_id": {"type": "string"},
        "title": {"type": ["string", "null"]},
        "metadata": {"type": "object"},
        "status": {"type": "string"},
        "message_count": {"type": "integer"},
        "created_at": {"type": "number"},
        "updated_at": {"type": "number"},
    },
}
THREAD_LIST = {
    "type": "object",
    "properties": {
        "threads": {"type": "array", "items": THREAD},
        "next_cursor": {"type": ["string", "null"]},
    },
}
THREAD_STATE = {
    "type": "object",
    "properties": {
        "thread_id": {"type": "string"},
        "checkpoint_id": {"type": "string"},
        "status": {"type": "string"},
        "step": {"type": "integer"},
        "values": {"type": "object"},
        "message_count": {"type": "integer"},
        "next": {"type": "array", "items": {"type": "string"}},
        "interrupt": INTERRUPT,
    },
}
MESSAGE_PAGE = {
    "type": "object",
    "properties": {
        "messages": {"type": "array", "items": MESSAGE},
        "next_offset": {"type": ["integer", "null"]},
    },
}
CHECKPOINT = {
    "type": "object",
    "properties": {
        "checkpoint_id": {"type": "string"},
        "run_id": {"type": "string"},
        "step": {"type": "integer"},
        "status": {"type": "string"},
        "source": {"type": "string"},
        "node": {"type": ["string", "null"]},
        "next": {"type": "array", "items": {"type": "string"}},
        "message_count": {"type": "integer"},
        "values": {"type": "object"},
        "created_at": {"type": "number"},
    },
}
HISTORY = {
    "type": "object",
    "properties": {
        "checkpoints": {"type": "array", "items": CHECKPOINT},
        "next_cursor": {"type": ["string", "null"]},
    },
}
STOP_REQUEST = {
    "type": "object",
    "required": ["thread_id"],
    "properties": {"thread_id": {"type": "string"}},
}
STOP_RESPONSE = {
    "type": "object",
    "properties": {"thread_id": {"type": "string"}, "stopped": {"type": "boolean"}},
}
GRAPH_INFO = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "nodes": {"type": "array", "items": {"type": "object"}},
        "edges": {"type": "array", "items": {"type": "object"}},
        "mermaid": {"type": "string"},
    },
}
HEALTH = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded", "unavailable"]},
        "checks": {"type": "object"},
    },
}
