"""OpenTelemetry spans (in-memory exporter, in-process server): request -> run -> model/tool,
node spans between them when asked for, traceparent continued, nothing when tracing is off.
The OTLP export, the environment and the import-free off path: tests/tracing/."""

from __future__ import annotations

import time
from typing import Any

import httpx
from httpx_sse import connect_sse
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from agentflow import tracing
from agentflow.graph import CompiledGraph
from agentflow.models import OpenAIChat, ScriptedChat
from agentflow.tools import create_react_agent, tool
from tests.models.conftest import FAST_RETRY, FakeProvider
from tests.runtime.conftest import ServerFactory, user_message

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"


@tool
def add(a: int, b: int) -> str:
    """Add two numbers."""
    return str(a + b)


@tool
def explode() -> str:
    """Always fails."""
    raise RuntimeError("boom sk-secret")


def react_graph(tool_name: str = "add", arguments: dict[str, Any] | None = None) -> CompiledGraph:
    model = ScriptedChat(
        [
            {"tool_calls": [{"name": tool_name, "arguments": arguments or {"a": 1, "b": 2}}]},
            "the answer is 3",
        ],
        name="scripted-model",
    )
    return create_react_agent(model, [add, explode])


def finished(exporter: InMemorySpanExporter, count: int) -> tuple[ReadableSpan, ...]:
    """The finished spans once there are `count`: the request span ends just after the
    response's last byte is sent, possibly after the client has read it."""
    deadline = time.monotonic() + 5
    while len(spans := exporter.get_finished_spans()) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(spans) == count, [s.name for s in spans]
    return spans


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return sorted((s for s in spans if s.name == name), key=lambda s: s.start_time or 0)


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def invoke(url: str, **headers: str) -> dict[str, Any]:
    response = httpx.post(
        f"{url}/v1/graph/invoke", json=user_message("1+2?"), headers=headers, timeout=10
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    body["request_id"] = response.headers["X-Request-ID"]
    return body


def check_request_and_run(
    spans: tuple[ReadableSpan, ...], body: dict[str, Any]
) -> tuple[ReadableSpan, ReadableSpan]:
    [request] = by_name(spans, "POST /v1/graph/invoke")
    assert request.kind == SpanKind.SERVER
    assert request.parent is None
    attrs = request.attributes or {}
    assert attrs["http.request.method"] == "POST"
    assert attrs["http.route"] == "/v1/graph/invoke"
    assert attrs["http.response.status_code"] == 200
    assert attrs["agentflow.request_id"] == body["request_id"]

    [run] = by_name(spans, "agentflow.run")
    assert parent_of(run) == span_id(request)
    run_attrs = run.attributes or {}
    assert run_attrs["agentflow.outcome"] == "done"
    assert run_attrs["agentflow.user_id"]
    assert run_attrs["agentflow.usage.total_tokens"] == body["usage"]["total_tokens"] > 0
    ids = {"agentflow.thread_id": body["thread_id"], "agentflow.run_id": body["run_id"]}
    for span in spans:
        if span is not request:
            assert {k: (span.attributes or {}).get(k) for k in ids} == ids, span.name
    assert {s.context.trace_id for s in spans if s.context} == {request.context.trace_id}
    return request, run


def check_model_and_tool(
    spans: tuple[ReadableSpan, ...],
) -> tuple[list[ReadableSpan], ReadableSpan]:
    models = by_name(spans, "agentflow.model")
    assert len(models) == 2
    for model in models:
        model_attrs = model.attributes or {}
        assert model_attrs["gen_ai.request.model"] == "scripted-model"
        assert model_attrs["gen_ai.usage.input_tokens"] > 0
        assert model_attrs["gen_ai.usage.output_tokens"] > 0
        assert model_attrs["agentflow.model.attempts"] == 1
    assert (models[0].attributes or {})["agentflow.model.tool_calls"] == 1
    [tool_span] = by_name(spans, "agentflow.tool")
    tool_attrs = tool_span.attributes or {}
    assert tool_attrs["gen_ai.tool.name"] == "add"
    assert tool_attrs["agentflow.outcome"] == "ok"
    assert tool_span.status.status_code == StatusCode.UNSET
    return models, tool_span


def test_span_tree_for_a_react_run(
    make_server: ServerFactory, exporter: InMemorySpanExporter
) -> None:
    body = invoke(make_server(graph=react_graph()))
    spans = finished(exporter, 5)  # no node spans unless asked for
    _, run = check_request_and_run(spans, body)
    models, tool_span = check_model_and_tool(spans)
    assert [parent_of(s) for s in [*models, tool_span]] == [span_id(run)] * 3
    assert not by_name(spans, "agentflow.node")


def test_node_spans_when_asked_for(
    make_server: ServerFactory, node_exporter: InMemorySpanExporter
) -> None:
    body = invoke(make_server(graph=react_graph()))
    spans = finished(node_exporter, 8)
    _, run = check_request_and_run(spans, body)
    models, tool_span = check_model_and_tool(spans)
    nodes = by_name(spans, "agentflow.node")
    assert [(n.attributes or {})["agentflow.node"] for n in nodes] == ["agent", "tools", "agent"]
    steps = [(n.attributes or {})["agentflow.step"] for n in nodes]
    assert steps == [steps[0], steps[0] + 1, steps[0] + 2]  # the input is step 1
    for node in nodes:
        assert parent_of(node) == span_id(run)
        assert (node.attributes or {})["agentflow.duration_ms"] >= 0
    assert [parent_of(m) for m in models] == [span_id(nodes[0]), span_id(nodes[2])]
    assert parent_of(tool_span) == span_id(nodes[1])


def test_streamed_run_records_a_retried_model_call(
    make_server: ServerFactory, exporter: InMemorySpanExporter
) -> None:
    """/v1/graph/stream against a real chat-completions server that answers 503 once before
    streaming: the model span (under the run span) counts both attempts and the tokens."""
    provider = FakeProvider()
    try:
        usage = {"prompt_tokens": 17, "completion_tokens": 2}
        provider.error(503).stream(provider.text_stream("Hel", "lo", usage=usage))
        model = OpenAIChat("gpt-test-2024-01-01", base_url=provider.url, retry=FAST_RETRY)
        url = make_server(graph=create_react_agent(model, []))
        with (
            httpx.Client(base_url=url, timeout=10) as client,
            connect_sse(client, "POST", "/v1/graph/stream", json=user_message("hi")) as source,
        ):
            events = list(source.iter_sse())
        assert [e.json()["delta"] for e in events if e.event == "delta"] == ["Hel", "lo"]
        assert events[-1].json()["status"] == "done"
        spans = finished(exporter, 3)
    finally:
        provider.close()
    assert provider.attempts == 2
    assert all(r.body["stream"] is True for r in provider.requests)
    [run] = by_name(spans, "agentflow.run")
    [model_span] = by_name(spans, "agentflow.model")
    assert parent_of(model_span) == span_id(run)
    attrs = model_span.attributes or {}
    assert attrs["gen_ai.request.model"] == attrs["gen_ai.response.model"] == model.name
    assert attrs["gen_ai.usage.input_tokens"] == 17
    assert attrs["gen_ai.usage.output_tokens"] == 2
    assert attrs["agentflow.model.attempts"] == 2
    assert "agentflow.model.attempts" not in (run.attributes or {})
    assert model_span.status.status_code == StatusCode.UNSET


def test_traceparent_from_the_caller_is_continued(
    make_server: ServerFactory, exporter: InMemorySpanExporter
) -> None:
    invoke(make_server(graph=react_graph()), traceparent=f"00-{TRACE_ID}-{PARENT_ID}-01")
    spans = finished(exporter, 5)
    [request] = by_name(spans, "POST /v1/graph/invoke")
    assert request.parent is not None and request.parent.is_remote
    assert request.parent.span_id == int(PARENT_ID, 16)
    assert {s.context.trace_id for s in spans if s.context} == {int(TRACE_ID, 16)}


def test_failed_tool_marks_its_span_without_the_message(
    make_server: ServerFactory, exporter: InMemorySpanExporter
) -> None:
    url = make_server(graph=react_graph("explode", {}))
    response = httpx.post(f"{url}/v1/graph/invoke", json=user_message("go"), timeout=10)
    assert response.status_code == 200
    [tool_span] = by_name(finished(exporter, 5), "agentflow.tool")
    attrs = tool_span.attributes or {}
    assert attrs["agentflow.outcome"] == "error"
    assert tool_span.status.status_code == StatusCode.ERROR
    assert "sk-secret" not in repr(dict(attrs)) + str(tool_span.status.description)
    assert not tool_span.events


def test_quiet_paths_and_errors(make_server: ServerFactory, exporter: InMemorySpanExporter) -> None:
    url = make_server(graph=react_graph())
    assert httpx.get(f"{url}/ping", timeout=10).status_code == 200
    assert httpx.get(f"{url}/v1/threads/nope", timeout=10).status_code == 404
    spans = finished(exporter, 1)
    assert [s.name for s in spans] == ["GET /v1/threads/{thread_id}"]
    assert (spans[0].attributes or {})["http.response.status_code"] == 404
    assert spans[0].status.status_code == StatusCode.UNSET


def test_no_spans_when_tracing_is_off(
    make_server: ServerFactory, exporter: InMemorySpanExporter
) -> None:
    url = make_server(graph=react_graph())
    assert httpx.post(f"{url}/v1/graph/invoke", json=user_message("1"), timeout=10).is_success
    assert len(finished(exporter, 5)) == 5  # the same harness sees spans when tracing is on
    tracing.use_tracer_provider(None)
    url = make_server(graph=react_graph())
    assert httpx.post(f"{url}/v1/graph/invoke", json=user_message("2"), timeout=10).is_success
    time.sleep(0.1)
    assert len(exporter.get_finished_spans()) == 5
    assert tracing.span("x") is tracing.span("y")  # one shared null context manager
    tracing.set_attributes({"a": 1})  # no current span, no tracer: nothing happens


def test_an_unsampled_caller_trace_records_nothing(
    make_server: ServerFactory, exporter: InMemorySpanExporter
) -> None:
    url = make_server(graph=react_graph())
    body = invoke(url, traceparent=f"00-{TRACE_ID}-{PARENT_ID}-00")  # flags 00: not sampled
    assert body["status"] == "done"
    time.sleep(0.1)
    assert exporter.get_finished_spans() == ()
