"""A row of the route table, and the one wrapper that gives each handler what its row
promises.

A row names its method and path, whether it authenticates (401, and the rate limits: 429),
whether it runs the graph (503 while the graph cannot load), the types of its body and query
(decoded and validated before the handler runs: 400/413/415/422), what it answers (a type,
or the events of a stream) and the errors particular to it. The same row produces the
route's OpenAPI operation (openapi.py), so what the document says is what the server does."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agentflow.runtime.publisher import ApiJSONResponse
from agentflow.runtime.schemas import decode_body, decode_query, path_value, read_body
from agentflow.runtime.state import AppRuntime, current_user, require_graph, runtime

__all__ = ["Call", "Endpoint", "Header", "literal_segments", "path_matches", "path_names", "routes"]

B = TypeVar("B")
Q = TypeVar("Q")
# name, description, JSON Schema of its value
Header = tuple[str, str, dict[str, Any]]
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"]


@dataclass(frozen=True, slots=True)
class Call(Generic[B, Q]):
    """What a handler receives: the runtime, the authenticated user (empty on routes
    without auth), the decoded body and query (None when the row declares none), and the
    checked path parameters."""

    request: Request
    rt: AppRuntime
    user_id: str
    body: B
    query: Q
    path: dict[str, str]


Handler = Callable[[Call[Any, Any]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    auth: bool = True
    graph: bool = False
    body: type[Any] | None = None
    query: type[Any] | None = None
    response: Any = None  # a type, a type | None (null when absent), or str
    events: tuple[type[Any], ...] = ()  # a text/event-stream's events
    media_type: str = "application/json"
    status: int = 200  # of a success
    errors: Sequence[str] = ()
    headers: Sequence[Header] = ()

    def route(self) -> Route:
        endpoint = self

        async def serve(request: Request) -> Response:
            rt = runtime(request)
            user_id = ""
            if endpoint.auth:
                rt, user_id = await current_user(request)
            if endpoint.graph:
                require_graph(rt)
            path = {name: path_value(request, name) for name in request.path_params}
            query = decode_query(request, endpoint.query) if endpoint.query else None
            body = None
            if endpoint.body is not None:
                raw = await read_body(request, rt.settings.max_body_bytes)
                body = decode_body(raw, endpoint.body)
            answer = await endpoint.handler(Call(request, rt, user_id, body, query, path))
            return answer if isinstance(answer, Response) else ApiJSONResponse(answer)

        return Route(self.path, serve, methods=[self.method], include_in_schema=False)


def path_names(path: str) -> list[str]:
    return re.findall(r"{(\w+)}", path)


def path_matches(template: str, path: str) -> bool:
    """Whether `path` is an instance of the route `template` (a parameter is one segment)."""
    pattern = re.escape(template)
    for name in path_names(template):
        pattern = pattern.replace(re.escape("{" + name + "}"), "[^/]+")
    return re.fullmatch(pattern, path) is not None


def literal_segments(path: str) -> int:
    return sum(1 for part in path.split("/") if part and not part.startswith("{"))


def routes(endpoints: Sequence[Endpoint]) -> list[Route]:
    """The table's routes. Of two paths that both match a request, the one with more literal
    segments wins (`/v1/threads/search` is not the thread "search", `.../runs/wait` is not
    the run "wait"): routes come most specific first, and a method such a path does not
    serve is a 405 there, never the less specific route's."""
    found: list[Route] = []
    for count in sorted({literal_segments(e.path) for e in endpoints}, reverse=True):
        rows = [e for e in endpoints if literal_segments(e.path) == count]
        found += [endpoint.route() for endpoint in rows]
        shadowing = {
            e.path
            for e in rows
            if any(t.path != e.path and path_matches(t.path, e.path) for t in endpoints)
        }
        found += [
            Route(p, _not_served_here, methods=ALL_METHODS, include_in_schema=False)
            for p in sorted(shadowing)
        ]
    return found


async def _not_served_here(request: Request) -> Response:
    raise HTTPException(405)
