"""A local OTLP/HTTP collector and real `agentflow api` processes that export to it.

The collector is a Starlette app under uvicorn on a free 127.0.0.1 port: it accepts
``POST /v1/traces`` (protobuf, as the SDK's ``OTLPSpanExporter`` sends it) and decodes each
body with ``opentelemetry.proto``. The server is `agentflow api` in a subprocess, configured
by the standard ``OTEL_*`` variables only, serving a ReAct agent with one tool whose model
(in ``GRAPH``) answers "1+2?" with a call of ``add``, then with the tool's result, and fails
on "explode" with a message that holds a secret.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.runtime.conftest import free_port, serve_app

SECRET = "sk-trace-secret-0123456789abcdef"
GRAPH = f'''
from agentflow.graph import Message, ToolCall, Usage
from agentflow.tools import create_react_agent, tool


@tool
def add(a: int, b: int) -> str:
    """Add two numbers."""
    return str(a + b)


class Model:
    name = "otlp-test-model"

    async def ainvoke(self, messages, *, tools=None, timeout=None):
        last = messages[-1]
        if last.role == "tool":
            reply = Message.assistant("the answer is " + last.text)
        elif "explode" in last.text:
            raise RuntimeError("the model broke on {SECRET}")
        else:
            call = ToolCall(name="add", arguments={{"a": 1, "b": 2}})
            reply = Message.assistant("", tool_calls=[call])
        reply.usage = Usage(prompt_tokens=11, completion_tokens=3)
        reply.metadata["model"] = self.name
        return reply

    async def astream(self, messages, *, tools=None, timeout=None):
        yield await self.ainvoke(messages, tools=tools, timeout=timeout)


app = create_react_agent(Model(), [add])
'''


@dataclass
class ExportedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    attributes: dict[str, Any]
    status_code: int  # 0 unset, 1 ok, 2 error
    status_message: str
    events: list[str]
    resource: dict[str, Any]


def plain(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


@dataclass
class Collector:
    url: str = ""
    bodies: list[bytes] = field(default_factory=list)
    spans: list[ExportedSpan] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def receive(self, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        decoded = []
        for resource_spans in request.resource_spans:
            resource = {a.key: plain(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    decoded.append(
                        ExportedSpan(
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            kind=span.kind,
                            attributes={a.key: plain(a.value) for a in span.attributes},
                            status_code=span.status.code,
                            status_message=span.status.message,
                            events=[event.name for event in span.events],
                            resource=resource,
                        )
                    )
        with self.lock:
            self.bodies.append(body)
            self.spans.extend(decoded)

    def request_trace(self, response: httpx.Response, count: int) -> list[ExportedSpan]:
        """The spans of the trace of the request that got `response` (by its request id)."""
        request_id = response.headers["X-Request-ID"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with self.lock:
                found = [
                    s for s in self.spans if s.attributes.get("agentflow.request_id") == request_id
                ]
            if found:
                return self.trace(found[0].trace_id, count)
            time.sleep(0.02)
        raise AssertionError(f"no request span for {request_id}")

    def trace(self, trace_id: str, count: int, timeout: float = 10.0) -> list[ExportedSpan]:
        """The spans of one trace once `count` of them arrived (exactly `count`)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                found = [s for s in self.spans if s.trace_id == trace_id]
            if len(found) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert len(found) == count, [s.name for s in found]
        time.sleep(0.2)  # nothing more comes
        with self.lock:
            assert len([s for s in self.spans if s.trace_id == trace_id]) == count
        return found


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    collector = Collector()

    async def traces(request: Request) -> Response:
        if request.headers.get("content-type") != "application/x-protobuf":
            return Response(status_code=415)
        collector.receive(await request.body())
        return Response(ExportTraceServiceRequest().SerializeToString(),
                        media_type="application/x-protobuf")  # fmt: skip

    app = Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])
    with serve_app(app) as url:
        collector.url = url
        yield collector


def clean_environ(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTFLOW_"))}
    return {**env, "LOG_LEVEL": "WARNING", **extra}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tracing-project")
    (path / "tracing_graph.py").write_text(GRAPH)
    (path / "agentflow.json").write_text('{"graph": "tracing_graph:app", "checkpointer": "memory"}')
    return path


@contextmanager
def agentflow_api(project: Path, env: dict[str, str]) -> Iterator[str]:
    """`agentflow api` on a free port with `env`; stopped by its PID at the end."""
    port = free_port()
    argv = [sys.executable, "-m", "agentflow_cli", "api", "--config"]
    argv += [str(project / "agentflow.json"), "--port", str(port)]
    proc = subprocess.Popen(argv, env=env, cwd=project, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()[0]
            try:
                if httpx.get(url + "/ping", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "agentflow api did not come up"
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        try:
            output, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        assert "Traceback" not in output, output


@pytest.fixture(scope="module")
def exporting_server(collector: Collector, project: Path) -> Iterator[str]:
    """A server that exports every span over OTLP/HTTP to the collector (no node spans)."""
    env = clean_environ(
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
        OTEL_SERVICE_NAME="otlp-test-service",
        OTEL_BSP_SCHEDULE_DELAY="50",
    )
    with agentflow_api(project, env) as url:
        yield url
