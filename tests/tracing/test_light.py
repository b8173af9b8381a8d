"""The light span path: what exporters receive is what the SDK's own spans give them.

The same nested calls are traced twice, once through the SDK tracer and once through
agentflow's LightTracer in front of it, and the finished spans are compared field by field;
then the light spans go through the real OTLP/HTTP exporter to a collector on 127.0.0.1 and
are decoded from the protobuf it received. Samplers, processors, remote parents and
attributes set by other code through the OpenTelemetry API are honoured."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode

from agentflow import tracing
from agentflow.tracing.light import LightSpan, LightTracer, lighten
from tests.tracing.conftest import Collector


def provider_with_memory(**kwargs: Any) -> tuple[TracerProvider, InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": "light-test"}), **kwargs)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return provider, memory


def nested_calls(tracer: Any) -> None:
    """A request -> run -> node shape with late attributes, an error and an event."""
    request = tracer.start_span(
        "POST /v1/graph/invoke", kind=SpanKind.SERVER, attributes={"http.request.method": "POST"}
    )
    with trace.use_span(request, end_on_exit=True):
        run = tracer.start_span("agentflow.run", attributes={"agentflow.thread_id": "t1"})
        with trace.use_span(run, end_on_exit=True):
            node = tracer.start_span("agentflow.node", attributes={"agentflow.step": 1})
            with trace.use_span(node, end_on_exit=True):
                node.set_attribute("agentflow.duration_ms", 1.5)
                node.add_event("retry", {"attempt": 2})
                node.set_status(Status(StatusCode.ERROR, "ToolError"))
            run.set_attributes({"agentflow.outcome": "done", "tags": ["a", "b"]})
        request.update_name("POST /v1/graph/invoke (route)")
        request.set_attribute("http.response.status_code", 200)


def comparable(span: ReadableSpan, ids: dict[int, str]) -> dict[str, Any]:
    assert span.context is not None
    return {
        "name": span.name,
        "kind": span.kind,
        "parent": None if span.parent is None else ids[span.parent.span_id],
        "attributes": dict(span.attributes or {}),
        "events": [(e.name, dict(e.attributes or {})) for e in span.events],
        "status": (span.status.status_code, span.status.description),
        "scope": span.instrumentation_scope,
        "resource": dict(span.resource.attributes),
        "sampled": span.context.trace_flags.sampled,
        "ordered": span.start_time is not None
        and span.end_time is not None
        and span.start_time <= span.end_time,
    }


def traced_twice() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    results = []
    for light in (False, True):
        provider, memory = provider_with_memory()
        sdk_tracer = provider.get_tracer("agentflow", "1.0")
        tracer = lighten(sdk_tracer) if light else sdk_tracer
        assert isinstance(tracer, LightTracer) is light
        nested_calls(tracer)
        spans = memory.get_finished_spans()
        ids = {s.context.span_id: s.name for s in spans if s.context is not None}
        assert len({s.context.trace_id for s in spans if s.context is not None}) == 1
        results.append([comparable(s, ids) for s in spans])
        provider.shutdown()
    return results[0], results[1]


def test_light_spans_look_like_sdk_spans_to_processors() -> None:
    sdk, light = traced_twice()
    assert [s["name"] for s in light] == [
        "agentflow.node",
        "agentflow.run",
        "POST /v1/graph/invoke (route)",
    ]
    assert light == sdk
    assert light[1]["attributes"]["tags"] == ("a", "b")  # validated like the SDK does


def test_light_spans_through_the_otlp_exporter(collector: str) -> None:
    provider = TracerProvider(resource=Resource({"service.name": "light-test"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=collector)))
    tracing.use_tracer_provider(provider)
    try:
        ids = {"agentflow.thread_id": "t1", "agentflow.run_id": "r1"}
        node = {"agentflow.node": "echo", "x": None}
        with tracing.span("outer", ids), tracing.span("inner", node):
            tracing.set_attributes({"agentflow.duration_ms": 2.5})
            tracing.mark_error("ToolError")
    finally:
        tracing.reset()
        provider.shutdown()
    spans = []
    for body in Collector.received:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            names = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            assert names["service.name"] == "light-test"
            for scope_spans in resource_spans.scope_spans:
                assert scope_spans.scope.name == "agentflow"
                spans.extend(scope_spans.spans)
    inner, outer = spans
    assert (inner.name, outer.name) == ("inner", "outer")
    assert inner.parent_span_id == outer.span_id and inner.trace_id == outer.trace_id
    assert not outer.parent_span_id
    attributes = {a.key: a.value for a in inner.attributes}
    assert attributes["agentflow.thread_id"].string_value == "t1"  # inherited from the run
    assert attributes["agentflow.node"].string_value == "echo"
    assert attributes["agentflow.duration_ms"].double_value == 2.5
    assert attributes["error.type"].string_value == "ToolError"
    assert "x" not in attributes
    assert inner.status.code == 2 and inner.status.message == "ToolError"  # ERROR
    assert outer.status.code == 0
    assert 0 < inner.start_time_unix_nano <= inner.end_time_unix_nano


def test_the_sampler_decides_for_light_spans() -> None:
    provider, memory = provider_with_memory(sampler=ALWAYS_OFF)
    tracing.use_tracer_provider(provider)
    try:
        assert tracing.recording()  # nothing open yet: a root may be sampled
        with tracing.span("root") as root:
            assert isinstance(root, NonRecordingSpan)
            assert not tracing.recording()  # callers skip building attributes
            assert tracing.span("child") is tracing.span("other")  # the shared null span
            tracing.set_attributes({"ignored": 1})
        assert memory.get_finished_spans() == ()
    finally:
        tracing.reset()
        provider.shutdown()
    # a ratio sampler on children too (not parent-based): each span asks it
    provider, memory = provider_with_memory(sampler=TraceIdRatioBased(1.0))
    tracer = lighten(provider.get_tracer("agentflow"))
    assert not tracer.children_follow
    nested_calls(tracer)
    assert len(memory.get_finished_spans()) == 3
    provider.shutdown()


class AttributeSampler(Sampler):
    """A sampler that decides on an attribute (as a user's own sampler may)."""

    def should_sample(self, parent_context: Any, trace_id: int, name: str, kind: Any = None,
                      attributes: Any = None, links: Any = None, trace_state: Any = None,
                      ) -> SamplingResult:  # fmt: skip
        keep = name == "run" or (attributes or {}).get("http.request.method") == "POST"
        return SamplingResult(Decision.RECORD_AND_SAMPLE if keep else Decision.DROP)

    def get_description(self) -> str:
        return "AttributeSampler"


@pytest.mark.parametrize(
    ("sampler", "blind", "built"),
    [
        (ParentBased(ALWAYS_OFF), True, 0),  # dropped: the attributes are never built
        (ParentBased(TraceIdRatioBased(1.0)), True, 1),  # recorded: built after the decision
        (AttributeSampler(), False, 1),  # the sampler reads them: built before it decides
    ],
)
def test_attributes_from_a_function_are_built_when_someone_reads_them(
    sampler: Any, blind: bool, built: int
) -> None:
    provider, memory = provider_with_memory(sampler=sampler)
    tracing.use_tracer_provider(provider)
    calls = []

    def attributes() -> dict[str, Any]:
        calls.append(1)
        return {"http.request.method": "POST", "agentflow.thread_id": "t9", "gone": None}

    try:
        assert tracing._tracer.samples_blind is blind
        with tracing.span("POST /x", attributes, server=True, headers=[]), tracing.span("run"):
            pass
    finally:
        tracing.reset()
        provider.shutdown()
    assert len(calls) == built
    spans = {s.name: s for s in memory.get_finished_spans()}
    if built:
        assert dict(spans["POST /x"].attributes or {}) == {
            "http.request.method": "POST", "agentflow.thread_id": "t9"
        }  # fmt: skip
        assert (spans["run"].attributes or {})["agentflow.thread_id"] == "t9"
    else:
        assert spans == {}


def test_a_sampled_remote_parent_is_continued_and_an_unsampled_one_is_not() -> None:
    provider, memory = provider_with_memory(sampler=ParentBased(TraceIdRatioBased(0.0)))
    tracer = lighten(provider.get_tracer("agentflow"))
    for sampled, expected in ((True, 1), (False, 1)):  # finished spans so far
        remote = SpanContext(
            0x0AF7651916CD43DD8448EB211C80319C,
            0xB7AD6B7169203331,
            is_remote=True,
            trace_flags=trace.TraceFlags(1 if sampled else 0),
        )
        parent = trace.set_span_in_context(NonRecordingSpan(remote))
        tracer.start_span("request", context=parent, kind=SpanKind.SERVER).end()
        assert len(memory.get_finished_spans()) == expected
    [span] = memory.get_finished_spans()
    assert span.parent is not None and span.parent.is_remote
    assert span.parent.span_id == 0xB7AD6B7169203331
    assert span.context is not None and span.context.trace_id == span.parent.trace_id
    tracer.start_span("root without a parent").end()  # the root sampler says 0%
    assert len(memory.get_finished_spans()) == 1
    provider.shutdown()


class Stamping(SpanProcessor):
    """A processor that adds an attribute when a span starts, as vendors' processors do."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        span.set_attribute("deployment", "blue")


def test_processors_and_other_code_can_write_to_light_spans() -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(Stamping())
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracing.use_tracer_provider(provider)
    try:
        with tracing.span("agentflow.node", {"agentflow.node": "tools"}) as span:
            assert isinstance(span, LightSpan)
            current = trace.get_current_span()  # what an instrumented library sees
            assert current is span
            current.set_attribute("http.url", "http://127.0.0.1/x")
            current.add_event("chunk", {"n": 1})
            child = provider.get_tracer("httpx").start_span("GET")  # another library's span
            child.end()
            token = otel_context.attach(trace.set_span_in_context(child))
            otel_context.detach(token)
    finally:
        tracing.reset()
        provider.shutdown()
    spans = {s.name: s for s in memory.get_finished_spans()}
    node = spans["agentflow.node"]
    assert dict(node.attributes or {}) == {
        "agentflow.node": "tools",
        "deployment": "blue",
        "http.url": "http://127.0.0.1/x",
    }
    assert [e.name for e in node.events] == ["chunk"]
    assert spans["GET"].parent is not None and node.context is not None
    assert spans["GET"].parent.span_id == node.context.span_id


def test_other_tracers_keep_their_own_spans() -> None:
    class Custom(trace.Tracer):
        def start_span(self, *args: Any, **kwargs: Any) -> trace.Span:
            return trace.NonRecordingSpan(trace.INVALID_SPAN_CONTEXT)

        def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError

    custom = Custom()
    assert lighten(custom) is custom
