"""MODE=production over real HTTP: hidden docs, security headers, generic error bodies,
JSON logs without secrets, and the warnings a risky production config produces."""

from __future__ import annotations

import io
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from httpx_sse import connect_sse

from agentflow.models import DemoChat
from agentflow.runtime import load_settings
from agentflow.tools import create_react_agent
from tests.cli.test_api import make_project, wait_for
from tests.models.conftest import SECRET_KEY, FakeProvider
from tests.runtime.conftest import ServerFactory, free_port, user_message, write_project
from tests.runtime.test_routes import PROVIDER_REFUSAL, provider, provider_agent

__all__ = ["provider"]  # a fixture, used by name

SECRET = secrets.token_hex(32)
PRODUCTION = {"MODE": "production"}
LEAKS = ("hunter2", "u:p@h", "postgres://u:p")


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    return error


def token(sub: str) -> dict[str, str]:
    claims = {"sub": sub, "exp": int(time.time()) + 300}
    return {"Authorization": f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}"}


def assert_security_headers(response: httpx.Response) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"]
    assert "strict-transport-security" in headers


# --- docs -------------------------------------------------------------------------------


def test_docs_are_hidden_in_production(make_server: ServerFactory) -> None:
    url = make_server(env=PRODUCTION)
    with httpx.Client(base_url=url, timeout=30) as http:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert_error(http.get(path), 404, "not_found")


def test_docs_served_only_at_the_configured_paths(make_server: ServerFactory) -> None:
    env = {**PRODUCTION, "DOCS_PATH": "/internal/docs", "REDOCS_PATH": "/internal/redoc"}
    url = make_server(env=env)
    with httpx.Client(base_url=url, timeout=30) as http:
        for path in ("/internal/docs", "/internal/redoc"):
            page = http.get(path)
            assert page.status_code == 200, path
            assert page.headers["content-type"].startswith("text/html")
            assert_security_headers(page)
            # the stock UIs load from /docs-assets under the pages' own strict CSP
            policy = page.headers["content-security-policy"]
            assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy
        document = http.get("/openapi.json")
        assert document.status_code == 200
        assert "/v1/graph/invoke" in document.json()["paths"]
        assert_error(http.get("/docs"), 404, "not_found")
        assert_error(http.get("/redoc"), 404, "not_found")


def test_docs_are_served_in_development(make_server: ServerFactory) -> None:
    url = make_server()
    with httpx.Client(base_url=url, timeout=30) as http:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert http.get(path).status_code == 200, path


# --- headers and error shapes -----------------------------------------------------------


def test_security_headers_on_api_responses(make_server: ServerFactory) -> None:
    url = make_server(env=PRODUCTION)
    with httpx.Client(base_url=url, timeout=30) as http:
        responses = [
            http.get("/ping"),
            http.get("/v1/threads"),
            http.post("/v1/graph/invoke", json=user_message("hi")),
            http.get("/v1/threads/missing"),
            http.post(
                "/v1/graph/invoke", content=b"{", headers={"content-type": "application/json"}
            ),
            http.get("/no/such/route"),
        ]
        for response in responses:
            assert_security_headers(response)
            csp = response.headers["content-security-policy"]
            assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert [r.status_code for r in responses] == [200, 200, 200, 404, 400, 404]


def test_unknown_route_and_method_keep_the_error_shape(make_server: ServerFactory) -> None:
    url = make_server(env=PRODUCTION)
    with httpx.Client(base_url=url, timeout=30) as http:
        assert_error(http.get("/v2/nothing"), 404, "not_found")
        assert_error(http.get("/v1/graph/invoke"), 405, "method_not_allowed")


# --- errors and logs --------------------------------------------------------------------


def capture_stderr(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """The app's lifespan calls configure_logging, which binds its handler to whatever
    sys.stderr is at that moment: point it at a buffer before the server starts. (Done in
    the test body: pytest's own capture re-installs sys.stderr between setup and call.)"""
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buffer)
    return buffer


def json_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def wait_for_line(
    buffer: io.StringIO, match: Callable[[dict[str, Any]], bool], timeout: float = 5
) -> dict[str, Any]:
    """The summary line is written after the response has been sent: poll for it."""
    deadline = time.monotonic() + timeout
    while True:
        found = [line for line in json_lines(buffer) if match(line)]
        if found:
            return found[-1]
        if time.monotonic() > deadline:
            raise AssertionError(f"no matching log line in:\n{buffer.getvalue()}")
        time.sleep(0.02)


def test_failed_run_is_generic_to_clients_and_detailed_but_masked_in_logs(
    monkeypatch: pytest.MonkeyPatch, make_server: ServerFactory
) -> None:
    captured_logs = capture_stderr(monkeypatch)
    env = {**PRODUCTION, "JWT_SECRET_KEY": SECRET}
    url = make_server(config={"auth": "jwt"}, env=env)
    with httpx.Client(base_url=url, timeout=30, headers=token("prod-user")) as http:
        response = http.post("/v1/graph/invoke", json=user_message("fail", thread_id="boom-1"))
        error = assert_error(response, 500, "run_failed")
        for leak in (*LEAKS, "RuntimeError", "Traceback"):
            assert leak not in response.text, leak
        assert "password" not in str(error["message"])

        with connect_sse(
            http, "POST", "/v1/graph/stream", json=user_message("fail", thread_id="boom-2")
        ) as source:
            events = list(source.iter_sse())
        assert [e.event for e in events][-2:] == ["error", "end"]
        assert events[-2].json()["code"] == "run_failed"
        for event in events:
            for leak in (*LEAKS, "RuntimeError", "Traceback"):
                assert leak not in event.data, (event.event, leak)

        ok = http.post("/v1/graph/invoke", json=user_message("fine", thread_id="ok-1"))
        assert ok.status_code == 200
        request_id = error["request_id"]

    summary = wait_for_line(
        captured_logs,
        lambda line: line.get("path") == "/v1/graph/invoke" and line.get("status") == 500,
    )
    assert summary["level"] == "INFO" and summary["logger"] == "agentflow.runtime.access"
    assert summary["request_id"] == request_id
    assert summary["method"] == "POST"
    assert summary["thread_id"] == "boom-1"
    assert summary["run_id"]
    assert summary["user_id"] == "prod-user"
    assert summary["outcome"] == "error"
    assert summary["error_class"] == "RuntimeError"
    assert summary["duration_ms"] >= 0

    stream_summary = wait_for_line(
        captured_logs, lambda line: line.get("path") == "/v1/graph/stream"
    )
    assert stream_summary["thread_id"] == "boom-2"
    assert stream_summary["outcome"] == "error"
    assert stream_summary["user_id"] == "prod-user"

    node = wait_for_line(
        captured_logs,
        lambda line: line.get("node") == "respond" and line.get("thread_id") == "ok-1",
    )
    assert node["duration_ms"] >= 0
    assert node["run_id"] and node["user_id"] == "prod-user"

    failed_nodes = [
        line
        for line in json_lines(captured_logs)
        if line.get("node") == "respond" and line.get("thread_id") == "boom-1"
    ]
    assert failed_nodes and failed_nodes[0]["level"] in ("WARNING", "ERROR")

    text = captured_logs.getvalue()
    for leak in (*LEAKS, SECRET):
        assert leak not in text, leak


def test_custom_auth_failure_is_logged_without_its_text(
    monkeypatch: pytest.MonkeyPatch, make_server: ServerFactory
) -> None:
    captured_logs = capture_stderr(monkeypatch)
    url = make_server(config={"auth": "tests.runtime.auth_fixtures:verify"}, env=PRODUCTION)
    response = httpx.get(f"{url}/v1/threads", headers={"X-User": "boom"})
    assert_error(response, 401, "invalid_credentials")
    line = wait_for_line(captured_logs, lambda line: line.get("status") == 401)
    assert line["path"] == "/v1/threads"
    assert "ldap-bind-secret-xyz" not in captured_logs.getvalue()


# --- warnings ---------------------------------------------------------------------------


def test_production_wildcard_origins_warns(tmp_path: Path) -> None:
    path = write_project(tmp_path, {"checkpointer": "sqlite"})
    settings = load_settings(path, environ={"MODE": "production", "ORIGINS": "*"})
    assert any("ORIGINS" in warning for warning in settings.warnings), settings.warnings
    quiet = load_settings(path, environ={"MODE": "production", "ORIGINS": "https://a.example"})
    assert quiet.warnings == ()
    development = load_settings(path, environ={"ORIGINS": "*"})
    assert development.warnings == ()


def test_production_in_memory_checkpointer_warns(tmp_path: Path) -> None:
    path = write_project(tmp_path, {"checkpointer": "memory"})
    settings = load_settings(path, environ={"MODE": "production"})
    assert any("in-memory" in warning for warning in settings.warnings), settings.warnings
    assert load_settings(path, environ={}).warnings == ()


def test_warnings_are_logged_at_startup(
    monkeypatch: pytest.MonkeyPatch, make_server: ServerFactory
) -> None:
    captured_logs = capture_stderr(monkeypatch)
    make_server(env={"MODE": "production", "ORIGINS": "*"})
    lines = json_lines(captured_logs)
    warnings = [line["message"] for line in lines if line["level"] == "WARNING"]
    assert any("ORIGINS" in message for message in warnings), lines
    assert any("in-memory" in message for message in warnings), lines


# --- models -----------------------------------------------------------------------------


def test_a_refused_key_is_a_generic_502_and_the_log_has_the_masked_reason(
    monkeypatch: pytest.MonkeyPatch, make_server: ServerFactory, provider: FakeProvider
) -> None:
    captured_logs = capture_stderr(monkeypatch)
    provider.error(401, PROVIDER_REFUSAL).error(401, PROVIDER_REFUSAL)
    url = make_server(env=PRODUCTION, graph=provider_agent(provider))
    with httpx.Client(base_url=url, timeout=30) as http:
        response = http.post("/v1/graph/invoke", json=user_message("hi"))
        error = assert_error(response, 502, "model_auth_failed")
        assert error["message"] == (
            "the model provider refused the server's credentials; the server log has the details"
        )
        with connect_sse(http, "POST", "/v1/graph/stream", json=user_message("hi")) as source:
            events = list(source.iter_sse())
    streamed = events[-2].json()
    assert (events[-2].event, streamed["code"]) == ("error", "model_auth_failed")
    assert streamed["message"] == error["message"]
    logged = wait_for_line(
        captured_logs, lambda line: "Incorrect API key provided" in line.get("message", "")
    )
    assert "HTTP 401" in logged["message"]
    assert SECRET_KEY not in captured_logs.getvalue()
    assert provider.attempts == 2


def test_health_is_degraded_while_an_offline_model_serves_production(
    make_server: ServerFactory,
) -> None:
    url = make_server(env=PRODUCTION, graph=create_react_agent(DemoChat(), []))
    health = httpx.get(url + "/health", timeout=10)
    assert health.status_code == 200  # still ready: it answers, but not with a real model
    body = health.json()
    assert body["status"] == "degraded"
    assert body["checks"]["models"] == {
        "status": "degraded",
        "models": [{"name": "demo", "class": "DemoChat", "offline": True}],
        "reason": "an offline model answers in production",
    }
    development = httpx.get(make_server(graph=create_react_agent(DemoChat(), [])) + "/health")
    assert development.json()["checks"]["models"]["status"] == "ok"


OFFLINE_GRAPH = """
from agentflow.models import DemoChat
from agentflow.tools import create_react_agent

app = create_react_agent(DemoChat(), [])
"""


@pytest.mark.parametrize("mode", ["production", "development"])
def test_api_logs_one_warning_when_an_offline_model_serves(tmp_path: Path, mode: str) -> None:
    path = make_project(tmp_path, {"checkpointer": "sqlite"}, OFFLINE_GRAPH)
    port = free_port()
    env = {**os.environ, "MODE": mode, "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentflow_cli", "api", "--config", str(path), "--port", str(port)],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{port}/ping")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
        output, _ = proc.communicate(timeout=10)
    offline = [line for line in output.splitlines() if "offline model" in line]
    assert len(offline) == 1, output
    assert "WARNING" in offline[0] and "DemoChat 'demo'" in offline[0]
    assert "OPENAI_API_KEY" in offline[0]
    assert ("MODE=production" in offline[0]) == (mode == "production")
