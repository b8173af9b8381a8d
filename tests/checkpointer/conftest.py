"""Backends the checkpointer contract suite runs against. A new backend adds one entry."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from agentflow.checkpointer import Checkpointer, open_checkpointer


@dataclass(frozen=True)
class Backend:
    name: str
    spec: Callable[[Path], str]  # a spec for open_checkpointer, usable from a subprocess
    durable: bool


PG_DSN = os.environ.get("AGENTFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def pg_spec(tmp: Path) -> str:
    """A fresh schema per test, named after the test's tmp dir; dropped afterwards."""
    schema = "t_" + re.sub(r"[^a-z0-9]", "_", tmp.name.lower())[-40:]
    return f"{PG_DSN}?agentflow_schema={schema}"


REDIS_URL = os.environ.get("AGENTFLOW_TEST_REDIS", "redis://127.0.0.1:6379/0")


def pg_redis_spec(tmp: Path) -> str:
    return f"{pg_spec(tmp)}&agentflow_redis={REDIS_URL}"


BACKENDS = [
    Backend("memory", lambda tmp: "memory", durable=False),
    Backend("sqlite", lambda tmp: f"sqlite:{tmp / 'state.db'}", durable=True),
    Backend("postgres", pg_spec, durable=True),
    Backend("postgres+redis", pg_redis_spec, durable=True),
]


@pytest.fixture(params=BACKENDS, ids=lambda b: b.name)
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=[b for b in BACKENDS if b.durable], ids=lambda b: b.name)
def durable_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    backend: Backend = request.param
    if backend.name.startswith("postgres"):
        require_postgres()
    yield backend
    if backend.name.startswith("postgres"):
        asyncio.run(drop_schema(backend.spec(tmp_path)))


def require_postgres() -> None:
    """Skip locally when Postgres is down; under CI=true a missing service fails."""
    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(PG_DSN, timeout=3)
        await conn.close()

    try:  # in a thread of its own: callers may be inside a running event loop
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, probe()).result()
    except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Postgres at {PG_DSN} is unreachable under CI: {exc}")
        pytest.skip(f"Postgres at {PG_DSN} is unreachable: {exc}")


async def drop_schema(spec: str) -> None:
    import asyncpg

    schema = spec.split("agentflow_schema=", 1)[1].split("&")[0]
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
def spec(backend: Backend, tmp_path: Path) -> Iterator[str]:
    value = backend.spec(tmp_path)
    if backend.name.startswith("postgres"):
        require_postgres()
    yield value
    if backend.name.startswith("postgres"):
        asyncio.run(drop_schema(value))


@pytest.fixture
async def cp(spec: str) -> AsyncIterator[Checkpointer]:
    checkpointer = open_checkpointer(spec)
    await checkpointer.setup()
    try:
        yield checkpointer
    finally:
        await checkpointer.close()
