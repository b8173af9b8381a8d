"""Persistence checks: durable state in production, workers that can share it, a writable
SQLite file, and (online) the Postgres schema version and connection budget."""

from __future__ import annotations

from agentflow.checkpointer import migrations
from agentflow.runtime import CheckpointerSettings, Settings, sqlite_problem, workers_problem
from agentflow_cli.checks import Check, Outcome, Skipped, problem_outcome
from agentflow_cli.checks.context import Context

# Connections kept free for psql, migrations and monitoring, on top of the superuser ones.
CONNECTION_MARGIN = 5


def _durable(ctx: Context) -> Outcome:
    assert ctx.settings is not None
    checkpointer = ctx.settings.checkpointer
    if checkpointer.kind == "memory":
        if ctx.production:
            return Outcome(
                "error",
                "the in-memory checkpointer keeps threads only inside one process: threads "
                "vanish after restart, and workers and replicas do not share them",
                'use "checkpointer": "postgres" with DATABASE_URL (or "sqlite" on one machine)',
            )
        return Outcome("ok", "memory: threads are lost on restart (fine for development)")
    if checkpointer.kind == "sqlite":
        return Outcome("ok", f"sqlite at {checkpointer.path}: survives restarts, one machine")
    return Outcome("ok", "postgres: durable and shared by every worker and replica")


def workers_outcome(settings: Settings) -> Outcome:
    problem = workers_problem(settings)
    if problem is not None:
        return problem_outcome(problem)
    workers, kind = settings.workers, settings.checkpointer.kind
    return Outcome("ok", f"{workers} worker{'s' * (workers != 1)}, {kind} checkpointer")


def sqlite_outcome(checkpointer: CheckpointerSettings) -> Outcome | None:
    """The SQLite file (and its directory, for the WAL files) can be created and written."""
    if checkpointer.kind != "sqlite":
        return None
    problem = sqlite_problem(checkpointer)
    if problem is not None:
        return problem_outcome(problem)
    path = checkpointer.path
    return Outcome("ok", f"{path} is writable" if path.exists() else f"{path} will be created")


def _sqlite(ctx: Context) -> Outcome | None:
    assert ctx.settings is not None
    return sqlite_outcome(ctx.settings.checkpointer)


def _workers(ctx: Context) -> Outcome:
    assert ctx.settings is not None
    return workers_outcome(ctx.settings)


def _schema(ctx: Context) -> Outcome | Skipped | None:
    assert ctx.settings is not None
    checkpointer = ctx.settings.checkpointer
    if checkpointer.kind != "postgres":
        return None
    probe = ctx.postgres
    if probe.error:
        return Skipped("Postgres is not reachable: see AF-NET-001")
    known, current, schema = len(migrations("s")), probe.schema_version, checkpointer.schema
    if current is None:
        return Outcome("ok", f"schema {schema!r} does not exist yet: created at first start")
    if current > known:
        return Outcome(
            "error",
            f"schema {schema!r} is at version {current}, newer than this agentflow knows "
            f"({known}): a newer release migrated it, and the server refuses to start",
            "upgrade agentflow to the release that migrated it (pip install -U agentflow-runner)",
        )
    if current < known:
        return Outcome(
            "warning",
            f"schema {schema!r} is at version {current}; this agentflow needs {known}: it will "
            "be migrated at startup",
            "back up the database first, and roll out the same agentflow version everywhere",
        )
    return Outcome("ok", f"schema {schema!r} is at version {current} (current)")


def _connections(ctx: Context) -> Outcome | Skipped | None:
    assert ctx.settings is not None
    checkpointer, workers = ctx.settings.checkpointer, ctx.settings.workers
    if checkpointer.kind != "postgres":
        return None
    probe = ctx.postgres
    if probe.error:
        return Skipped("Postgres is not reachable: see AF-NET-001")
    if checkpointer.pgbouncer:
        return Outcome("ok", "through PgBouncer: the pooler caps the server's connections")
    need = workers * checkpointer.pool_max
    available = probe.max_connections - probe.reserved_connections - CONNECTION_MARGIN
    usage = f"{workers} worker{'s' * (workers != 1)} x pool max {checkpointer.pool_max} = {need}"
    if need > available:
        return Outcome(
            "error",
            f"{usage} connections, but Postgres allows {probe.max_connections} "
            f"({probe.reserved_connections} reserved for superusers, {CONNECTION_MARGIN} kept "
            "for admin and migrations): under load, workers fail with 'too many clients'",
            f'lower "pool": {{"max": N}} so that workers x N <= {available}, raise '
            'max_connections, or put PgBouncer in front ("pgbouncer": true)',
        )
    return Outcome("ok", f"{usage} of {available} connections; each replica adds as many")


WORKERS = Check(
    "AF-PERSIST-002", "persistence", "workers share state", _workers, needs_settings=True
)
SQLITE = Check("AF-PERSIST-003", "persistence", "SQLite writable", _sqlite, needs_settings=True)
CHECKS = (
    Check("AF-PERSIST-001", "persistence", "durable threads", _durable, needs_settings=True),
    WORKERS,
    SQLITE,
    Check("AF-PERSIST-004", "persistence", "schema version", _schema, needs_settings=True,
          network=True),
    Check("AF-PERSIST-005", "persistence", "connection budget", _connections,
          needs_settings=True, network=True),
)  # fmt: skip
