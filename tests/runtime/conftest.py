"""Real HTTP: the app under uvicorn on a free port, called with httpx."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from agentflow.graph import CompiledGraph
from agentflow.runtime import Settings, create_app, load_settings
from tests.runtime import graphs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_app(app: Starlette, **options: Any) -> Iterator[str]:
    """Run `app` under uvicorn (with more uvicorn `options`) in a thread until the block
    exits."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, lifespan="on", **options
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def write_project(path: Path, config: dict[str, Any] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    data = {"graph": "tests.runtime.graphs:echo", "checkpointer": "memory", **(config or {})}
    (path / "agentflow.json").write_text(json.dumps(data))
    return path / "agentflow.json"


ServerFactory = Callable[..., str]


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """make_server(config=..., env=..., graph=...) -> base URL of a running server."""
    stack: list[Any] = []

    def start(
        config: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        graph: CompiledGraph | None = None,
        **overrides: Any,
    ) -> str:
        project = tmp_path / f"project{len(stack)}"
        path = write_project(project, config)
        settings: Settings = load_settings(path, environ=env or {}, **overrides)
        manager = serve_app(create_app(settings, graph=graph or graphs.echo))
        url = manager.__enter__()
        stack.append(manager)
        return url

    yield start
    for manager in reversed(stack):
        manager.__exit__(None, None, None)


@pytest.fixture
def server(make_server: ServerFactory) -> str:
    return make_server()


@pytest.fixture
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=30) as http:
        yield http


def user_message(text: str, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}], **extra}


def sse(text: str) -> list[tuple[int, str, dict[str, Any]]]:
    """(id, event, data) of every event in an SSE body, in order (heartbeats skipped)."""
    events = []
    for frame in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line)
        if "event" in fields:
            events.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
    return events
