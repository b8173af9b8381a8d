"""Input at the HTTP boundary: reading JSON bodies, one validator for the text of bodies,
paths and queries, the run request parsed with field-path errors that never echo the body,
and the JSON Schemas the OpenAPI document publishes for requests and responses.

What a client may put in a run request is the contract in `run_request_schema`: the parser
below enforces every constraint that schema states, and nothing it does not state except
what depends on the thread (a pending interrupt to resume) or on the graph (its state
fields, when the caller passes them in `RunRules`)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from agentflow.graph.errors import InvalidInputError
from agentflow.graph.messages import ROLES, Message
from agentflow.graph.state import MESSAGE_KEYS, field_names
from agentflow.graph.storage import CURSOR_PATTERN
from agentflow.runtime.errors import ApiError, validation_error

if TYPE_CHECKING:
    from agentflow.graph.compiled import CompiledGraph
    from agentflow.runtime.settings import Settings

THREAD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
MAX_RECURSION_LIMIT = 10_000
MAX_JSON_DEPTH = 64  # far beyond any real message, state or metadata; far below recursion
MAX_INT32 = 2**31 - 1  # offsets are compared with 32-bit sequence numbers in Postgres
RUN_KEYS = ("messages", "thread_id", "config", "resume", "metadata", "state")
MESSAGE_FIELDS = (
    "id", "role", "content", "tool_calls", "tool_call_id", "name", "usage", "metadata",
    "created_at",
)  # fmt: skip
USAGE_FIELDS = ("prompt_tokens", "completion_tokens", "total_tokens")
DEFAULT_CLIENT_ROLES: tuple[str, ...] = ("user",)
Loc = list[str | int]

# NUL, and UTF-16 surrogates: the JSON decoder joins valid pairs, so any left are lone.
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
# How either can reach a decoded body: only as a \u escape (raw bytes are invalid JSON/UTF-8).
_BAD_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


# -- one validator for client text: bodies, paths and queries ---------------------------------


def text_problem(text: str) -> str | None:
    """Why `text` cannot be accepted from a client, or None. NUL cannot be stored by
    Postgres and lone surrogates are not Unicode (no UTF-8 encoding exists for them)."""
    found = _BAD_TEXT.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "contains a NUL character (\\u0000); remove it"
    return (
        "contains a lone UTF-16 surrogate (\\ud800-\\udfff), which is not valid Unicode; "
        "send UTF-8 text"
    )


def check_text(text: str, loc: Loc) -> str:
    """`text` unchanged, or a 422 naming `loc` (e.g. ["path", "thread_id"])."""
    problem = text_problem(text)
    if problem is not None:
        raise validation_error([{"loc": loc, "msg": problem}])
    return text


def check_json(value: Any, loc: Loc) -> None:
    """Refuse a decoded JSON value nested deeper than MAX_JSON_DEPTH or holding bad text
    (in any string or key); walked without recursion, so no input can exhaust the stack."""
    stack: list[tuple[Any, tuple[str | int, ...], int]] = [(value, tuple(loc), 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            check_text(item, list(path))
            continue
        if isinstance(item, dict):
            children: Any = item.items()
        elif isinstance(item, list):
            children = enumerate(item)
        else:
            continue
        if depth >= MAX_JSON_DEPTH:
            raise validation_error(
                [{"loc": list(path), "msg": f"nested more than {MAX_JSON_DEPTH} levels deep"}]
            )
        for key, child in children:
            if isinstance(key, str):
                problem = text_problem(key)
                if problem is not None:
                    raise validation_error([{"loc": [*path, shown(key)], "msg": "key " + problem}])
            if isinstance(child, str | dict | list):
                stack.append((child, (*path, key), depth + 1))


def shown(text: str, limit: int = 64) -> str:
    """A client's key as it may appear in an error: printable, UTF-8-safe and short."""
    safe = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return safe if len(safe) <= limit else safe[: limit - 1] + "…"


def path_text(request: Request, name: str) -> str:
    """A path parameter, checked by the one text validator."""
    return check_text(str(request.path_params[name]), ["path", name])


def query_text(request: Request, name: str) -> str | None:
    """A query parameter (None when absent or empty), checked by the one text validator."""
    raw = request.query_params.get(name)
    if not raw:
        return None
    return check_text(raw, ["query", name])


def query_int(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:  # not digits, or more digits than Python converts
        value = low - 1
    if not low <= value <= high:
        raise validation_error(
            [{"loc": ["query", name], "msg": f"expected an integer between {low} and {high}"}]
        )
    return value


# -- JSON bodies --------------------------------------------------------------------------------


class _NumberOutOfRange(ValueError):
    pass


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NumberOutOfRange(text)
    return value


def _no_constant(name: str) -> Any:
    raise _NumberOutOfRange(name)


async def read_json(request: Request, max_bytes: int) -> Any:
    """The request's JSON body, refusing bodies over `max_bytes` (413), a non-JSON media
    type (415), bad JSON (400) and values no client may send (422: numbers beyond a double,
    nesting deeper than MAX_JSON_DEPTH, NUL or lone surrogates in any string)."""
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
    body = _decode(raw)
    if _BAD_ESCAPE.search(raw) is not None or raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH:
        check_json(body, ["body"])  # only bodies that could fail it are walked
    return body


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw, parse_float=_finite_float, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ApiError(
            400,
            "invalid_json",
            f"the request body is not valid JSON (line {exc.lineno} column {exc.colno})",
        ) from None
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_json", "the request body is not UTF-8 JSON") from None
    except _NumberOutOfRange:
        raise validation_error(
            [{"loc": ["body"], "msg": "a number is out of range: NaN, Infinity and numbers "
              "beyond ±1.8e308 are not accepted"}]
        ) from None  # fmt: skip
    except RecursionError:
        raise validation_error(
            [{"loc": ["body"], "msg": f"nested more than {MAX_JSON_DEPTH} levels deep"}]
        ) from None
    except ValueError:  # an integer of more digits than Python converts (4300)
        raise validation_error(
            [{"loc": ["body"], "msg": "an integer has too many digits"}]
        ) from None


def too_large(max_bytes: int) -> ApiError:
    return ApiError(
        413, "body_too_large", f"the request body is larger than the limit of {max_bytes} bytes"
    )


# -- run requests -------------------------------------------------------------------------------


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


@dataclass(frozen=True, slots=True)
class RunRules:
    """What this server accepts in a run request beyond its fixed shape.

    `client_roles`: the message roles a client may send (agentflow.json `client_roles`;
    `user` only by default). `state_fields`: the graph's settable state fields, checked
    before the run starts (None leaves the check to the graph, when the run starts)."""

    client_roles: tuple[str, ...] = DEFAULT_CLIENT_ROLES
    state_fields: frozenset[str] | None = None
    max_recursion_limit: int = MAX_RECURSION_LIMIT

    @classmethod
    def of(cls, settings: Settings, graph: CompiledGraph | None = None) -> RunRules:
        fields = None
        if graph is not None:
            fields = field_names(graph.state_cls) - set(MESSAGE_KEYS)
        return cls(client_roles=settings.client_roles, state_fields=fields)


DEFAULT_RULES = RunRules()


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, int | float) else type(value).__name__
    )


def _is_int(value: Any) -> bool:
    """A JSON integer: an int, or a float with no fraction (JSON Schema counts 3.0)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


Problem = Callable[[Loc, str], None]


def parse_run_request(body: Any, rules: RunRules = DEFAULT_RULES) -> RunRequest:
    """Validate an invoke/stream body; every problem is reported with its field path."""
    if not isinstance(body, dict):
        raise validation_error(
            [{"loc": ["body"], "msg": f"expected a JSON object, got {_type_name(body)}"}]
        )
    details: list[dict[str, Any]] = []

    def problem(loc: Loc, msg: str) -> None:
        details.append({"loc": ["body", *loc], "msg": msg})

    for key in body:
        if key not in RUN_KEYS:
            problem([shown(key)], f"unknown field; allowed fields are {', '.join(RUN_KEYS)}")
    request = RunRequest()
    messages = body.get("messages", [])
    if not isinstance(messages, list):
        problem(["messages"], f"expected an array of messages, got {_type_name(messages)}")
    else:
        for i, item in enumerate(messages):
            message = _client_message(item, ["messages", i], rules, problem)
            if message is not None:
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
    request.recursion_limit = _recursion_limit(body.get("config"), rules, problem)
    for key in ("metadata", "state"):
        value = body.get(key)
        if value is not None and not isinstance(value, dict):
            problem([key], f"expected an object, got {_type_name(value)}")
        elif value is not None:
            setattr(request, key, value)
    if rules.state_fields is not None:
        for key in request.state:
            if key not in rules.state_fields:
                known = ", ".join(sorted(rules.state_fields)) or "none"
                problem(
                    ["state", shown(key)], f"not a field of the graph's state (fields: {known})"
                )
    if "resume" in body:
        if request.thread_id is None and thread_id is None:
            problem(["resume"], "resume answers a thread's pending interrupt: send its thread_id")
        request.has_resume = True
        request.resume = body["resume"]
    if details:
        raise validation_error(details)
    return request


def _recursion_limit(config: Any, rules: RunRules, problem: Problem) -> int | None:
    if config is None:
        return None
    if not isinstance(config, dict):
        problem(["config"], f"expected an object, got {_type_name(config)}")
        return None
    for key in config:
        if key != "recursion_limit":
            problem(["config", shown(key)], "unknown field; allowed: recursion_limit")
    limit = config.get("recursion_limit")
    if limit is None:
        return None
    if not _is_int(limit):
        problem(["config", "recursion_limit"], "expected an integer")
    elif not 1 <= limit <= rules.max_recursion_limit:
        problem(["config", "recursion_limit"], f"must be between 1 and {rules.max_recursion_limit}")
    else:
        return int(limit)
    return None


def _client_message(item: Any, loc: Loc, rules: RunRules, problem: Problem) -> Message | None:
    """One message a client sent, or None after reporting what is wrong with it. A client
    sends only the roles `rules` allow; the `usage` it sends is checked, then dropped: token
    usage (and so cost) is counted from the model's replies only."""
    if not isinstance(item, dict):
        problem(loc, f"expected a message object, got {_type_name(item)}")
        return None
    found: list[tuple[Loc, str]] = []

    def wrong(key: str | int, msg: str, *more: str | int) -> None:
        found.append(([*loc, key, *more], msg))

    role = item.get("role")
    if not isinstance(role, str) or role not in ROLES:
        wrong("role", f"expected one of {', '.join(sorted(ROLES))}")
    elif role not in rules.client_roles:
        wrong(
            "role",
            f"clients may send {' and '.join(rules.client_roles)} messages; {role!r} messages "
            'come from the graph (agentflow.json "client_roles" can allow them)',
        )
    elif role == "tool" and not isinstance(item.get("tool_call_id"), str):
        wrong("tool_call_id", "a tool message needs the id of the call it answers")
    _check_content(item.get("content"), wrong)
    for key in ("id", "tool_call_id", "name"):
        value = item.get(key)
        if value is not None and not isinstance(value, str):
            wrong(key, f"expected a string, got {_type_name(value)}")
    metadata = item.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        wrong("metadata", f"expected an object, got {_type_name(metadata)}")
    created = item.get("created_at")
    if created is not None and not (_is_finite(created) and 0 <= created <= MAX_CREATED_AT):
        wrong("created_at", "expected a number of seconds since the epoch")
    _check_tool_calls(item.get("tool_calls"), wrong)
    _check_usage(item.get("usage"), wrong)
    for where, msg in found:
        problem(where, msg)
    if found:
        return None
    try:
        message = Message.from_dict(item)
    except InvalidInputError as exc:  # anything the checks above did not name
        problem(loc, str(exc))
        return None
    message.usage = None
    return message


Wrong = Callable[..., None]


def _is_finite(value: Any) -> bool:
    if not _is_number(value):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer beyond a double
        return False


def _check_content(content: Any, wrong: Wrong) -> None:
    if content is None or isinstance(content, str):
        return
    if not isinstance(content, list):
        wrong(
            "content", f"expected a string or an array of content blocks, got {_type_name(content)}"
        )
        return
    for j, block in enumerate(content):
        if not isinstance(block, dict):
            wrong("content", f"expected a content-block object, got {_type_name(block)}", j)
        elif not isinstance(block.get("type"), str):
            wrong("content", "a content block needs a string 'type', e.g. \"text\"", j, "type")


def _check_tool_calls(calls: Any, wrong: Wrong) -> None:
    if calls is None:
        return
    if not isinstance(calls, list):
        wrong("tool_calls", f"expected an array, got {_type_name(calls)}")
        return
    for j, call in enumerate(calls):
        if not isinstance(call, dict):
            wrong("tool_calls", f"expected a tool-call object, got {_type_name(call)}", j)
            continue
        if not isinstance(call.get("name"), str):
            wrong("tool_calls", "a tool call needs a string 'name'", j, "name")
        if call.get("id") is not None and not isinstance(call["id"], str):
            wrong("tool_calls", "expected a string", j, "id")
        arguments = call.get("arguments")
        if arguments is not None and not isinstance(arguments, dict):
            wrong("tool_calls", "expected an object", j, "arguments")


def _check_usage(usage: Any, wrong: Wrong) -> None:
    """Checked so a wrong shape is a 422 like any other field; its value is never used."""
    if usage is None:
        return
    if not isinstance(usage, dict):
        wrong("usage", f"expected an object, got {_type_name(usage)}")
        return
    for key in USAGE_FIELDS:
        value = usage.get(key)
        if value is not None and not (_is_int(value) and value >= 0):
            wrong("usage", "expected a non-negative integer", key)


def parse_stop_request(body: Any) -> str:
    unknown = [key for key in body if key != "thread_id"] if isinstance(body, dict) else []
    if unknown:
        raise validation_error(
            [{"loc": ["body", shown(key)], "msg": "unknown field; allowed: thread_id"}
             for key in unknown[:10]]
        )  # fmt: skip
    thread_id = body.get("thread_id") if isinstance(body, dict) else None
    if not isinstance(thread_id, str) or not THREAD_ID.match(thread_id):
        raise validation_error(
            [{"loc": ["body", "thread_id"],
              "msg": "expected 1-128 characters of letters, digits, '.', '_', ':' or '-'"}]
        )  # fmt: skip
    return thread_id


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
CLIENT_TEXT = "Strings (and keys) must not contain NUL or lone UTF-16 surrogates."
NO_NUL = "^[^\\x00]*$"  # lone surrogates cannot be stated in a pattern; see CLIENT_TEXT
TEXT = {"type": "string", "pattern": NO_NUL}
NULLABLE_TEXT = {"type": ["string", "null"], "pattern": NO_NUL}
ANY = {"$ref": "#/components/schemas/JsonValue"}
# Any JSON a client may send where the API takes free-form data (metadata, state, resume).
JSON_VALUE = {
    "description": f"any JSON value. {CLIENT_TEXT}",
    "anyOf": [
        {"type": ["null", "boolean", "number"]},
        TEXT,
        {"type": "array", "items": ANY},
        {"type": "object", "propertyNames": TEXT, "additionalProperties": ANY},
    ],
}
JSON_OBJECT = {"type": "object", "propertyNames": TEXT, "additionalProperties": ANY}
NULLABLE_OBJECT = {**JSON_OBJECT, "type": ["object", "null"]}
MAX_CREATED_AT = 1e12  # seconds since the epoch: year 33658
RUN_REQUEST_DESCRIPTION = (
    "The messages of this turn, and what else the run needs. A client sends `user` messages; "
    "`system`, `assistant` and `tool` messages come from the graph and are refused (422) "
    "unless agentflow.json lists the role under `client_roles` (for example "
    '`"client_roles": ["user", "assistant"]` to seed a conversation). A `tool` message '
    "must carry the `tool_call_id` it answers. A message's `usage` is checked but ignored: "
    "token usage and cost are counted from the model's replies only. `resume` answers the "
    "pending interrupt of the thread named by `thread_id`. `null` for an optional field is "
    f"the same as leaving it out. {CLIENT_TEXT} JSON nested more than {MAX_JSON_DEPTH} "
    "levels deep is refused."
)


def client_message_schema(roles: tuple[str, ...]) -> dict[str, Any]:
    """A message as a client may send it (the parser above enforces exactly this)."""
    count = {"type": ["integer", "null"], "minimum": 0}
    block = {**JSON_OBJECT, "required": ["type"], "properties": {"type": TEXT}}
    call = {
        **JSON_OBJECT,
        "required": ["name"],
        "properties": {"id": NULLABLE_TEXT, "name": TEXT, "arguments": NULLABLE_OBJECT},
    }
    return {
        **JSON_OBJECT,
        "required": ["role"],
        "properties": {
            "role": {"type": "string", "enum": list(roles)},
            "content": {"anyOf": [NULLABLE_TEXT, {"type": "array", "items": block}]},
            "id": NULLABLE_TEXT,
            "tool_call_id": NULLABLE_TEXT,
            "name": NULLABLE_TEXT,
            "metadata": NULLABLE_OBJECT,
            "created_at": {"type": ["number", "null"], "minimum": 0, "maximum": MAX_CREATED_AT},
            "tool_calls": {"type": ["array", "null"], "items": call},
            "usage": {
                **NULLABLE_OBJECT,
                "description": "ignored: usage is counted from the model's replies only",
                "properties": {key: count for key in USAGE_FIELDS},
            },
        },
    }


def run_request_for(settings: Settings, graph: CompiledGraph | None = None) -> dict[str, Any]:
    """The invoke/stream body the server with these settings (and graph) accepts."""
    return run_request_schema(RunRules.of(settings, graph))


def run_request_schema(rules: RunRules) -> dict[str, Any]:
    """The invoke/stream body: the roles a client may send are the enum of `role`; with
    the graph's state fields known, `state` lists them."""
    state: dict[str, Any] = {
        **NULLABLE_OBJECT,
        "description": "fields of the graph's state to set (422 for other names)",
    }
    if rules.state_fields is not None:
        state["additionalProperties"] = False
        state["properties"] = {name: ANY for name in sorted(rules.state_fields)}
    return {
        "type": "object",
        "additionalProperties": False,
        "description": RUN_REQUEST_DESCRIPTION,
        "properties": {
            "messages": {"type": "array", "items": client_message_schema(rules.client_roles)},
            "thread_id": {"type": ["string", "null"], "pattern": THREAD_ID.pattern},
            "config": {
                "type": ["object", "null"],
                "additionalProperties": False,
                "properties": {
                    "recursion_limit": {
                        "type": ["integer", "null"], "minimum": 1,
                        "maximum": rules.max_recursion_limit,
                    }
                },
            },
            "resume": {**ANY, "description": "the answer to the thread's pending interrupt"},
            "metadata": NULLABLE_OBJECT,
            "state": state,
        },
        "dependentSchemas": {
            "resume": {"required": ["thread_id"], "properties": {"thread_id": {"type": "string"}}}
        },
    }  # fmt: skip


RUN_REQUEST = run_request_schema(RunRules())
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
SSE_EVENTS = ["metadata", "message", "delta", "node", "state", "interrupt", "error", "end"]
SSE_EVENT = {
    "type": "object",
    "description": "one Server-Sent Event; `data` is a JSON object with thread_id and run_id",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": SSE_EVENTS},
        "id": {"type": "string"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"type": "object", "required": ["thread_id", "run_id"]},
        },
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
        "running": {"type": "boolean"},
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
        "checkpoint_id": {"type": ["string", "null"]},
        "status": {"type": "string"},
        "step": {"type": "integer"},
        "values": {"type": "object"},
        "message_count": {"type": "integer"},
        "next": {"type": "array", "items": {"type": "string"}},
        "interrupt": INTERRUPT,
        "created_at": {"type": "number"},
    },
}
MESSAGE_PAGE = {
    "type": "object",
    "properties": {
        "messages": {"type": "array", "items": MESSAGE},
        "next_offset": {"type": ["integer", "null"]},
        "total": {"type": "integer"},
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
        "interrupt": INTERRUPT,
        "metadata": {"type": "object"},
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
    "additionalProperties": False,
    "required": ["thread_id"],
    "properties": {"thread_id": {"type": "string", "pattern": THREAD_ID.pattern}},
}
STOP_RESPONSE = {
    "type": "object",
    "properties": {"thread_id": {"type": "string"}, "stopped": {"type": "boolean"}},
}
DELETED = {
    "type": "object",
    "properties": {"thread_id": {"type": "string"}, "deleted": {"const": True}},
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
# Query and header parameters: the bounds the handlers enforce.
THREAD_LIMIT = {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}
MESSAGE_LIMIT = {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}
OFFSET = {"type": "integer", "minimum": 0, "maximum": MAX_INT32, "default": 0}
CURSOR = {"type": "string", "pattern": f"^$|{CURSOR_PATTERN}"}  # empty: the first page
CHECKPOINT_ID = TEXT
IDEMPOTENCY_KEY = {"type": "string", "pattern": r"^[\x21-\x7e]{1,255}$"}
