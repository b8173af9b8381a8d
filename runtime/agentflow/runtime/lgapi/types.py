"""Request bodies and queries of the LangGraph API, as langgraph-sdk sends them. Fields the
SDK sends that agentflow does not act on (webhooks, feedback keys, tracing) are accepted and
ignored, as `langgraph dev` ignores what it does not support; what is acted on is checked."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from agentflow.runtime.api_types import JsonObject, JsonValue, OpenBody, Text, ThreadId

__all__ = [
    "AssistantSearch",
    "CancelQuery",
    "GraphQuery",
    "HistoryBody",
    "JoinStreamQuery",
    "LangGraphHistoryQuery",
    "LangGraphRunListQuery",
    "LangGraphThreadPatch",
    "LangGraphThreadSearch",
    "RunBody",
    "StateQuery",
    "StateUpdate",
    "ThreadCreate",
]  # fmt: skip

Limit = Annotated[float, Meta(ge=1, le=1000, multiple_of=1)]
Offset = Annotated[float, Meta(ge=0, multiple_of=1)]
StreamMode = Literal["values", "updates", "messages-tuple", "custom", "events"]
Strategy = Literal["reject", "enqueue", "interrupt", "rollback"]


class AssistantSearch(OpenBody):
    graph_id: Text | None = None
    name: Text | None = None
    metadata: JsonObject | None = None
    limit: Limit = 10
    offset: Offset = 0


class GraphQuery(Struct):
    xray: bool | Annotated[int, Meta(ge=0, le=100)] = False


class ThreadCreate(OpenBody):
    thread_id: ThreadId | None = None
    metadata: JsonObject | None = None
    if_exists: Literal["raise", "do_nothing"] = "raise"
    graph_id: Text | None = None


class LangGraphThreadPatch(OpenBody):
    metadata: JsonObject | None = None


class LangGraphThreadSearch(OpenBody):
    metadata: JsonObject | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None
    limit: Limit = 10
    offset: Offset = 0
    sort_by: Literal["thread_id", "created_at", "updated_at", "status"] | None = None
    sort_order: Literal["asc", "desc"] | None = None


class StateQuery(Struct):
    subgraphs: bool = False


class StateUpdate(OpenBody):
    values: JsonValue = None
    as_node: Text | None = None
    checkpoint_id: Text | None = None
    checkpoint: JsonObject | None = None


class HistoryBody(OpenBody):
    limit: Limit = 10
    before: JsonObject | str | None = None
    metadata: JsonObject | None = None
    checkpoint: JsonObject | None = None


class LangGraphHistoryQuery(Struct):
    limit: Annotated[int, Meta(ge=1, le=1000)] = 10
    before: Text | None = None


class RunBody(OpenBody):
    assistant_id: Text
    input: JsonValue = None
    command: JsonObject | None = None
    config: JsonObject | None = None
    context: JsonObject | None = None
    metadata: JsonObject | None = None
    stream_mode: StreamMode | list[StreamMode] = "values"
    stream_subgraphs: bool = False
    stream_resumable: bool = False
    checkpoint_id: Text | None = None
    checkpoint: JsonObject | None = None
    multitask_strategy: Strategy = "enqueue"
    if_not_exists: Literal["create", "reject"] = "reject"
    on_disconnect: Literal["cancel", "continue"] = "continue"
    on_completion: Literal["delete", "keep"] | None = None
    interrupt_before: Literal["*"] | list[Text] | None = None
    interrupt_after: Literal["*"] | list[Text] | None = None


class LangGraphRunListQuery(Struct):
    limit: Annotated[int, Meta(ge=1, le=100)] = 10
    offset: Annotated[int, Meta(ge=0, le=900)] = 0
    status: Text | None = None


class JoinStreamQuery(Struct):
    cancel_on_disconnect: bool = False
    stream_mode: Text | None = None


class CancelQuery(Struct):
    wait: bool = False
    action: Literal["interrupt", "rollback"] = "interrupt"
