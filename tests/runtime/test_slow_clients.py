"""Clients that never finish their headers, send nothing, or stream an endless header: a real
uvicorn on a free port with the server's HTTP protocol, raw sockets for the misbehaving
clients and httpx for a normal one served meanwhile. Timeouts are made short here; the header
limits are the defaults."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from agentflow.runtime import create_app, load_settings
from agentflow.runtime.protocol import DEFAULT_LIMITS, ConnectionLimits, guarded_protocol
from tests.runtime import graphs
from tests.runtime.conftest import serve_app, write_project

SHORT = replace(DEFAULT_LIMITS, header_timeout=0.5, idle_timeout=0.5)
WAIT = 10.0  # every socket read gives up after this long: a test never hangs
# What one client may push before the server must have refused it: the header limit plus
# what the kernel's socket buffers (megabytes on loopback) and one read absorb. Without a
# limit, the server takes all of it and never answers.
PUSH_CAP = 16 * 1024 * 1024


@contextmanager
def guarded_server(tmp_path: Path, limits: ConnectionLimits) -> Iterator[tuple[str, int]]:
    """The app under uvicorn with the server's protocol and `limits`, in a thread."""
    settings = load_settings(write_project(tmp_path / "project"), environ={})
    with serve_app(create_app(settings, graph=graphs.echo), http=guarded_protocol(limits)) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def connect(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=WAIT)
    sock.settimeout(WAIT)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (socket.timeout if it
    keeps the connection open for WAIT seconds)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def status_and_body(response: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


def push_endless_header(address: tuple[str, int]) -> tuple[int, bytes]:
    """Stream one header value that never ends, until the server answers or closes, or
    PUSH_CAP bytes went out. The bytes sent and what the server said."""
    sock = connect(address)
    with sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: localhost\r\nX-Endless: ")
        piece = b"a" * 16384
        sent = 0
        sock.setblocking(False)
        try:
            while sent < PUSH_CAP:
                try:
                    sent += sock.send(piece)
                except BlockingIOError:
                    time.sleep(0.001)
                try:
                    answer = sock.recv(65536)
                except BlockingIOError:
                    continue
                sock.settimeout(WAIT)
                return sent, answer + read_until_closed(sock)
        except (BrokenPipeError, ConnectionResetError):
            sock.settimeout(WAIT)
            return sent, read_until_closed(sock)
        return sent, b""


def push_unterminated_header(address: tuple[str, int], size: int = 256 * 1024) -> bytes:
    """Send `size` bytes of one header that does not end; what the server says until it
    closes the connection."""
    with connect(address) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: localhost\r\nX-Endless: " + b"a" * size)
        return read_until_closed(sock)


def test_an_endless_header_gets_431_and_a_close(tmp_path: Path) -> None:
    with guarded_server(tmp_path, SHORT) as address:
        sent, answer = push_endless_header(address)
    assert answer, f"the server read {sent} bytes of one header and never answered"
    status, body = status_and_body(answer)
    assert status == 431
    assert body["error"]["code"] == "headers_too_large"  # type: ignore[index]
    assert body["error"]["request_id"] is None  # type: ignore[index]
    assert b"connection: close" in answer.lower()
    assert sent < PUSH_CAP


def test_too_many_headers_get_431(tmp_path: Path) -> None:
    fields = b"".join(b"X-F%d: v\r\n" % i for i in range(DEFAULT_LIMITS.max_headers + 1))
    with guarded_server(tmp_path, SHORT) as address, connect(address) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: localhost\r\n" + fields + b"\r\n")
        status, body = status_and_body(read_until_closed(sock))
    assert status == 431
    assert body["error"]["code"] == "headers_too_large"  # type: ignore[index]


def test_large_allowed_headers_and_keep_alive_still_work(tmp_path: Path) -> None:
    """Limits refuse only what exceeds them: a 40 KiB cookie and two requests on one
    connection are served."""
    cookie = "c=" + "x" * 40_000
    with (
        guarded_server(tmp_path, SHORT) as (host, port),
        httpx.Client(base_url=f"http://{host}:{port}", timeout=WAIT) as client,
    ):
        first = client.get("/ping", headers={"Cookie": cookie})
        second = client.post(
            "/v1/graph/invoke",
            json={"messages": [{"role": "user", "content": "hi"}]},
            headers={"Cookie": cookie},
        )
    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text
    assert second.json()["messages"][0]["content"] == "echo: hi"


def test_a_silent_connection_is_closed(tmp_path: Path) -> None:
    with guarded_server(tmp_path, SHORT) as address, connect(address) as sock:
        started = time.monotonic()
        assert read_until_closed(sock) == b""  # closed with nothing to say: nothing asked
        assert time.monotonic() - started < WAIT


def test_a_connection_silent_after_crlf_is_closed(tmp_path: Path) -> None:
    """Blank lines between requests are no request: they do not keep a connection open."""
    with guarded_server(tmp_path, SHORT) as address, connect(address) as sock:
        sock.sendall(b"\r\n")
        time.sleep(0.3)
        sock.sendall(b"\r\n")
        assert read_until_closed(sock) == b""


def test_headers_that_never_end_time_out(tmp_path: Path) -> None:
    """A client trickling header lines (slowloris) is answered 408 and closed after the
    header timeout, though it never stops sending."""
    with guarded_server(tmp_path, SHORT) as address, connect(address) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: localhost\r\n")
        answer = b""
        sock.settimeout(0.1)
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                break
            answer += chunk
        sock.settimeout(WAIT)
    assert answer, "the server never answered a client that did not finish its headers"
    status, body = status_and_body(answer)
    assert status == 408
    assert body["error"]["code"] == "header_timeout"  # type: ignore[index]


@pytest.mark.slow
def test_a_normal_client_is_served_while_others_misbehave(tmp_path: Path) -> None:
    """Ten clients streaming endless headers and ten silent ones do not hold up a normal
    request on another connection; each misbehaving one is closed."""
    limits = replace(DEFAULT_LIMITS, header_timeout=2.0, idle_timeout=2.0)
    with guarded_server(tmp_path, limits) as address:
        silent = [connect(address) for _ in range(10)]
        results: list[bytes] = []
        pushers = [
            threading.Thread(target=lambda: results.append(push_unterminated_header(address)))
            for _ in range(10)
        ]
        for pusher in pushers:
            pusher.start()
        with httpx.Client(base_url=f"http://{address[0]}:{address[1]}", timeout=WAIT) as client:
            answered = [client.get("/ping").status_code for _ in range(20)]
        for pusher in pushers:
            pusher.join(WAIT * 2)
        closed = [read_until_closed(sock) for sock in silent]
        for sock in silent:
            sock.close()
    assert answered == [200] * 20
    assert len(results) == 10
    assert all(answer.startswith(b"HTTP/1.1 431") for answer in results), results
    assert closed == [b""] * 10
