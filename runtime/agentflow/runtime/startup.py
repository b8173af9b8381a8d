"""Starting a server process, one way for every path (`agentflow api`, its workers, `play`):
the checks that would make every request fail, each with the code `agentflow doctor` reports
it under, and the parts a process builds once (`build_components`, `open_storage`).

`agentflow api` builds them before serving (its preflight) and one worker serves them; the
app's lifespan builds only what it was not given (each of several workers, `play`)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from agentflow.checkpointer import (
    Checkpointer,
    CheckpointerError,
    InMemoryCheckpointer,
    SqliteCheckpointer,
)
from agentflow.errors import StartupError as StartupError
from agentflow.graph.compiled import CompiledGraph
from agentflow.runtime.auth import Authenticator, build_authenticator
from agentflow.runtime.loader import ServedGraph, load_served_graph
from agentflow.runtime.settings import DEFAULT_GRAPH_NAME, CheckpointerSettings, Settings


@dataclass(frozen=True, slots=True)
class StartupProblem:
    """A reason the server must not start: its doctor code, what is wrong, and the fix."""

    code: str
    problem: str
    fix: str


def workers_problem(settings: Settings) -> StartupProblem | None:
    """Several workers only with a checkpointer they can all reach (AF-PERSIST-002)."""
    checkpointer, workers = settings.checkpointer, settings.workers
    if workers <= 1 or checkpointer.shareable:
        return None
    kind = checkpointer.kind
    return StartupProblem(
        "AF-PERSIST-002",
        f"{workers} workers cannot share the {kind} checkpointer: each worker would see "
        "different threads" + (" and SQLite allows one writer process" if kind == "sqlite" else ""),
        'use "checkpointer": "postgres" (with DATABASE_URL) for several workers, or run one '
        "worker (WEB_CONCURRENCY=1 or --workers 1)",
    )


def missing_variables(names: Iterable[str], environ: Mapping[str, str]) -> list[str]:
    return [name for name in names if not (environ.get(name) or "").strip()]


def required_env_problem(names: Iterable[str], environ: Mapping[str, str]) -> StartupProblem | None:
    """Every variable named in `required_env` is set to something (AF-ENV-002)."""
    missing = missing_variables(names, environ)
    if not missing:
        return None
    return StartupProblem(
        "AF-ENV-002",
        f"required environment variables are not set: {', '.join(missing)}",
        "set them in the environment or in the dotenv file named by 'env'",
    )


def sqlite_problem(checkpointer: CheckpointerSettings) -> StartupProblem | None:
    """The SQLite file (and its directory, for the WAL files) can be created and written
    (AF-PERSIST-003)."""
    if checkpointer.kind != "sqlite":
        return None
    path = checkpointer.path
    existing: Path = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        problem = f"cannot create {path}: {existing} is not a directory"
    elif not os.access(existing, os.W_OK | os.X_OK):
        problem = f"cannot write {path}: {existing} is read-only here"
    elif path.exists() and not (path.is_file() and os.access(path, os.W_OK)):
        problem = f"{path} exists but is not a writable file"
    else:
        return None
    fix = (
        "make it writable by the server's user, or choose another file with "
        '"checkpointer": {"kind": "sqlite", "path": "..."}'
    )
    return StartupProblem("AF-PERSIST-003", problem, fix)


def startup_problems(settings: Settings, environ: Mapping[str, str]) -> list[StartupProblem]:
    """The cheap checks that would make every request fail, in the order they are reported."""
    found = (
        workers_problem(settings),
        required_env_problem(settings.required_env, environ),
        sqlite_problem(settings.checkpointer),
    )
    return [problem for problem in found if problem is not None]


@dataclass(slots=True)
class Components:
    """What a server process builds once from its settings: the graph (the user's factory is
    called here, once), the authenticator, and the opened state store."""

    graph: ServedGraph  # the default graph (what /v1 serves)
    authenticate: Authenticator
    checkpointer: Checkpointer | None = None
    # Every served graph by name, agentflow or LangGraph (the default one among them).
    graphs: dict[str, ServedGraph] = field(default_factory=dict)


def build_components(settings: Settings, *, graph: CompiledGraph | None = None) -> Components:
    """Import the graphs (or take the given one as the only one) and build the
    authenticator."""
    authenticate = build_authenticator(settings.auth, settings.project_dir)
    if graph is not None:
        return Components(graph, authenticate, graphs={default_graph_name(settings): graph})
    graphs: dict[str, ServedGraph] = {}
    default: ServedGraph | None = None
    for name, spec in settings.graphs or ((DEFAULT_GRAPH_NAME, settings.graph),):
        named = "graph" if spec == settings.graph else f"graphs.{name}"
        key = f"agentflow.json: {named}"
        graphs[name] = load_served_graph(spec, settings.project_dir, key=key)
        if spec == settings.graph:
            default = graphs[name]
    assert default is not None  # settings.graphs names the default graph
    return Components(default, authenticate, graphs=graphs)


def default_graph_name(settings: Settings) -> str:
    """The name the default graph (`graph`) is served under."""
    named = (name for name, spec in settings.graphs if spec == settings.graph)
    return next(named, DEFAULT_GRAPH_NAME)


def checkpointer_for(settings: CheckpointerSettings) -> Checkpointer:
    if settings.kind == "memory":
        return InMemoryCheckpointer()
    if settings.kind == "sqlite":
        return SqliteCheckpointer(settings.path)
    from agentflow.checkpointer.postgres import PgCheckpointer

    assert settings.dsn is not None
    return PgCheckpointer(
        settings.dsn.get(),
        schema=settings.schema,
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        pgbouncer=settings.pgbouncer,
        redis_url=settings.redis_url.get() if settings.redis_url else None,
    )


async def open_storage(settings: CheckpointerSettings) -> Checkpointer:
    """Open the configured checkpointer, migrating its schema if it is behind, and check it
    answers; a `StartupError` (AF-NET-001) when it cannot be used."""
    checkpointer = checkpointer_for(settings)
    try:
        await checkpointer.setup()
        await checkpointer.ping()
    except CheckpointerError as exc:
        await checkpointer.close()
        raise StartupError(
            f"the {settings.kind} checkpointer is unusable: {exc}",
            code="AF-NET-001" if settings.kind == "postgres" else "AF-PERSIST-003",
            fix="run `agentflow doctor` for the details",
        ) from None
    except BaseException:
        await checkpointer.close()
        raise
    return checkpointer
