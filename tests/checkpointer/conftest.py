"""Backends the checkpointer contract suite runs against. A new backend adds one entry."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from agentflow.checkpointer import Checkpointer, open_checkpointer


@dataclass(frozen=True)
class Backend:
    name: str
    spec: Callable[[Path], str]  # a spec for open_checkpointer, usable from a subprocess
    durable: bool


BACKENDS = [
    Backend("memory", lambda tmp: "memory", durable=False),
    Backend("sqlite", lambda tmp: f"sqlite:{tmp / 'state.db'}", durable=True),
]


@pytest.fixture(params=BACKENDS, ids=lambda b: b.name)
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=[b for b in BACKENDS if b.durable], ids=lambda b: b.name)
def durable_backend(request: pytest.FixtureRequest) -> Backend:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def spec(backend: Backend, tmp_path: Path) -> str:
    return backend.spec(tmp_path)


@pytest.fixture
async def cp(spec: str) -> AsyncIterator[Checkpointer]:
    checkpointer = open_checkpointer(spec)
    await checkpointer.setup()
    try:
        yield checkpointer
    finally:
        await checkpointer.close()
