"""The OpenAPI 3.1 document, generated from the route table the app serves.

Bodies, query parameters, responses and stream events are the msgspec types of the table's
rows (api_types), turned into components here; what a row says about auth, bodies and rate
limits adds the errors every such route can answer. What depends on this server is narrowed
in: the message roles clients may send and, once the graph is loaded, its state fields."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from agentflow import __version__
from agentflow.runtime import api_types as api
from agentflow.runtime.endpoints import Endpoint, path_matches, path_names
from agentflow.runtime.schemas import ID_PARAMS, RunRules
from agentflow.runtime.settings import Settings

if TYPE_CHECKING:
    from agentflow.graph.compiled import CompiledGraph

__all__ = ["allowed_methods", "build_document"]

Schema = dict[str, Any]
REF = "#/components/schemas/{name}"
COMMON_ERRORS = {
    "400": "the body is not JSON, or a header is malformed",
    "401": "missing, invalid or expired credentials",
    "404": "not found (also another user's thread)",
    "409": "the thread has a run in progress, or the run was stopped",
    "413": "the body is larger than MAX_BODY_BYTES",
    "415": "the body is not JSON",
    "422": "the request failed validation; details list the field paths",
    "429": "over a rate limit; Retry-After says when to retry",
    "500": "the run failed (a node raised)",
    "502": "the model provider refused the server's credentials",
    "503": "the state store is unavailable, or the server is overloaded or shutting down",
    "504": "the run took longer than RUN_TIMEOUT",
}
BODY_ERRORS = ("400", "413", "415", "422")  # read_body and decode_body
STORE_ERRORS = ("503",)  # every route that authenticates reads the state store
GRAPH_ERRORS = ("503",)  # the graph cannot be loaded (under play)
STREAM_TEXT = (
    "A stream of Server-Sent Events, each `event: <name>`, `id: <n>` and one `data:` line "
    "of JSON, the schema named for its event; `: heartbeat` comments while the run is quiet. "
    "`metadata` comes first and `end` last."
)


def build_document(
    endpoints: Sequence[Endpoint], settings: Settings, graph: CompiledGraph | None = None
) -> dict[str, Any]:
    """The document; with `graph`, run requests name the graph's state fields."""
    types: list[Any] = [api.ErrorBody]
    for endpoint in endpoints:
        types += [t for t in (endpoint.body, endpoint.response) if _is_struct(t)]
        types += endpoint.events
    refs, components = api.schema_components(types)
    schema_of = dict(zip(types, refs, strict=True))
    _narrow(components, RunRules.of(settings, graph))
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        operation: dict[str, Any] = {
            "operationId": _operation_id(endpoint),
            "summary": endpoint.summary,
            "tags": [endpoint.tag],
            "responses": _responses(endpoint, settings, schema_of),
        }
        parameters = _parameters(endpoint)
        if parameters:
            operation["parameters"] = parameters
        if endpoint.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema_of[endpoint.body]}},
            }
        if endpoint.auth and settings.auth is not None:
            operation["security"] = [{"bearer": []}]
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": f"{settings.project_dir.name} agent API",
            "version": __version__,
            "description": "Served by agentflow. Errors share one shape: "
            '{"error": {"code", "message", "request_id"}}. ' + api.CLIENT_TEXT,
        },
        "paths": paths,
        "components": {"schemas": components},
    }
    if settings.auth is not None:
        document["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        }
    return document


def _is_struct(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, msgspec.Struct)


def _narrow(components: dict[str, Schema], rules: RunRules) -> None:
    """What this server's run requests may carry beyond their type: the roles clients may
    send, the graph's state fields (when known), and `resume` only with a thread."""
    message = components["ClientMessage"]["properties"]
    message["role"] = {"type": "string", "enum": list(rules.client_roles)}
    components["RunRequestBody"]["dependentSchemas"] = {
        "resume": {"required": ["thread_id"], "properties": {"thread_id": {"type": "string"}}}
    }
    if rules.state_fields is None:
        return
    for name in ("RunRequestBody", "RunCreate"):
        components[name]["properties"]["state"]["anyOf"] = [
            {"type": "object", "additionalProperties": False,
             "properties": {field: {"$ref": api.REF.format(name="JsonValue")}
                            for field in sorted(rules.state_fields)}},
            {"type": "null"},
        ]  # fmt: skip


def _parameters(endpoint: Endpoint) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True,
         "schema": {"type": "string", "pattern": api.THREAD_ID.pattern}
         if name in ID_PARAMS else {"type": "string"}}
        for name in path_names(endpoint.path)
    ]  # fmt: skip
    if endpoint.query is not None:
        query = msgspec.json.schema(endpoint.query)
        for name, schema in query["$defs"][endpoint.query.__name__]["properties"].items():
            description = schema.pop("description", None)
            parameter = {"name": name, "in": "query", "required": False, "schema": schema}
            if description:
                parameter["description"] = description
            parameters.append(parameter)
    for name, description, schema in endpoint.headers:
        parameters.append(
            {"name": name, "in": "header", "required": False, "schema": schema,
             "description": description}
        )  # fmt: skip
    return parameters


def _responses(
    endpoint: Endpoint, settings: Settings, schema_of: dict[Any, Schema]
) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "Accepted" if endpoint.status == 202 else "OK"}
    if endpoint.events:
        ok["content"] = {endpoint.media_type: {"schema": _event_stream(endpoint, schema_of)}}
    elif endpoint.response is str:
        ok["content"] = {endpoint.media_type: {"schema": {"type": "string"}}}
    elif endpoint.response is not None:
        ok["content"] = {endpoint.media_type: {"schema": schema_of[endpoint.response]}}
    elif endpoint.status != 204:  # a LangGraph API route: its shapes are LangGraph's
        ok["content"] = {endpoint.media_type: {"schema": {}}}
    responses: dict[str, Any] = {str(endpoint.status): ok}
    error_content = {"application/json": {"schema": schema_of[api.ErrorBody]}}
    codes = list(endpoint.errors)
    if endpoint.body is not None:
        codes += BODY_ERRORS
    if endpoint.query or path_names(endpoint.path):
        codes.append("422")  # bounds, and the text check of path and query values
    if endpoint.auth:
        codes += ["401", *STORE_ERRORS]
        if settings.rate_limits is not None:
            codes.append("429")
    if endpoint.graph:
        codes += GRAPH_ERRORS
    for code in sorted(set(codes)):
        responses[code] = {
            "description": COMMON_ERRORS.get(code, "error"),
            "content": error_content,
        }
    return responses


def _event_stream(endpoint: Endpoint, schema_of: dict[Any, Schema]) -> Schema:
    """One SSE event: its name, id and JSON data, as the event types state it."""
    return {
        "description": STREAM_TEXT,
        "oneOf": [
            {
                "type": "object",
                "required": ["event", "data"],
                "properties": {
                    "event": {"const": kind.name},
                    "id": {"type": "string"},
                    "data": {
                        "type": "string",
                        "contentMediaType": "application/json",
                        "contentSchema": schema_of[kind],
                    },
                },
            }
            for kind in endpoint.events
        ],
    }


def _operation_id(endpoint: Endpoint) -> str:
    words = re.sub(r"[{}]", "", endpoint.path).strip("/").replace("/", "_")
    return f"{endpoint.method.lower()}_{words or 'root'}"


def allowed_methods(endpoints: Sequence[Endpoint], path: str) -> list[str]:
    """Every method the table serves at `path` (HEAD with GET, as Starlette answers it), for
    the Allow header of a 405: the route that refused knows only its own method. A path the
    table names without parameters is served by its own rows only (endpoints.routes)."""
    served = [e for e in endpoints if e.path == path] or [
        e for e in endpoints if path_matches(e.path, path)
    ]
    methods = {endpoint.method for endpoint in served}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)
