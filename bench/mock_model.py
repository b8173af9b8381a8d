"""A slow OpenAI-compatible chat-completions endpoint, for bench/capacity.py.

    .venv/bin/python bench/mock_model.py --port 8001 [--deltas 10] [--duration 2.0]

`POST /v1/chat/completions` with `"stream": true` answers with N content deltas spread over
D seconds (the first after D/N, the last at D, each at its own deadline from the start of
the call, so a busy loop does not stretch the call beyond D), then a `finish_reason` chunk,
a usage chunk (`choices: []`, as with `stream_options.include_usage`) and `data: [DONE]`.
Without `"stream": true` it waits D seconds and returns one `chat.completion`.
`GET /ping` answers `{"status": "ok"}`; `GET /stats` the number of calls so far, the calls
in flight and the most in flight at once (so a bench can wait until its server is idle).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from typing import Any

from aiohttp import web

WORD = "token "


def raise_nofile_limit() -> None:
    """Thousands of concurrent streams need as many descriptors as the hard limit allows."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def sse(data: dict[str, Any] | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {payload}\n\n".encode()


class MockModel:
    def __init__(self, deltas: int, duration: float) -> None:
        self.deltas = deltas
        self.duration = duration
        self.calls = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.usage = {"prompt_tokens": 12, "completion_tokens": deltas, "total_tokens": 12 + deltas}

    def chunk(self, model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return sse(self.envelope(model, "chat.completion.chunk", choices=[choice]))

    def envelope(self, model: str, kind: str, **fields: Any) -> dict[str, Any]:
        return {"id": "chatcmpl-mock", "object": kind, "created": int(time.time()),
                "model": model, **fields}  # fmt: skip

    async def wait_until(self, deadline: float) -> None:
        await asyncio.sleep(max(0.0, deadline - asyncio.get_running_loop().time()))

    async def completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        model = str(body.get("model") or "mock")
        self.calls += 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if body.get("stream"):
                return await self.stream(request, model)
            await asyncio.sleep(self.duration)
            message = {"role": "assistant", "content": WORD * self.deltas}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            data = self.envelope(model, "chat.completion", choices=[choice], usage=self.usage)
            return web.json_response(data)
        finally:
            self.in_flight -= 1

    async def stream(self, request: web.Request, model: str) -> web.StreamResponse:
        start = asyncio.get_running_loop().time()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        step = self.duration / self.deltas
        for i in range(1, self.deltas + 1):
            await self.wait_until(start + i * step)
            delta = {"role": "assistant", "content": WORD} if i == 1 else {"content": WORD}
            await response.write(self.chunk(model, delta))
        tail = self.chunk(model, {}, "stop")
        tail += sse(self.envelope(model, "chat.completion.chunk", choices=[], usage=self.usage))
        await response.write(tail + sse("[DONE]"))
        await response.write_eof()
        return response

    async def ping(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "calls": self.calls,
                "in_flight": self.in_flight,
                "peak_in_flight": self.peak_in_flight,
            }
        )


def make_app(deltas: int, duration: float) -> web.Application:
    mock = MockModel(deltas, duration)
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", mock.completions)
    app.router.add_get("/ping", mock.ping)
    app.router.add_get("/stats", mock.stats)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--deltas", type=int, default=10, help="content deltas per streamed call")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per call")
    args = parser.parse_args()
    if args.deltas < 1 or args.duration <= 0:
        parser.error("--deltas must be >= 1 and --duration > 0")
    raise_nofile_limit()
    try:
        import uvloop
    except ImportError:
        loop_factory = None
    else:
        loop_factory = uvloop.new_event_loop
    app = make_app(args.deltas, args.duration)
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve(app, args.host, args.port))


async def serve(app: web.Application, host: str, port: int) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    # backlog: thousands of clients connect at once when a load level starts
    site = web.TCPSite(runner, host, port, backlog=4096)
    await site.start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    main()
