"""The OTLP relay: batches go, as rows, to a helper process that encodes and posts them.

Real parts throughout: the helper is a real `python -m agentflow.tracing.relay` process
configured by the OTEL_* variables it inherits, the collector a real HTTP server on
127.0.0.1. What reaches the collector is byte for byte what the SDK's encoder writes; the
helper's log records come back to the server's logging; a helper that dies is replaced, one
that cannot start leaves the export in the server process, and none outlives its server."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
    encode_spans as sdk_encode_spans,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult

from agentflow import tracing
from agentflow.tracing.light import LightTracer
from agentflow.tracing.otlp import FastOTLPSpanExporter
from agentflow.tracing.relay import RelayExporter
from tests.tracing.conftest import Collector
from tests.tracing.test_light import nested_calls
from tests.tracing.test_otlp import spans_of_every_kind


@pytest.fixture
def relay(collector: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[RelayExporter]:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", collector)  # the helper's config
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2")
    exporter = RelayExporter(FastOTLPSpanExporter())
    yield exporter
    exporter.shutdown()


def helper_pid(exporter: RelayExporter) -> int:
    helper = exporter._helper
    assert helper is not None
    return helper.pid


def test_the_collector_gets_the_sdk_encoders_bytes(relay: RelayExporter) -> None:
    spans = spans_of_every_kind()
    assert relay.export(spans) is SpanExportResult.SUCCESS
    assert relay.export(spans[:1]) is SpanExportResult.SUCCESS
    assert Collector.received == [
        sdk_encode_spans(spans).SerializeToString(),
        sdk_encode_spans(spans[:1]).SerializeToString(),
    ]


def test_light_spans_go_to_the_batch_as_they_are(relay: RelayExporter) -> None:
    provider = TracerProvider(resource=Resource({"service.name": "relay-test"}))
    batch = BatchSpanProcessor(relay)
    provider.add_span_processor(batch)
    tracer = LightTracer(provider.get_tracer("agentflow"))
    assert tracer.direct() is not None  # rows go to the batch: no ReadableSpan on the way
    nested_calls(tracer)
    assert provider.force_flush()
    [body] = Collector.received
    request = ExportTraceServiceRequest.FromString(body)
    [resource] = request.resource_spans
    assert resource.resource.attributes[0].value.string_value == "relay-test"
    spans = {s.name: s for s in resource.scope_spans[0].spans}
    assert set(spans) == {"POST /v1/graph/invoke (route)", "agentflow.run", "agentflow.node"}
    assert spans["agentflow.node"].parent_span_id == spans["agentflow.run"].span_id
    assert spans["agentflow.node"].status.code == 2  # ERROR
    assert [e.name for e in spans["agentflow.node"].events] == ["retry"]


def test_the_helpers_logs_come_back(relay: RelayExporter, caplog: pytest.LogCaptureFixture) -> None:
    Collector.status = 400  # not retried: the SDK's exporter logs and gives up
    [span] = spans_of_every_kind()[:1]
    with caplog.at_level(logging.WARNING):
        assert relay.export([span]) is SpanExportResult.FAILURE
    assert any("400" in r.getMessage() for r in caplog.records), caplog.text
    Collector.status = 200
    assert relay.export([span]) is SpanExportResult.SUCCESS


def test_a_dead_helper_is_replaced(relay: RelayExporter, caplog: pytest.LogCaptureFixture) -> None:
    spans = spans_of_every_kind()[:3]
    assert relay.export(spans) is SpanExportResult.SUCCESS
    first = helper_pid(relay)
    os.kill(first, signal.SIGKILL)
    time.sleep(0.2)
    with caplog.at_level(logging.WARNING, logger="agentflow.tracing"):
        assert relay.export(spans) is SpanExportResult.FAILURE  # that batch is lost, and said
    assert "span export helper failed" in caplog.text
    assert relay.export(spans) is SpanExportResult.SUCCESS
    assert helper_pid(relay) != first
    assert len(Collector.received) == 2


def test_a_helper_that_cannot_start_leaves_the_export_here(
    collector: str, caplog: pytest.LogCaptureFixture
) -> None:
    broken = [sys.executable, "-c", "raise SystemExit(3)"]
    exporter = RelayExporter(FastOTLPSpanExporter(endpoint=collector), argv=broken)
    try:
        spans = spans_of_every_kind()[:3]
        with caplog.at_level(logging.WARNING, logger="agentflow.tracing"):
            assert exporter.export(spans) is SpanExportResult.SUCCESS
            assert exporter.export(spans) is SpanExportResult.SUCCESS
        assert caplog.text.count("exporting in the server process") == 1
        assert Collector.received == [sdk_encode_spans(spans).SerializeToString()] * 2
    finally:
        exporter.shutdown()


def test_the_helper_never_outlives_its_server(collector: str) -> None:
    code = """
import os
from agentflow.tracing.otlp import FastOTLPSpanExporter
from agentflow.tracing.relay import RelayExporter
exporter = RelayExporter(FastOTLPSpanExporter())
print(exporter._helper.pid, flush=True)
os.kill(os.getpid(), 9)
"""
    env = {**os.environ, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": collector}
    server = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=30
    )
    assert server.returncode == -signal.SIGKILL
    pid = int(server.stdout)
    deadline = time.monotonic() + 10
    while _alive(pid):
        assert time.monotonic() < deadline, "the helper outlived its server"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_shutdown_ends_the_helper(relay: RelayExporter) -> None:
    assert relay.export(spans_of_every_kind()[:1]) is SpanExportResult.SUCCESS
    helper = relay._helper
    assert helper is not None
    relay.shutdown()
    assert helper.poll() == 0
    assert relay.export(spans_of_every_kind()[:1]) is SpanExportResult.FAILURE


def test_the_server_relays_by_default() -> None:
    from tests.runtime.test_tracing import run_python

    code = """
from opentelemetry import trace
from agentflow import tracing
assert tracing.enabled()
[processor] = trace.get_tracer_provider()._active_span_processor._span_processors
print(type(processor.span_exporter).__name__, type(tracing._tracer).__name__)
"""
    env = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    assert run_python(code, **env) == "RelayExporter LightTracer"
    off = run_python(code, AGENTFLOW_TRACING_RELAY="0", **env)
    assert off == "FastOTLPSpanExporter LightTracer"
    assert tracing  # the module under test


def test_a_library_printing_in_the_helper_does_not_garble_its_answers(
    collector: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    noisy = """
from agentflow.tracing import otlp
send = otlp.FastOTLPSpanExporter.send
def noisy_send(self, data):
    print("noise from a library", flush=True)
    return send(self, data)
otlp.FastOTLPSpanExporter.send = noisy_send
import runpy
runpy.run_module("agentflow.tracing.relay", run_name="__main__")
"""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", collector)
    exporter = RelayExporter(FastOTLPSpanExporter(), argv=[sys.executable, "-c", noisy])
    try:
        spans = spans_of_every_kind()[:2]
        for _ in range(3):
            assert exporter.export(spans) is SpanExportResult.SUCCESS
        assert not exporter._in_process  # answered by the helper every time
        assert len(Collector.received) == 3
    finally:
        exporter.shutdown()
