"""Network checks: Postgres and Redis answer. Skipped by --offline.

The probes are shared with the persistence checks (schema version, connection budget)
through `Context.postgres`, so each doctor run connects at most once per service.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from agentflow.runtime import CheckpointerSettings
from agentflow_cli.checks import Check, Outcome
from agentflow_cli.checks.context import Context

CONNECT_TIMEOUT = 3.0  # seconds, per service


@dataclass(frozen=True, slots=True)
class ServiceProbe:
    where: str  # host:port/database, never credentials
    error: str | None = None
    latency_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class PgProbe:
    where: str
    error: str | None = None
    latency_ms: float = 0.0
    server_version: str = ""
    max_connections: int = 0
    reserved_connections: int = 0
    schema_version: int | None = None  # None: the schema_version table does not exist yet


def describe_url(url: str) -> str:
    """host:port/path of a service URL, without user, password or query."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "an unparsable URL"
    if not host:
        return f"a local socket{parts.path}"
    return f"{host}{f':{port}' if port else ''}{parts.path}"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def probe_postgres(settings: CheckpointerSettings) -> PgProbe:
    """Connect once (no retries) and read what the other checks need."""
    import asyncpg

    assert settings.dsn is not None
    dsn, where = settings.dsn.get(), describe_url(settings.dsn.get())
    table = f"{quote_ident(settings.schema)}.schema_version"

    async def probe() -> PgProbe:
        started = time.perf_counter()
        conn = await asyncpg.connect(
            dsn, timeout=CONNECT_TIMEOUT, command_timeout=CONNECT_TIMEOUT,
            statement_cache_size=0 if settings.pgbouncer else 100,
        )  # fmt: skip
        try:
            latency = (time.perf_counter() - started) * 1000
            version = await conn.fetchval("SHOW server_version")
            max_connections = int(await conn.fetchval("SHOW max_connections"))
            reserved = int(await conn.fetchval("SHOW superuser_reserved_connections"))
            schema_version = None
            if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table):
                schema_version = await conn.fetchval(
                    f"SELECT coalesce(max(version), 0) FROM {table}"
                )
        finally:
            await conn.close()
        return PgProbe(where, None, latency, version, max_connections, reserved, schema_version)

    try:
        return asyncio.run(probe())
    except (OSError, asyncio.TimeoutError, ValueError, asyncpg.PostgresError,
            asyncpg.InterfaceError) as exc:  # fmt: skip
        return PgProbe(where, error=f"{type(exc).__name__}: {exc}")


def probe_redis(url: str) -> ServiceProbe:
    import redis

    where = describe_url(url)
    started = time.perf_counter()
    try:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=CONNECT_TIMEOUT
        )
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError) as exc:
        return ServiceProbe(where, error=f"{type(exc).__name__}: {exc}")
    return ServiceProbe(where, latency_ms=(time.perf_counter() - started) * 1000)


def _postgres(ctx: Context) -> Outcome | None:
    assert ctx.settings is not None
    if ctx.settings.checkpointer.kind != "postgres":
        return None
    probe = ctx.postgres
    if probe.error:
        return Outcome(
            "error",
            f"cannot connect to Postgres at {probe.where} within {CONNECT_TIMEOUT:g} s "
            f"({probe.error}); the server cannot start without it",
            "check DATABASE_URL (host, port, user, password, database) and that the server "
            "is up and reachable from here (`agentflow api` retries briefly, then exits)",
        )
    return Outcome(
        "ok",
        f"PostgreSQL {probe.server_version} at {probe.where} answered in {probe.latency_ms:.0f} ms",
    )


def _redis(ctx: Context) -> Outcome | None:
    assert ctx.settings is not None
    checkpointer = ctx.settings.checkpointer
    if checkpointer.kind != "postgres" or checkpointer.redis_url is None:
        return None
    probe = ctx.redis
    if probe.error:
        return Outcome(
            "warning",
            f"Redis at {probe.where} is not reachable ({probe.error}); the server still "
            "serves from Postgres, but without the state cache and with slower stop signals",
            "check REDIS_URL and that Redis is up, or unset REDIS_URL to run without it",
        )
    return Outcome("ok", f"Redis at {probe.where} answered in {probe.latency_ms:.0f} ms")


CHECKS = (
    Check("AF-NET-001", "network", "Postgres reachable", _postgres, needs_settings=True,
          network=True),
    Check("AF-NET-002", "network", "Redis reachable", _redis, needs_settings=True,
          network=True),
)  # fmt: skip
