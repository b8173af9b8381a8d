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

__all__ = ["Call", "Endpoint", "Header", "path_matches", "path_names", "routes"]

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
    response: type[Any] | None = None
    events: tuple[type[Any], ...] = ()  # a text/event-stream's events
    media_type: str = "application/json"
    status: int = 200  # of a success
    errors: Sequence[str] = ()
    headers: Sequence[Header] = ()
    langgraph: bool = False  # a route of the LangGraph API: runs any served graph

    def route(self) -> Route:
        endpoint = self

        async def serve(request: Request) -> Response:
            rt = runtime(request)
            user_id = ""
            if endpoint.auth:
                rt, user_id = await current_user(request)
            if endpoint.graph:
                require_graph(rt, agentflow=not endpoint.langgraph)
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


def routes(endpoints: Sequence[Endpoint]) -> list[Route]:
    """The table's routes. A path named without parameters wins over a template that also
    matches it (`/v1/threads/search` is not the thread "search"): such routes come first, and
    a method they do not serve there is a 405, never the template's route."""
    literal = [e for e in endpoints if not path_names(e.path)]
    templated = [e for e in endpoints if path_names(e.path)]
    shadowed = {e.path for e in literal if any(path_matches(t.path, e.path) for t in templated)}
    return [
        *(endpoint.route() for endpoint in literal),
        *(
            Route(p, _not_served_here, methods=ALL_METHODS, include_in_schema=False)
            for p in sorted(shadowed)
        ),
        *(endpoint.route() for endpoint in templated),
    ]


async def _not_served_here(request: Request) -> Response:
    raise HTTPException(405)
