"""Fixtures shared by several test packages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentflow import tracing


def in_memory_tracing(nodes: bool) -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracing.use_tracer_provider(provider, nodes=nodes)
    try:
        yield memory
    finally:
        tracing.reset()
        provider.shutdown()


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """agentflow traces into an in-memory exporter of the OpenTelemetry SDK for the test."""
    yield from in_memory_tracing(nodes=False)


@pytest.fixture
def node_exporter() -> Iterator[InMemorySpanExporter]:
    """The same, with a span per graph node."""
    yield from in_memory_tracing(nodes=True)


@pytest.fixture(autouse=True)
def own_secret_registry() -> Iterator[None]:
    """Secret values registered during a test (settings, models) are forgotten after it, so
    one test's secrets never change how another's streams are masked."""
    from agentflow.utils import secrets

    before = secrets._known
    yield
    secrets._known = before


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The image tests run last, so the base image they need can be made beside the others."""
    items.sort(key=lambda item: item.get_closest_marker("image") is not None)  # stable


def pytest_collection_finish(session: pytest.Session) -> None:
    """What some tests need and takes a minute on a fresh machine starts now, beside the tests
    that run first: the venv of `langgraph dev` (the conformance tests) and the images the
    image tests check (their base's stand-in first)."""
    if any(
        item.nodeid.startswith("tests/runtime/lgapi/test_conformance") for item in session.items
    ):
        from tests.runtime.lgapi.conftest import langgraph_venv_in_background

        langgraph_venv_in_background()
    if any(item.get_closest_marker("image") for item in session.items):
        from tests.cli import buildah, images

        if not buildah.missing_tools():
            images.images_in_background()
