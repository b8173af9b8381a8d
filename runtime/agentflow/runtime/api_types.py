"""The HTTP API's bodies, declared once as msgspec types.

Request types are what the server decodes: decoding validates them (a wrong field is a 422
naming its JSON path, schemas.decode_body). Response and SSE event types are what the server
sends. The OpenAPI document's components are generated from these same classes
(openapi.py); tests hold real responses and events to them.

What a type cannot say is checked after decoding, in `schemas.parse_run_request`: the message
roles this server lets clients send and the graph's state fields (both also narrowed in the
served document), a `tool` message's `tool_call_id`, and `resume` naming a thread. Strings
must not hold NUL or lone UTF-16 surrogates; that is checked on the raw body before any type
is decoded (schemas.read_body), and stated in the document."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from agentflow.graph.storage import CURSOR_PATTERN, SortField, SortOrder, ThreadStatus

__all__ = [
    "CLIENT_TEXT",
    "MAX_CREATED_AT",
    "MAX_INT32",
    "MAX_JSON_DEPTH",
    "MAX_RECURSION_LIMIT",
    "NO_NUL",
    "STREAM_EVENTS",
    "THREAD_ID",
    "Checkpoint",
    "ClientMessage",
    "ClientToolCall",
    "ClientUsage",
    "DeleteResponse",
    "ErrorBody",
    "ErrorDetail",
    "GraphInfo",
    "Health",
    "History",
    "HistoryQuery",
    "Interrupt",
    "Message",
    "MessagePage",
    "MessageQuery",
    "OpenBody",
    "Run",
    "RunConfig",
    "RunCreate",
    "RunError",
    "RunInput",
    "RunList",
    "RunListQuery",
    "RunRequestBody",
    "RunResponse",
    "StopRequest",
    "StopResponse",
    "Thread",
    "ThreadList",
    "ThreadListQuery",
    "ThreadPatch",
    "ThreadSearch",
    "ThreadState",
    "Usage",
]

THREAD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
MAX_RECURSION_LIMIT = 10_000
MAX_JSON_DEPTH = 64  # far beyond any real message, state or metadata; far below recursion
MAX_INT32 = 2**31 - 1  # offsets are compared with 32-bit sequence numbers in Postgres
MAX_CREATED_AT = 1e12  # seconds since the epoch: year 33658
CLIENT_TEXT = "Strings (and keys) must not contain NUL or lone UTF-16 surrogates."
NO_NUL = "^[^\\x00]*$"  # lone surrogates cannot be stated in a pattern; see CLIENT_TEXT

REF = "#/components/schemas/{name}"
# Documented, not matched per string: read_body checks every string of a body at once.
Text = Annotated[str, Meta(extra_json_schema={"pattern": NO_NUL})]
ThreadId = Annotated[
    str,
    Meta(
        pattern=THREAD_ID.pattern,
        description="1-128 characters of letters, digits, '.', '_', ':' or '-'",
    ),
]
# Free-form data (metadata, state, resume): any JSON, its strings held to CLIENT_TEXT.
JsonValue = Annotated[Any, Meta(extra_json_schema={"$ref": REF.format(name="JsonValue")})]
JSON_VALUE_SCHEMA: dict[str, Any] = {
    "description": f"any JSON value. {CLIENT_TEXT}",
    "anyOf": [
        {"type": ["null", "boolean", "number"]},
        {"type": "string", "pattern": NO_NUL},
        {"type": "array", "items": {"$ref": REF.format(name="JsonValue")}},
        {"type": "object", "propertyNames": {"pattern": NO_NUL},
         "additionalProperties": {"$ref": REF.format(name="JsonValue")}},
    ],
}  # fmt: skip
JsonObject = dict[Text, JsonValue]
ContentBlock = Annotated[
    JsonObject,
    Meta(
        description='a content block, e.g. {"type": "text", "text": "..."}',
        extra_json_schema={
            "required": ["type"],
            "properties": {"type": {"type": "string", "pattern": NO_NUL}},
        },
    ),
]
# JSON Schema's "integer" counts 3.0 as one, msgspec's int does not: whole numbers in request
# bodies are numbers that are a multiple of 1, which both count alike.
Count = Annotated[float, Meta(ge=0, multiple_of=1)]
RecursionLimit = Annotated[float, Meta(ge=1, le=MAX_RECURSION_LIMIT, multiple_of=1)]


class _Body(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Request bodies refuse fields they do not declare (a typo is a 422, not ignored)."""


class OpenBody(Struct, omit_defaults=True):
    """Request objects whose other fields are kept by the graph (or ignored)."""


class _Answer(Struct, forbid_unknown_fields=True):
    """What the server sends. Fields beyond the declared ones are refused when a response
    is decoded as its type (the tests do so with real responses)."""


# -- requests ----------------------------------------------------------------------------------


class ClientToolCall(OpenBody):
    name: Text
    id: Text | None = None
    arguments: JsonObject | None = None


class ClientUsage(OpenBody):
    """Checked, then ignored: usage is counted from the model's replies only."""

    prompt_tokens: Count | None = None
    completion_tokens: Count | None = None
    total_tokens: Count | None = None


class ClientMessage(OpenBody):
    """A message as a client sends it. `system`, `assistant` and `tool` messages come from
    the graph unless agentflow.json's `client_roles` lets clients send them."""

    role: Literal["system", "user", "assistant", "tool"]
    content: Text | list[ContentBlock] | None = None
    id: Text | None = None
    tool_call_id: Text | None = None
    name: Text | None = None
    metadata: JsonObject | None = None
    created_at: Annotated[float, Meta(ge=0, le=MAX_CREATED_AT)] | None = None
    tool_calls: list[ClientToolCall] | None = None
    usage: ClientUsage | None = None


class RunConfig(_Body):
    recursion_limit: RecursionLimit | None = None


StreamMode = Literal["events", "messages", "updates", "values"]
STREAM_MODE_TEXT = (
    "what a stream sends (one mode or several): `events` (everything: node, delta, message, "
    "state; the default), `messages` (delta and message), `updates` (what each node "
    "returned), `values` (the state after each step). metadata, interrupt, error and end "
    "are always sent. /v1/graph/invoke ignores it."
)


class RunInput(_Body):
    """What a run is asked: the messages of this turn, and what else it needs. A client
    sends `user` messages; `system`, `assistant` and `tool` messages come from the graph and
    are refused (422) unless agentflow.json lists the role under `client_roles` (for example
    `"client_roles": ["user", "assistant"]` to seed a conversation). A `tool` message must
    carry the `tool_call_id` it answers. A message's `usage` is checked but ignored: token
    usage and cost are counted from the model's replies only. `resume` answers the thread's
    pending interrupt. `null` for an optional field is the same as leaving it out. Strings
    (and keys) must not contain NUL or lone UTF-16 surrogates; JSON nested more than 64
    levels deep is refused."""

    messages: list[ClientMessage] = []
    config: RunConfig | None = None
    stream_mode: Annotated[
        StreamMode | list[StreamMode] | None,
        Meta(description=STREAM_MODE_TEXT),
    ] = None
    resume: JsonValue | UnsetType = UNSET
    metadata: JsonObject | None = None
    state: Annotated[
        JsonObject | None,
        Meta(description="fields of the graph's state to set (422 for other names)"),
    ] = None


class RunRequestBody(RunInput):
    """A run of /v1/graph/invoke or /v1/graph/stream: on the thread named by `thread_id`
    (created if new), or on a new thread. `resume` needs the thread_id."""

    thread_id: ThreadId | None = None


class RunCreate(RunInput):
    """A background run on the thread in the path (created if new). `multitask_strategy`
    says what happens when the thread already has a run: `reject` it (409), `enqueue` this
    run after it, `interrupt` it (its completed steps stay) or `rollback` it (its steps are
    discarded), then start this one."""

    multitask_strategy: Literal["reject", "enqueue", "interrupt", "rollback"] = "reject"


class StopRequest(_Body):
    thread_id: ThreadId


class ThreadPatch(_Body):
    """Keys to set in the thread's metadata; a key set to `null` is removed, keys not named
    are kept (a shallow merge)."""

    metadata: JsonObject


EpochSeconds = Annotated[float, Meta(ge=0, le=MAX_CREATED_AT, description="epoch seconds")]
Cursor = Annotated[
    str,
    Meta(
        extra_json_schema={"pattern": f"^$|{CURSOR_PATTERN}"},
        description="next_cursor of the previous page of the same search (null or empty: "
        "the first page)",
    ),
]


class ThreadSearch(_Body):
    """The caller's threads that match every filter given, a page at a time. `metadata`
    matches threads whose metadata contains it (each key with an equal value; nested objects
    and arrays are contained in the stored ones). Time bounds are half-open:
    `created_after <= created_at < created_before`, the same for `updated_*`."""

    metadata: JsonObject | None = None
    status: ThreadStatus | None = None
    created_after: EpochSeconds | None = None
    created_before: EpochSeconds | None = None
    updated_after: EpochSeconds | None = None
    updated_before: EpochSeconds | None = None
    sort_by: SortField = "updated_at"
    sort_order: SortOrder = "desc"
    limit: Annotated[float, Meta(ge=1, le=100, multiple_of=1, description="page size")] = 20
    cursor: Cursor | None = None


class _Query(Struct):
    """Query parameters; others (a cache buster) are ignored."""


class ThreadListQuery(_Query):
    limit: Annotated[int, Meta(ge=1, le=100, description="page size")] = 20
    # The form is documented; storage checks it (422 "invalid cursor": cursors are opaque).
    cursor: Annotated[
        str,
        Meta(
            extra_json_schema={"pattern": f"^$|{CURSOR_PATTERN}"},
            description="next_cursor of the previous page",
        ),
    ] = ""


class MessageQuery(_Query):
    offset: Annotated[int, Meta(ge=0, le=MAX_INT32, description="position to start at")] = 0
    limit: Annotated[int, Meta(ge=1, le=500, description="page size")] = 50


class RunListQuery(_Query):
    limit: Annotated[int, Meta(ge=1, le=100, description="page size")] = 20
    before: Annotated[Text, Meta(description="next_cursor of the previous page")] = ""


class HistoryQuery(_Query):
    limit: Annotated[int, Meta(ge=1, le=100, description="page size")] = 20
    before: Annotated[Text, Meta(description="next_cursor of the previous page")] = ""


# -- responses ---------------------------------------------------------------------------------


class Usage(_Answer):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class RunUsage(Usage):
    by_model: dict[str, Usage] = {}


class ToolCall(_Answer):
    id: str
    name: str
    arguments: dict[str, Any]


class Message(_Answer, omit_defaults=True):
    id: str
    role: Literal["system", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]]
    created_at: float
    tool_calls: list[ToolCall] = []
    tool_call_id: str | None = None
    name: str | None = None
    usage: Usage | None = None
    metadata: dict[str, Any] = {}


class Interrupt(_Answer):
    """Where the run paused, what it asked, and the answers given so far (a node that
    interrupts more than once)."""

    node: str
    value: Any
    when: Literal["before", "during", "after"]
    resume_values: list[Any] = []


class RunResponse(_Answer):
    thread_id: str
    run_id: str
    status: Literal["done", "interrupted"]
    messages: list[Message]
    state: dict[str, Any]
    usage: RunUsage
    interrupt: Interrupt | None
    next: list[str]


RunStatus = Literal["pending", "running", "interrupted", "success", "error", "cancelled", "timeout"]


class RunError(_Answer):
    """Why a run failed: the HTTP status and error its /join answers."""

    status: int
    code: str
    message: str


class Run(_Answer):
    """A run as a resource. `result` (what /v1/graph/invoke answers) once it succeeded or
    paused; `error` once it failed."""

    run_id: str
    thread_id: str
    status: RunStatus
    multitask_strategy: str
    created_at: float
    started_at: float | None
    ended_at: float | None
    usage: RunUsage | None
    error: RunError | None
    interrupt: Interrupt | None
    result: RunResponse | None


class RunList(_Answer):
    runs: list[Run]
    next_cursor: Annotated[
        str | None, Meta(description="the `before` of the next page; null on the last")
    ]


class StopResponse(_Answer):
    thread_id: str
    stopped: bool


class Thread(_Answer):
    thread_id: str
    title: str | None
    metadata: dict[str, Any]
    status: str
    message_count: int
    running: bool
    created_at: float
    updated_at: float


class ThreadList(_Answer):
    threads: list[Thread]
    next_cursor: str | None


class DeleteResponse(_Answer):
    thread_id: str
    deleted: Literal[True]


class ThreadState(_Answer, omit_defaults=True):
    thread_id: str
    checkpoint_id: str | None
    status: str
    step: int
    values: dict[str, Any]
    message_count: int
    next: list[str]
    interrupt: Interrupt | None
    created_at: float | None = None  # absent before the first run


class MessagePage(_Answer):
    messages: list[Message]
    next_offset: int | None
    total: int


class Checkpoint(_Answer):
    checkpoint_id: str
    run_id: str
    step: int
    status: str
    source: str
    node: str | None
    next: list[str]
    message_count: int
    values: dict[str, Any]
    interrupt: Interrupt | None
    metadata: dict[str, Any]
    created_at: float


class History(_Answer):
    checkpoints: list[Checkpoint]
    next_cursor: str | None


class GraphNode(_Answer, omit_defaults=True):
    id: str
    type: Literal["start", "node", "end"]
    interrupt_before: bool = False
    interrupt_after: bool = False


class GraphEdge(_Answer, omit_defaults=True):
    """`conditional`: chosen by a router at run time; `label`: the router's value for it."""

    source: str
    target: str
    conditional: bool
    label: str | None = None


class GraphInfo(_Answer):
    name: str
    state: Annotated[str, Meta(description="the name of the graph's state class")]
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    mermaid: str


class Health(_Answer):
    status: Literal["ok", "degraded", "unavailable"]
    checks: dict[str, dict[str, Any]]


class Ping(_Answer):
    status: Literal["ok"]


class ErrorDetail(_Answer):
    loc: list[str | int]
    msg: str


class ErrorInfo(_Answer, omit_defaults=True):
    code: str
    message: str
    request_id: str
    details: list[ErrorDetail] = []


class ErrorBody(_Answer):
    """Every error response: {"error": {"code", "message", "request_id", "details"?}}."""

    error: ErrorInfo


# -- the events of a run's stream (text/event-stream; `data` is one of these) -----------------


class _Event(_Answer, omit_defaults=True):
    thread_id: str
    run_id: str


class MetadataEvent(_Event):
    """First: the ids of the thread and the run, and where to reconnect to this stream
    (with `Last-Event-ID`) if the connection drops."""

    stream_url: str

    name: ClassVar[str] = "metadata"


class NodeEvent(_Event):
    """A node started (`status: start`) or finished (`end`, with its duration)."""

    name: ClassVar[str] = "node"

    node: str
    status: Literal["start", "end"]
    duration_ms: float | None = None


class DeltaEvent(_Event, forbid_unknown_fields=False):
    """A piece of a reply as the model streams it, with what else the node's
    `emit_delta(data=...)` added."""

    name: ClassVar[str] = "delta"

    delta: str
    message_id: str
    node: str | None = None


class MessageEvent(_Event):
    """A finished message a node added."""

    name: ClassVar[str] = "message"

    message: Message
    node: str | None = None


class StateEvent(_Event):
    name: ClassVar[str] = "state"
    values: dict[str, Any]


class UpdatesEvent(_Event):
    """`stream_mode` "updates": what a node returned (its messages and state fields)."""

    name: ClassVar[str] = "updates"
    node: str
    update: dict[str, Any]


class ValuesEvent(_Event):
    """`stream_mode` "values": the state after a step: its fields and the conversation."""

    name: ClassVar[str] = "values"
    values: dict[str, Any]
    messages: list[Message]


class InterruptEvent(_Event):
    """The run paused for input; resume it with `resume` and its thread_id."""

    name: ClassVar[str] = "interrupt"

    node: str
    value: Any
    when: Literal["before", "during", "after"]
    resume_values: list[Any] = []


class ErrorEvent(_Event):
    """A node failed (`error_class`, `message`), or the run did (`code`, `message`;
    `resumable` when a retry continues it, after a server shutdown)."""

    name: ClassVar[str] = "error"

    message: str
    node: str | None = None
    error_class: str | None = None
    code: str | None = None
    request_id: str | None = None
    resumable: bool | None = None


class EndEvent(_Event):
    """Last: how the run ended."""

    name: ClassVar[str] = "end"

    status: Literal["done", "interrupted", "error", "cancelled"]
    usage: RunUsage | None = None


STREAM_EVENTS: tuple[type[_Event], ...] = (
    MetadataEvent, NodeEvent, DeltaEvent, MessageEvent, StateEvent, UpdatesEvent, ValuesEvent,
    InterruptEvent, ErrorEvent, EndEvent,
)  # fmt: skip


def _subclasses(kind: type[Any]) -> list[type[Any]]:
    found: list[type[Any]] = []
    for sub in kind.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def schema_components(types: list[Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """JSON Schemas for `types` with `$ref`s into the OpenAPI components."""
    refs, components = msgspec.json.schema_components(types, ref_template=REF)
    for kind in _subclasses(OpenBody):  # the fields they do not declare: any JSON
        if kind.__name__ in components:
            components[kind.__name__] |= {
                "propertyNames": {"pattern": NO_NUL},
                "additionalProperties": {"$ref": REF.format(name="JsonValue")},
            }
    return list(refs), {**components, "JsonValue": JSON_VALUE_SCHEMA}
