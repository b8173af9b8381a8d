"""What the SDK sent and got over HTTP: a transport that records every exchange, and a
markdown rendering of the records (`capture.py` writes one for `langgraph dev`).

The transports wrap httpx's own and pass the response body through as it arrives (an SSE
stream is recorded chunk by chunk, never buffered), so recording changes no timing."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

# The response headers a client of the protocol reads.
KEPT_HEADERS = ("content-type", "content-location", "location", "x-pagination-next",
                "x-pagination-total")  # fmt: skip


SETUP = "(setup"  # the label of calls made between a scenario's steps


@dataclass
class Exchange:
    method: str
    path: str
    query: str
    body: Any  # the JSON sent, or None
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)
    label: str = ""  # the scenario step it belongs to

    @property
    def text(self) -> str:
        return b"".join(self.chunks).decode("utf-8", errors="replace")


@dataclass
class Recorder:
    exchanges: list[Exchange] = field(default_factory=list)
    label: str = SETUP + ", not a step)"

    def start(self, request: httpx.Request) -> Exchange:
        content = request.content if not isinstance(request.stream, httpx.AsyncByteStream) else b""
        try:
            body = json.loads(content) if content else None
        except ValueError:
            body = content.decode(errors="replace")
        exchange = Exchange(
            request.method, request.url.path, request.url.query.decode(), body, label=self.label
        )
        self.exchanges.append(exchange)
        return exchange

    def finish(self, exchange: Exchange, response: httpx.Response) -> None:
        exchange.status = response.status_code
        exchange.headers = {k: v for k, v in response.headers.items() if k in KEPT_HEADERS}


class _RecordedAsyncStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, exchange: Exchange) -> None:
        self.inner = inner
        self.exchange = exchange

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            self.exchange.chunks.append(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()


class _RecordedSyncStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, exchange: Exchange) -> None:
        self.inner = inner
        self.exchange = exchange

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            self.exchange.chunks.append(chunk)
            yield chunk

    def close(self) -> None:
        self.inner.close()


class AsyncRecordingTransport(httpx.AsyncBaseTransport):
    def __init__(self, recorder: Recorder, limits: httpx.Limits | None = None) -> None:
        self.recorder = recorder
        self.inner = httpx.AsyncHTTPTransport(limits=limits or httpx.Limits())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        exchange = self.recorder.start(request)
        response = await self.inner.handle_async_request(request)
        self.recorder.finish(exchange, response)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_RecordedAsyncStream(response.stream, exchange),
            extensions=response.extensions,
            request=request,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


class SyncRecordingTransport(httpx.BaseTransport):
    def __init__(self, recorder: Recorder, limits: httpx.Limits | None = None) -> None:
        self.recorder = recorder
        self.inner = httpx.HTTPTransport(limits=limits or httpx.Limits())

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        exchange = self.recorder.start(request)
        response = self.inner.handle_request(request)
        self.recorder.finish(exchange, response)
        assert isinstance(response.stream, httpx.SyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_RecordedSyncStream(response.stream, exchange),
            extensions=response.extensions,
            request=request,
        )

    def close(self) -> None:
        self.inner.close()


def sse_events(text: str) -> list[tuple[str, str]]:
    """(event, data) of each SSE message in `text`."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].lstrip())
        if data or name != "message":
            events.append((name, "\n".join(data)))
    return events


def _pretty(text: str, limit: int) -> str:
    with contextlib.suppress(ValueError):
        text = json.dumps(json.loads(text), indent=1, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + f"\n... ({len(text)} chars)"


def to_markdown(exchanges: list[Exchange], limit: int = 6000) -> str:
    """Each exchange: request line and JSON body, status, kept headers, JSON or SSE events."""
    out: list[str] = []
    label = None
    for x in exchanges:
        query = f"?{x.query}" if x.query else ""
        if x.label.startswith(SETUP):  # set-up and polling calls: one line each, repeats counted
            line = f"- ({x.label.strip('()')}) `{x.method} {x.path}{query}` -> {x.status}"
            if out and out[-1].startswith(line):
                count = int(out[-1][len(line) :].strip(" x") or 1) + 1
                out[-1] = f"{line} x{count}"
            else:
                out.append(line)
            label = x.label
            continue
        if x.label != label:
            label = x.label
            out.append(f"\n## {label}\n")
        out.append(f"### `{x.method} {x.path}{query}` -> {x.status}\n")
        if x.body is not None:
            out.append("request body:\n```json\n" + json.dumps(x.body, indent=1) + "\n```")
        if x.headers:
            out.append("headers: " + ", ".join(f"`{k}: {v}`" for k, v in x.headers.items()))
        if x.headers.get("content-type", "").startswith("text/event-stream"):
            lines = [f"event: {name}\ndata: {_pretty(data, limit)}" for name, data in
                     sse_events(x.text)]  # fmt: skip
            out.append("SSE:\n```\n" + "\n\n".join(lines) + "\n```")
        elif x.chunks:
            out.append("response:\n```json\n" + _pretty(x.text, limit) + "\n```")
        out.append("")
    return "\n".join(out)
