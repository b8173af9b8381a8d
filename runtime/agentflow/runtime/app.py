"""`create_app`: the Starlette app that loads the graph once and serves the HTTP API."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from agentflow.checkpointer import Checkpointer, CheckpointerError
from agentflow.graph.compiled import CompiledGraph
from agentflow.runtime import env
from agentflow.runtime.coordination import LocalCoordinator, RunCoordinator
from agentflow.runtime.endpoints import routes as table_routes
from agentflow.runtime.errors import ApiError, error_body, error_response
from agentflow.runtime.loader import ServedGraph
from agentflow.runtime.metrics import Metrics
from agentflow.runtime.middleware import RequestMiddleware
from agentflow.runtime.openapi import allowed_methods, build_document
from agentflow.runtime.ratelimit import build_limiter
from agentflow.runtime.resources import offline_models_warning
from agentflow.runtime.routes import ENDPOINTS
from agentflow.runtime.runs import RunService
from agentflow.runtime.schemas import RunRules
from agentflow.runtime.settings import ConfigError, Settings, export_dotenv
from agentflow.runtime.startup import (
    Components,
    StartupError,
    build_components,
    open_storage,
    required_env_problem,
)
from agentflow.runtime.state import AppRuntime, request_id
from agentflow.utils import configure_logging

logger = logging.getLogger("agentflow.runtime")
RELOAD_GRACE = 3.0  # seconds runs get when `play` reloads the app


def open_coordinator(checkpointer: Checkpointer, settings: Settings) -> RunCoordinator:
    if settings.checkpointer.kind != "postgres":
        return LocalCoordinator(checkpointer)
    from agentflow.checkpointer.postgres import PgCheckpointer
    from agentflow.runtime.coordination import SharedCoordinator

    assert isinstance(checkpointer, PgCheckpointer)
    return SharedCoordinator(checkpointer, lease_ttl=settings.run_lease_ttl)


class OriginOnlyCORS(CORSMiddleware):
    """CORS work only for requests that carry an Origin header (browsers); server-to-server
    calls skip it."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and any(k == b"origin" for k, _ in scope["headers"]):
            await super().__call__(scope, receive, send)
        else:
            await self.app(scope, receive, send)


PLAYGROUND_DIR = Path(__file__).parent / "playground"
PLAYGROUND_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'"
)


def playground_routes() -> list[BaseRoute]:
    """The local web playground: one page and its assets, shipped in the package."""

    async def page(request: Request) -> Response:
        return FileResponse(
            PLAYGROUND_DIR / "index.html",
            headers={"Content-Security-Policy": PLAYGROUND_CSP, "Cache-Control": "no-cache"},
        )

    return [
        Route("/playground", page, methods=["GET"]),
        Mount("/playground/assets", StaticFiles(directory=PLAYGROUND_DIR), name="playground"),
    ]


async def bind_graphs(
    graphs: dict[str, ServedGraph], checkpointer: Checkpointer
) -> dict[str, ServedGraph]:
    """Every served graph with its state in `checkpointer`'s store (a LangGraph graph's
    tables are created here)."""
    bound: dict[str, ServedGraph] = {}
    for name, graph in graphs.items():
        if isinstance(graph, CompiledGraph):
            bound[name] = graph.with_checkpointer(checkpointer)
        else:
            bound[name] = adapted = graph.with_checkpointer(checkpointer)
            await adapted.setup()
    return bound


def unavailable_graph() -> CompiledGraph:
    """Stands in for a graph that failed to import; routes refuse to run it (503)."""
    from agentflow.graph import END, START, StateGraph

    async def unavailable(state: Any) -> None:
        raise RuntimeError("the graph failed to load")

    builder = StateGraph()
    builder.add_node("unavailable", unavailable)
    builder.add_edge(START, "unavailable")
    builder.add_edge("unavailable", END)
    return builder.compile(name="unavailable")


def create_app(
    settings: Settings,
    *,
    graph: CompiledGraph | None = None,
    components: Components | None = None,
    config_error: ConfigError | None = None,
) -> Starlette:
    """Build the app. At startup the lifespan builds the components it was not given (the
    graph is imported, or the given one used, once) and binds the graph to the configured
    checkpointer. Under `play` (settings.playground) a graph that fails to import, a missing
    `required_env` variable or a `config_error` (agentflow.json does not load) keep the
    server up, answering 503 with the problem until it is fixed."""
    metrics = Metrics()
    document: dict[str, Any] = build_document(ENDPOINTS, settings)
    docs_paths: set[str] = set()
    lifespan = AppLifespan(settings, document, metrics, graph, components, config_error)
    return Starlette(
        routes=app_routes(settings, document, docs_paths),
        middleware=app_middleware(settings, metrics, docs_paths),
        lifespan=lifespan.run,
        exception_handlers={
            ApiError: api_error,
            HTTPException: http_error,
            CheckpointerError: storage_error,
        },
    )


def app_routes(
    settings: Settings, document: dict[str, Any], docs_paths: set[str]
) -> list[BaseRoute]:
    """The API's routes, the OpenAPI document and its pages (their paths are added to
    `docs_paths`), the playground under `play`, and `/`."""
    routes: list[BaseRoute] = [*table_routes(ENDPOINTS)]
    if settings.openapi_path:
        openapi_path = settings.openapi_path

        async def openapi(request: Request) -> Response:
            return JSONResponse(document)

        routes.append(Route(openapi_path, openapi, methods=["GET"]))
        if settings.docs_path or settings.redocs_path:
            from agentflow.runtime import docs

            # the stock UIs from package data, at a fingerprinted path (cached for good)
            assets = docs.assets_path()
            routes.append(Mount(assets, docs.AssetFiles(), name="docs-assets"))
            title = document["info"]["title"]

            def docs_route(path: str, build: docs.PageBuilder) -> Route:
                async def docs_page(request: Request) -> Response:
                    page, csp = build(openapi_path, title, assets)  # a fresh nonce per page
                    headers = {"Content-Security-Policy": csp, "Cache-Control": "no-store"}
                    return HTMLResponse(page, headers=headers)

                docs_paths.add(path)
                return Route(path, docs_page, methods=["GET"])

            if settings.docs_path:
                routes.append(docs_route(settings.docs_path, docs.swagger_page))
            if settings.redocs_path:
                routes.append(docs_route(settings.redocs_path, docs.redoc_page))

    if settings.playground:
        routes += playground_routes()
    home = "/playground" if settings.playground else settings.docs_path
    if home is not None:
        target = home

        async def root(request: Request) -> Response:
            return RedirectResponse(target, status_code=307)

        routes.append(Route("/", root, methods=["GET"], include_in_schema=False))
    return routes


@dataclass(slots=True)
class AppLifespan:
    """What the lifespan needs to build (or take) the components and serve them."""

    settings: Settings
    document: dict[str, Any]
    metrics: Metrics
    graph: CompiledGraph | None
    components: Components | None
    config_error: ConfigError | None

    @contextlib.asynccontextmanager
    async def run(self, app: Starlette) -> AsyncIterator[None]:
        settings, document, metrics = self.settings, self.document, self.metrics
        graph, components, config_error = self.graph, self.components, self.config_error
        configure_logging(settings.log_level, "json" if settings.log_format == "json" else "pretty")
        shown = json.loads(os.environ.get(env.SHOWN_WARNINGS) or "[]")
        for warning in settings.warnings:
            if warning not in shown:  # said once: the CLI printed it before serving
                logger.warning(warning)
        export_dotenv(settings)
        graph_error: str | None = None
        built = components
        try:
            if config_error is not None:
                raise config_error
            missing = settings.playground and required_env_problem(
                settings.required_env, os.environ
            )
            if missing:
                raise StartupError.of(missing)
            built = built or build_components(settings, graph=graph)
        except ConfigError as exc:
            if not settings.playground:
                raise
            # Under `play` a broken project keeps the server up, showing the error until the
            # file is fixed (the reloader restarts the app then).
            graph_error = str(exc)
            built = build_components(settings, graph=unavailable_graph())
            logger.error("the project failed to load: %s", graph_error)
        checkpointer = built.checkpointer or await open_storage(settings.checkpointer)
        graphs = await bind_graphs(built.graphs, checkpointer)
        # /v1 serves the default graph when it is an agentflow graph (LangGraph graphs are
        # served by the LangGraph API only); a stand-in refuses /v1 runs otherwise.
        default = next(n for n, g in built.graphs.items() if g is built.graph)
        v1_graph = graphs[default]  # what /v1 serves: the default graph, either kind
        agentflow_graph = v1_graph if isinstance(v1_graph, CompiledGraph) else None
        document.update(build_document(ENDPOINTS, settings, agentflow_graph))  # its state fields
        coordinator = open_coordinator(checkpointer, settings)
        runs = RunService(v1_graph, checkpointer, settings, metrics, coordinator, graphs)
        await coordinator.start(runs.stop_local)
        app.state.runtime = AppRuntime(
            settings=settings,
            graph=v1_graph,
            graphs=graphs,
            checkpointer=checkpointer,
            runs=runs,
            metrics=metrics,
            authenticate=built.authenticate,
            graph_error=graph_error,
            config_invalid=config_error is not None,
            limiter=build_limiter(settings, checkpointer),
            run_rules=RunRules.of(settings, agentflow_graph),
        )
        if graph_error is None:
            logger.info(
                "serving graph %s (%s checkpointer, %s mode)",
                settings.graph, settings.checkpointer.kind, settings.mode,
            )  # fmt: skip
            offline = agentflow_graph and offline_models_warning(
                agentflow_graph, production=settings.production
            )
            if offline:
                logger.warning(offline)
        from agentflow.runtime.shutdown import drain_on_signal
        from agentflow.runtime.watchdog import start_watchdog

        # Under `play` a reload (a SIGTERM from the reloader) must not wait long for runs.
        grace = (
            min(settings.shutdown_grace, RELOAD_GRACE)
            if settings.playground
            else (settings.shutdown_grace)
        )
        watchdog = start_watchdog()
        restore_signals = drain_on_signal(runs, grace)  # SIGTERM drains
        background = app.state.runtime.background
        background.start()
        try:
            yield
        finally:
            restore_signals()
            watchdog.stop()
            await runs.drain(grace)
            await background.close()
            await coordinator.close()
            await checkpointer.close()
            from agentflow.models import aclose_shared_clients

            await aclose_shared_clients()


async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc, request_id(request))


async def storage_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ValueError):  # a value the caller passed (cursor, limit): 422
        invalid = ApiError(422, "validation_error", str(exc))
        return error_response(invalid, request_id(request))
    logger.error("state store error: %s", exc, extra={"error_class": type(exc).__name__})
    error = ApiError(503, "storage_unavailable", "the state store is unavailable; retry shortly")
    return error_response(error, request_id(request))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    message = {404: "no such route", 405: "method not allowed on this route"}
    body = error_body(
        codes.get(exc.status_code, "http_error"),
        message.get(exc.status_code, str(exc.detail)),
        request_id(request),
    )
    headers = dict(exc.headers or {})
    methods = allowed_methods(ENDPOINTS, request.url.path) if exc.status_code == 405 else []
    if methods:  # every method of the path, not only the refusing route's
        headers["Allow"] = ", ".join(methods)
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


def app_middleware(settings: Settings, metrics: Metrics, docs_paths: set[str]) -> list[Middleware]:
    """Request ids, logs and metrics; CORS for browsers when origins are configured."""
    cors_origins = list(settings.origins)
    wildcard = "*" in cors_origins
    middleware = [
        Middleware(
            RequestMiddleware,
            metrics=metrics,
            production=settings.production,
            docs_paths=docs_paths,
        ),
    ]
    if cors_origins:
        middleware.append(
            Middleware(
                OriginOnlyCORS,
                allow_origins=["*"] if wildcard else cors_origins,
                allow_credentials=not wildcard,
                allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
                allow_headers=[
                    "Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID",
                    "Last-Event-ID",
                ],
                expose_headers=["X-Request-ID", "Idempotent-Replayed", "Retry-After",
                                "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"],
                max_age=600,
            )
        )  # fmt: skip
    return middleware
