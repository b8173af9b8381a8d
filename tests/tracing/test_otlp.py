"""The direct OTLP encoder writes exactly the bytes of the SDK's protobuf encoder, for every
kind of span and attribute value, and the exporter sends them through the SDK client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
    encode_spans as sdk_encode_spans,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.span import TraceState

from agentflow.tracing.light import lighten
from agentflow.tracing.otlp import FastOTLPSpanExporter, encode_spans
from tests.tracing.conftest import Collector
from tests.tracing.test_light import nested_calls

VALUES: dict[str, Any] = {
    "str": "héllo ✓",
    "empty": "",
    "true": True,
    "false": False,
    "zero": 0,
    "int": 300,
    "negative": -5,
    "big": 2**62,
    "float": 2.5,
    "float zero": 0.0,
    "strings": ("a", "b"),
    "ints": (1, -2),
    "bools": (True, False),
}


def spans_of_every_kind() -> tuple[ReadableSpan, ...]:
    spans: list[ReadableSpan] = []
    for light in (False, True):
        memory = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource({"service.name": "svc", "n": 3}))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        sdk_tracer = provider.get_tracer("agentflow", "1.2", schema_url="https://x/schema")
        tracer = lighten(sdk_tracer) if light else sdk_tracer
        nested_calls(tracer)
        remote = SpanContext(
            0x0AF7651916CD43DD8448EB211C80319C,
            0xB7AD6B7169203331,
            is_remote=True,
            trace_flags=trace.TraceFlags(1),
            trace_state=TraceState([("vendor", "v1"), ("other", "x")]),
        )
        parent = trace.set_span_in_context(NonRecordingSpan(remote))
        for kind in SpanKind:
            span = tracer.start_span(f"kind {kind.name}", context=parent, kind=kind)
            span.set_attributes(VALUES)
            span.add_event("e", {"k": 1}, timestamp=123)
            span.add_event("", None)
            span.add_link(remote, {"why": "batch"})
            span.set_status(Status(StatusCode.OK) if kind.value % 2 else StatusCode.ERROR)
            span.end()
        other = provider.get_tracer("other-scope").start_span("plain", links=[Link(remote)])
        other.end()
        spans.extend(memory.get_finished_spans())
        provider.shutdown()
    return tuple(spans)


def test_bytes_equal_the_sdk_encoder() -> None:
    spans = spans_of_every_kind()
    assert len(spans) == 18  # 3 nested + 5 kinds + 1 other scope, twice
    ours = encode_spans(spans)
    theirs = sdk_encode_spans(spans)
    assert ExportTraceServiceRequest.FromString(ours) == theirs
    assert ours == theirs.SerializeToString()
    for span in spans:  # one at a time too: each span's own bytes
        assert encode_spans([span]) == sdk_encode_spans([span]).SerializeToString()
    assert encode_spans([]) == sdk_encode_spans([]).SerializeToString() == b""


def test_values_the_wire_format_cannot_carry_are_dropped_as_the_sdk_drops_them(
    collector: str,
) -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("x").start_as_current_span("nested") as span:
        span.set_attribute("map", {"a": 1})  # a mapping value: written by both
    provider.shutdown()
    [nested] = memory.get_finished_spans()
    assert encode_spans([nested]) == sdk_encode_spans([nested]).SerializeToString()
    exporter = FastOTLPSpanExporter(endpoint=collector)
    try:
        huge = ReadableSpan("huge", context=nested.context, attributes={"n": 2**70, "ok": 1})
        assert encode_spans([huge]) == sdk_encode_spans([huge]).SerializeToString()
        assert exporter.export([huge]) is SpanExportResult.SUCCESS  # without "n"
        assert exporter.export([nested]) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    first, second = (ExportTraceServiceRequest.FromString(b) for b in Collector.received)
    [sent] = first.resource_spans[0].scope_spans[0].spans
    assert sent.name == "huge" and [a.key for a in sent.attributes] == ["ok"]
    assert second == sdk_encode_spans([nested])


@pytest.fixture
def failing_collector() -> Iterator[str]:
    yield "http://127.0.0.1:9/v1/traces"  # discard port: nothing listens


def test_an_unreachable_collector_is_a_failed_export(failing_collector: str) -> None:
    exporter = FastOTLPSpanExporter(endpoint=failing_collector, timeout=1)
    try:
        [span] = spans_of_every_kind()[:1]
        assert exporter.export([span]) is SpanExportResult.FAILURE
    finally:
        exporter.shutdown()
