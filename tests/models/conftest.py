"""A real, scriptable chat-completions server on 127.0.0.1 for the model tests.

Each test queues replies (status, JSON body, headers, a delay before answering, or an SSE
stream); the server answers requests in order and records what it received.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from agentflow.models import RetryPolicy, aclose_shared_clients

SECRET_KEY = "sk-test-SECRET0123456789abcdefXYZ"

FAST_RETRY = RetryPolicy(
    max_attempts=3, initial_backoff=0.01, max_backoff=0.05, jitter=False, max_total_time=10.0
)

_ENV_VARS = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "AGENTFLOW_MODEL_TIMEOUT",
    "AGENTFLOW_MODEL_MAX_RETRIES",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


@dataclass
class Reply:
    """One scripted answer. ``events`` makes it an SSE stream: dicts are sent as JSON
    ``data:`` events, strings as ``data:`` too unless they start with ':' or 'event:'."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    events: list[Any] | None = None
    event_delay: float = 0.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


class FakeProvider:
    """An OpenAI-compatible server in a background thread."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                provider._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def add(self, *replies: Reply) -> FakeProvider:
        with self._lock:
            self.replies.extend(replies)
        return self

    def json(self, body: Any, status: int = 200, **kwargs: Any) -> FakeProvider:
        return self.add(Reply(status=status, body=body, **kwargs))

    def error(self, status: int, message: str = "boom", **kwargs: Any) -> FakeProvider:
        return self.add(Reply(status=status, body={"error": {"message": message}}, **kwargs))

    def stream(self, events: list[Any], **kwargs: Any) -> FakeProvider:
        return self.add(Reply(events=events, **kwargs))

    def hang(self, count: int = 1, seconds: float = 5.0) -> FakeProvider:
        """Answer the next ``count`` requests only after ``seconds`` (or never, at teardown)."""
        return self.add(*[Reply(body={"late": True}, delay=seconds) for _ in range(count)])

    @staticmethod
    def completion(
        content: str | None = "Hello!",
        *,
        tool_calls: list[dict[str, Any]] | None = None,
        usage: dict[str, int] | None = None,
        model: str = "gpt-test-2024-01-01",
        finish_reason: str = "stop",
    ) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if tool_calls is not None:
            message["tool_calls"] = tool_calls
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
            "usage": usage if usage is not None else {"prompt_tokens": 12, "completion_tokens": 3},
        }

    @staticmethod
    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "model": "gpt-test-2024-01-01",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }

    @staticmethod
    def text_stream(*parts: str, usage: dict[str, int] | None = None) -> list[Any]:
        events: list[Any] = [FakeProvider.chunk({"role": "assistant", "content": ""})]
        events += [FakeProvider.chunk({"content": p}) for p in parts]
        events.append(FakeProvider.chunk({}, "stop"))
        if usage is not None:
            events.append({"id": "chatcmpl-1", "choices": [], "usage": usage})
        events.append("[DONE]")
        return events

    @property
    def attempts(self) -> int:
        return len(self.requests)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        with self._lock:
            self.requests.append(
                Received(
                    path=handler.path,
                    headers={k.lower(): v for k, v in handler.headers.items()},
                    body=json.loads(raw) if raw else {},
                    at=time.monotonic(),
                )
            )
            reply = self.replies.popleft() if self.replies else None
        if reply is None:
            reply = Reply(status=500, body={"error": {"message": "no reply scripted"}})
        if reply.delay and self._stop.wait(reply.delay):
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._write(handler, reply)

    def _write(self, handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        handler.send_response(reply.status)
        if reply.events is not None:
            handler.send_header("Content-Type", "text/event-stream")
            handler.send_header("Cache-Control", "no-cache")
            for key, value in reply.headers.items():
                handler.send_header(key, value)
            handler.end_headers()
            for event in reply.events:
                if reply.event_delay and self._stop.wait(reply.event_delay):
                    return
                if isinstance(event, str) and event.startswith((":", "event:")):
                    line = f"{event}\n"  # a comment or another SSE field, sent as is
                else:
                    data = event if isinstance(event, str) else json.dumps(event)
                    line = f"data: {data}\n\n"
                handler.wfile.write(line.encode())
                handler.wfile.flush()
            return
        if isinstance(reply.body, bytes | str):
            payload = reply.body.encode() if isinstance(reply.body, str) else reply.body
            ctype = "text/plain"
        else:
            payload = json.dumps(reply.body).encode()
            ctype = "application/json"
        handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(payload)))
        for key, value in reply.headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(payload)

    def close(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
async def _close_shared_clients() -> AsyncIterator[None]:
    yield
    await aclose_shared_clients()


@pytest.fixture
def make_provider() -> Iterator[Callable[[], FakeProvider]]:
    servers: list[FakeProvider] = []

    def make() -> FakeProvider:
        server = FakeProvider()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def provider(make_provider: Callable[[], FakeProvider]) -> FakeProvider:
    return make_provider()


@pytest.fixture
def secret_key() -> str:
    return SECRET_KEY


@pytest.fixture
def fast_retry() -> RetryPolicy:
    return FAST_RETRY


@pytest.fixture
def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
