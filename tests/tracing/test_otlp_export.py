"""Spans exported over real OTLP/HTTP by a real `agentflow api`, configured by ``OTEL_*``
variables only: the span tree request > run > model / tool with the run's identity and token
counts, failures without their messages, the caller's trace continued, node spans on a
setting, and nothing imported from ``opentelemetry`` when tracing is off."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from agentflow import tracing
from tests.tracing.conftest import (
    SECRET,
    Collector,
    ExportedSpan,
    agentflow_api,
    clean_environ,
)

SERVER, INTERNAL = 2, 1  # Span.SpanKind values of the OTLP protocol
UNSET, ERROR = 0, 2  # Status.StatusCode values
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"


def invoke(url: str, text: str, **headers: str) -> httpx.Response:
    body = {"messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{url}/v1/graph/invoke", json=body, headers=headers, timeout=15)


def named(spans: list[ExportedSpan], name: str) -> list[ExportedSpan]:
    return [s for s in spans if s.name == name]


def test_a_run_is_exported_as_request_run_model_tool(
    exporting_server: str, collector: Collector
) -> None:
    response = invoke(exporting_server, "1+2?")
    assert response.status_code == 200, response.text
    body = response.json()
    spans = collector.request_trace(response, 5)

    [request] = named(spans, "POST /v1/graph/invoke")
    assert request.kind == SERVER and request.parent_span_id == ""
    assert request.attributes["http.response.status_code"] == 200
    assert request.attributes["http.route"] == "/v1/graph/invoke"
    assert request.resource["service.name"] == "otlp-test-service"
    [run] = named(spans, "agentflow.run")
    assert run.kind == INTERNAL and run.parent_span_id == request.span_id
    assert run.attributes["agentflow.outcome"] == "done"
    assert run.attributes["agentflow.usage.prompt_tokens"] == 22  # two model calls of 11
    assert run.attributes["agentflow.usage.completion_tokens"] == 6
    models = named(spans, "agentflow.model")
    [tool] = named(spans, "agentflow.tool")
    assert [s.parent_span_id for s in [*models, tool]] == [run.span_id] * 3
    for model in models:
        assert model.attributes["gen_ai.request.model"] == "otlp-test-model"
        assert model.attributes["gen_ai.usage.input_tokens"] == 11
        assert model.attributes["gen_ai.usage.output_tokens"] == 3
    assert tool.attributes["gen_ai.tool.name"] == "add"
    assert tool.attributes["agentflow.outcome"] == "ok"
    ids = {"agentflow.thread_id": body["thread_id"], "agentflow.run_id": body["run_id"]}
    for span in [run, *models, tool]:
        assert {k: span.attributes.get(k) for k in ids} == ids, span.name
    assert all(s.status_code == UNSET for s in spans)


def test_a_failed_run_has_status_error_and_its_class_not_its_message(
    exporting_server: str, collector: Collector
) -> None:
    response = invoke(exporting_server, "explode")
    assert response.status_code >= 400
    spans = collector.request_trace(response, 3)
    [run] = named(spans, "agentflow.run")
    assert run.status_code == ERROR
    assert run.attributes["error.type"] == "NodeError"
    assert run.attributes["agentflow.error_class"] == "RuntimeError"
    [model] = named(spans, "agentflow.model")
    assert model.status_code == ERROR
    assert model.attributes["error.type"] == model.status_message == "RuntimeError"
    assert not any(s.events for s in spans)  # no exception event
    with collector.lock:
        assert not any(SECRET.encode() in body for body in collector.bodies)
        assert not any(b"the model broke" in body for body in collector.bodies)


def test_the_callers_traceparent_is_continued(exporting_server: str, collector: Collector) -> None:
    response = invoke(exporting_server, "1+2?", traceparent=f"00-{TRACE_ID}-{PARENT_ID}-01")
    assert response.status_code == 200
    spans = collector.trace(TRACE_ID, 5)
    [request] = named(spans, "POST /v1/graph/invoke")
    assert request.parent_span_id == PARENT_ID
    assert request.attributes["agentflow.request_id"] == response.headers["X-Request-ID"]


def test_node_spans_on_a_setting(collector: Collector, project: Path) -> None:
    env = clean_environ(
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
        OTEL_BSP_SCHEDULE_DELAY="50",
        AGENTFLOW_TRACE_NODES="1",
    )
    with agentflow_api(project, env) as url:
        response = invoke(url, "1+2?")
        assert response.status_code == 200
        spans = collector.request_trace(response, 8)
    [run] = named(spans, "agentflow.run")
    nodes = sorted(named(spans, "agentflow.node"), key=lambda s: s.attributes["agentflow.step"])
    assert [n.attributes["agentflow.node"] for n in nodes] == ["agent", "tools", "agent"]
    assert {n.parent_span_id for n in nodes} == {run.span_id}
    agent_nodes = {nodes[0].span_id, nodes[2].span_id}
    assert {m.parent_span_id for m in named(spans, "agentflow.model")} == agent_nodes
    [tool] = named(spans, "agentflow.tool")
    assert tool.parent_span_id == nodes[1].span_id
    assert spans[0].resource["service.name"] == "agentflow"  # no OTEL_SERVICE_NAME


OFF = """
import sys
from starlette.testclient import TestClient
from agentflow import tracing
from agentflow.runtime import create_app, load_settings

settings = load_settings(sys.argv[1])
with TestClient(create_app(settings)) as client:
    body = {"messages": [{"role": "user", "content": "1+2?"}]}
    response = client.post("/v1/graph/invoke", json=body)
    assert response.json()["messages"][-1]["content"] == "the answer is 3", response.text
assert not tracing.enabled()
print(sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry"))
"""


@pytest.mark.parametrize(
    "env",
    [{}, {"AGENTFLOW_TRACING": "0", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}],
    ids=["unset", "switched-off"],
)
def test_off_imports_nothing_from_opentelemetry(project: Path, env: dict[str, str]) -> None:
    """A request through a real app (a model call and a tool call) with tracing off."""
    argv = [sys.executable, "-c", OFF, str(project / "agentflow.json")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          env=clean_environ(**env), cwd=project)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, False),
        ({"AGENTFLOW_TRACING": "1"}, True),
        ({"AGENTFLOW_TRACING": "0", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://x:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
        ({"OTEL_SDK_DISABLED": "true", "AGENTFLOW_TRACING": "1"}, True),
    ],
)
def test_tracing_wanted_reads_the_standard_variables(env: dict[str, str], expected: bool) -> None:
    assert tracing.tracing_wanted(env) is expected


@pytest.mark.parametrize(
    ("value", "expected"), [(None, False), ("1", True), ("true", True), ("0", False)]
)
def test_node_spans_wanted(value: str | None, expected: bool) -> None:
    env = {} if value is None else {"AGENTFLOW_TRACE_NODES": value}
    assert tracing.node_spans_wanted(env) is expected


HOST = """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

memory = InMemorySpanExporter()
host = TracerProvider()
host.add_span_processor(SimpleSpanProcessor(memory))
trace.set_tracer_provider(host)

from agentflow import tracing

with trace.get_tracer("host").start_as_current_span("host request"):
    with tracing.span("agentflow.run", {"agentflow.run_id": "r1"}):
        pass
assert trace.get_tracer_provider() is host
print(json.dumps([[s.name, s.parent.span_id if s.parent else None, s.context.span_id]
                  for s in memory.get_finished_spans()]))
"""


def test_a_provider_the_host_installed_is_used_as_is() -> None:
    env = clean_environ(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    done = subprocess.run([sys.executable, "-c", "import json\n" + HOST], capture_output=True,
                          text=True, timeout=60, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (run, run_parent, _), (host, _, host_id) = json.loads(done.stdout)
    assert (run, host) == ("agentflow.run", "host request")
    assert run_parent == host_id


def test_a_built_provider_names_the_service_agentflow_by_default() -> None:
    code = "from opentelemetry import trace\nfrom agentflow import tracing\n"
    code += "assert tracing.enabled()\n"
    code += "print(trace.get_tracer_provider().resource.attributes['service.name'])\n"
    env = clean_environ(AGENTFLOW_TRACING="1", OTEL_TRACES_EXPORTER="none")
    argv = [sys.executable, "-c", code]
    for extra, expected in [({}, "agentflow"), ({"OTEL_SERVICE_NAME": "billing"}, "billing")]:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                              env={**env, **extra})  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == expected
