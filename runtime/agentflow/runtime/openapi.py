"""The OpenAPI 3.1 document, generated from the same endpoint table the app routes.

What the handlers can answer is what the document says: every status code a route can
return is listed (the ones every route of a kind shares are added here), query and header
parameters carry the bounds and patterns the handlers enforce, and request bodies the
constraints their parsers check (schemas.py)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from agentflow import __version__
from agentflow.runtime import schemas
from agentflow.runtime.settings import Settings

if TYPE_CHECKING:
    from agentflow.graph.compiled import CompiledGraph

Handler = Callable[[Request], Awaitable[Response]]
Schema = dict[str, Any]

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
BODY_ERRORS = ("400", "413", "415", "422")  # read_json and the body parsers
STORE_ERRORS = ("503",)  # every route that authenticates reads the state store


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    auth: bool = True
    # A JSON Schema, or one built from the settings and the graph when it is known (the
    # client roles and state fields of run requests).
    request: Schema | Callable[[Settings, CompiledGraph | None], Schema] | None = None
    response: Schema | None = None
    media_type: str = "application/json"
    errors: Sequence[str] = ()
    # name, JSON type or full schema, description
    query: Sequence[tuple[str, str | Schema, str]] = ()
    # name, description[, schema]
    headers: Sequence[tuple[str, str] | tuple[str, str, Schema]] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def build_document(
    endpoints: Sequence[Endpoint], settings: Settings, graph: CompiledGraph | None = None
) -> dict[str, Any]:
    """The document; with `graph`, run requests name the graph's state fields."""
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        operation: dict[str, Any] = {
            "operationId": _operation_id(endpoint),
            "summary": endpoint.summary,
            "tags": [endpoint.tag],
            "responses": _responses(endpoint, settings),
        }
        parameters = _parameters(endpoint)
        if parameters:
            operation["parameters"] = parameters
        request = endpoint.request
        if callable(request):
            request = request(settings, graph)
        if request is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": request}},
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
            '{"error": {"code", "message", "request_id"}}. ' + schemas.CLIENT_TEXT,
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Error": schemas.ERROR,
                "Message": schemas.MESSAGE,
                "JsonValue": schemas.JSON_VALUE,
            }
        },
    }
    if settings.auth is not None:
        document["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        }
    return document


def path_names(path: str) -> list[str]:
    return re.findall(r"{(\w+)}", path)


def _parameters(endpoint: Endpoint) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True,
         "schema": {"type": "string", "pattern": schemas.THREAD_ID.pattern}
         if name == "thread_id" else {"type": "string"}}
        for name in path_names(endpoint.path)
    ]  # fmt: skip
    for name, kind, text in endpoint.query:
        schema = {"type": kind} if isinstance(kind, str) else kind
        parameters.append(
            {"name": name, "in": "query", "required": False, "schema": schema,
             "description": text}
        )  # fmt: skip
    for header in endpoint.headers:
        name, text = header[0], header[1]
        schema = header[2] if len(header) == 3 else {"type": "string"}
        parameters.append(
            {"name": name, "in": "header", "required": False, "schema": schema,
             "description": text}
        )  # fmt: skip
    return parameters


def _responses(endpoint: Endpoint, settings: Settings) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "OK"}
    if endpoint.response is not None:
        ok["content"] = {endpoint.media_type: {"schema": endpoint.response}}
    responses: dict[str, Any] = {"200": ok}
    error_content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    codes = list(endpoint.errors)
    if endpoint.request is not None:
        codes += BODY_ERRORS
    if endpoint.query or path_names(endpoint.path):
        codes.append("422")  # bounds, and the text check of path and query values
    if endpoint.auth:
        codes += ["401", *STORE_ERRORS]
        if settings.rate_limits is not None:
            codes.append("429")
    for code in sorted(set(codes)):
        responses[code] = {
            "description": COMMON_ERRORS.get(code, "error"),
            "content": error_content,
        }
    return responses


def _operation_id(endpoint: Endpoint) -> str:
    words = re.sub(r"[{}]", "", endpoint.path).strip("/").replace("/", "_")
    return f"{endpoint.method.lower()}_{words or 'root'}"


def allowed_methods(endpoints: Sequence[Endpoint], path: str) -> list[str]:
    """Every method the table serves at `path` (HEAD with GET, as Starlette answers it), for
    the Allow header of a 405: the route that refused knows only its own method."""
    methods: set[str] = set()
    for endpoint in endpoints:
        if _path_pattern(endpoint.path).fullmatch(path):
            methods.add(endpoint.method)
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def _path_pattern(template: str) -> re.Pattern[str]:
    pattern = re.escape(template)
    for name in path_names(template):
        pattern = pattern.replace(re.escape("{" + name + "}"), "[^/]+")
    return re.compile(pattern)
