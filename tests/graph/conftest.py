"""Shared fixtures for the graph-core tests."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agentflow.checkpointer import Checkpointer, InMemoryCheckpointer, SqliteCheckpointer


@pytest.fixture(params=["memory", "sqlite"])
async def checkpointer(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Checkpointer]:
    """Each backend the graph core must behave the same on."""
    if request.param == "memory":
        yield InMemoryCheckpointer()
        return
    cp = SqliteCheckpointer(tmp_path / "state.db")
    await cp.setup()
    try:
        yield cp
    finally:
        await cp.close()


@pytest.fixture
def memory() -> InMemoryCheckpointer:
    return InMemoryCheckpointer()
