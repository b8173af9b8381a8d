"""The HTTP/1.1 protocol the server speaks: uvicorn's httptools protocol with limits on what a
client may do before its request reaches the app.

uvicorn bounds neither the size of a request's headers nor the time a client takes to send
them, and it never closes a connection that sends nothing: one client streaming an endless
header held hundreds of megabytes, and thousands of silent connections stayed open forever.
Here, per connection:

- headers larger than `max_header_bytes` (request line included) or with more than
  `max_headers` fields get a 431 `headers_too_large` and the connection is closed, also while
  the header is still arriving (what is buffered stays within the limit plus one read);
- a request whose headers are not complete `header_timeout` seconds after its first byte gets
  a 408 `header_timeout` and is closed;
- a refused connection gets its answer, then what it still sends is dropped unread for
  LINGER seconds before the close (so the client reads the answer, not a reset);
- a connection that starts no request within `idle_timeout` seconds of being opened (or of
  sending only blank lines after a response) is closed; uvicorn's keep-alive timeout closes
  one that is quiet after a response.

Passed to uvicorn as its `http` option (a class); only public protocol methods are overridden.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

logger = logging.getLogger("agentflow.runtime.protocol")


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """What a client may do before its request reaches the app."""

    max_header_bytes: int = 64 * 1024  # request line + header names and values
    max_headers: int = 100
    header_timeout: float = 10.0  # first byte of a request -> end of its headers
    idle_timeout: float = 10.0  # connection opened -> first byte of a request


DEFAULT_LIMITS = ConnectionLimits()
LINGER = 2.0  # seconds a refused client's further bytes are read and dropped before the close
HEADER_OVERHEAD = 4  # ": " and CRLF around each header field


def error_response(status: int, reason: str, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 response in the API's error shape that closes the connection
    (no request reached the app, so there is no request id)."""
    body = json.dumps({"error": {"code": code, "message": message, "request_id": None}})
    payload = body.encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(payload)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + payload


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the `limits` of this class (see the module)."""

    limits: ClassVar[ConnectionLimits] = DEFAULT_LIMITS

    in_head: bool = False  # a request has begun and its headers are not complete
    head_bytes: int = 0  # bytes of the current request's head read so far (at least)
    header_count: int = 0
    refused: bool = False
    guard_timer: asyncio.TimerHandle | None = None

    # -- connection events ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.arm(self.limits.idle_timeout, self.on_idle_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        whole_read_in_head = self.in_head
        super().data_received(data)
        if self.refused or self.transport.is_closing():
            return
        if self.in_head:
            # A read that began inside the head and did not finish it is all head bytes;
            # the read a request began in is not counted (it may hold the previous body),
            # so what is buffered stays within the limit plus one read.
            if whole_read_in_head:
                self.head_bytes += len(data)
            if self.head_bytes > self.limits.max_header_bytes:
                self.refuse_headers()
        elif self.guard_timer is None and (self.cycle is None or self.cycle.response_complete):
            # Only blank lines arrived between requests: that starts no request.
            self.arm(self.limits.idle_timeout, self.on_idle_timeout)

    # -- parser callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_head = True
        self.head_bytes = 0
        self.header_count = 0
        self.arm(self.limits.header_timeout, self.on_header_timeout)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_count += 1
        if self.header_count <= self.limits.max_headers:
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self.refused:
            return
        self.in_head = False
        self.disarm()
        size = len(self.url) + sum(len(n) + len(v) + HEADER_OVERHEAD for n, v in self.headers)
        if self.header_count > self.limits.max_headers or size > self.limits.max_header_bytes:
            self.refuse_headers()
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self.refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self.refused:
            super().on_message_complete()

    # -- refusing ----------------------------------------------------------------------------

    def refuse_headers(self) -> None:
        limits = self.limits
        self.close_with(
            431,
            "Request Header Fields Too Large",
            "headers_too_large",
            f"the request's headers exceed {limits.max_header_bytes} bytes or "
            f"{limits.max_headers} fields; send smaller headers (cookies and tokens are the "
            "usual cause)",
        )

    def on_header_timeout(self) -> None:
        self.guard_timer = None
        if self.in_head and not self.refused:
            self.close_with(
                408,
                "Request Timeout",
                "header_timeout",
                f"the request's headers did not arrive within {self.limits.header_timeout:g} "
                "seconds; send the whole request head at once",
            )

    def on_idle_timeout(self) -> None:
        self.guard_timer = None
        if not self.in_head and not self.transport.is_closing():
            self.transport.close()

    def close_with(self, status: int, reason: str, code: str, message: str) -> None:
        self.refused = True
        self.in_head = False
        self.disarm()
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "unknown client"
        logger.info("refused %s: %d %s", client, status, code)
        if self.transport.is_closing():
            return
        self.transport.write(error_response(status, reason, code, message))
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        # A close with the client's bytes unread sends a reset, which can destroy the answer
        # before the client reads it: end our side, drop what still arrives for a moment.
        self.transport.write_eof()
        self.guard_timer = self.loop.call_later(LINGER, self.transport.close)

    # -- timers ------------------------------------------------------------------------------

    def arm(self, delay: float, callback: Callable[[], None]) -> None:
        self.disarm()
        self.guard_timer = self.loop.call_later(delay, callback)

    def disarm(self) -> None:
        if self.guard_timer is not None:
            self.guard_timer.cancel()
            self.guard_timer = None


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedHttpProtocol]:
    """The protocol class with other limits (tests; one process: not for `workers > 1`,
    whose worker processes import the protocol class by name)."""
    return type("GuardedHttpProtocol", (GuardedHttpProtocol,), {"limits": limits})
