"""Many concurrent runs against a slow streaming model: none fails because others run, a
model's `max_concurrency` makes runs wait for a slot, and a worker past MAX_ACTIVE_RUNS
refuses new runs at once (503 + Retry-After). Real servers: the app under uvicorn, an
OpenAI-compatible mock on aiohttp, an aiohttp client. Nothing here is timed."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from agentflow.models import OpenAIChat
from agentflow.tools import create_react_agent
from tests.runtime.conftest import ServerFactory, free_port, user_message


@dataclass
class MockModel:
    """Streams `deltas` content chunks `gap` seconds apart per call (or answers the whole
    text after as long, unstreamed); counts calls in flight."""

    url: str
    deltas: int = 5
    gap: float = 0.05
    in_flight: int = 0
    peak: int = 0
    calls: int = 0

    async def chat(self, request: web.Request) -> web.StreamResponse:
        streamed = (await request.json()).get("stream") is True
        self.calls += 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if not streamed:
                await asyncio.sleep(self.gap * self.deltas)
                text = "".join(f"t{i} " for i in range(self.deltas))
                message = {"role": "assistant", "content": text}
                return web.json_response({"choices": [{"index": 0, "message": message}]})
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            for i in range(self.deltas):
                await asyncio.sleep(self.gap)
                chunk = {"choices": [{"index": 0, "delta": {"content": f"t{i} "}}]}
                await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": self.deltas}}  # fmt: skip
            await response.write(b"data: " + json.dumps(done).encode() + b"\n\ndata: [DONE]\n\n")
            return response
        finally:
            self.in_flight -= 1


@pytest.fixture
def mock_model() -> Iterator[MockModel]:
    port = free_port()
    model = MockModel(f"http://127.0.0.1:{port}/v1")
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", model.chat)
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port, backlog=2048).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield model
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def agent_server(make_server: ServerFactory, model: MockModel, **options: Any) -> str:
    env = options.pop("env", {})
    chat = OpenAIChat("mock-2024-01-01", base_url=model.url, api_key="sk-test", **options)
    return make_server(env=env, graph=create_react_agent(chat, []))


async def stream_run(
    session: aiohttp.ClientSession, base: str, thread_id: str
) -> tuple[int, list[str], dict[str, str]]:
    """(status, SSE event names, response headers) of one streamed run."""
    body = user_message("hi", thread_id=thread_id)
    async with session.post(base + "/v1/graph/stream", json=body) as response:
        events = [
            line.decode().removeprefix("event:").strip()
            async for line in response.content
            if line.startswith(b"event:")
        ]
        return response.status, events, dict(response.headers)


async def many_runs(base: str, count: int) -> list[tuple[int, list[str], dict[str, str]]]:
    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        return await asyncio.gather(*(stream_run(session, base, f"t{i}") for i in range(count)))


def test_five_hundred_concurrent_runs_all_complete(
    make_server: ServerFactory, mock_model: MockModel
) -> None:
    base = agent_server(make_server, mock_model)
    results = asyncio.run(many_runs(base, 500))
    assert [status for status, _, _ in results] == [200] * 500
    for _, events, _ in results:
        assert events.count("delta") == mock_model.deltas
        assert events[-1] == "end" and "error" not in events
    assert mock_model.calls == 500
    assert mock_model.peak > 100  # more than the old pool's cap were in flight at once


def test_a_run_over_max_concurrency_waits_for_a_slot(
    make_server: ServerFactory, mock_model: MockModel
) -> None:
    base = agent_server(make_server, mock_model, max_concurrency=2)
    results = asyncio.run(many_runs(base, 8))
    assert all(status == 200 and events[-1] == "end" for status, events, _ in results)
    assert mock_model.calls == 8 and mock_model.peak == 2


def test_past_max_active_runs_new_runs_are_refused_at_once(
    make_server: ServerFactory, mock_model: MockModel
) -> None:
    mock_model.gap = 0.2  # each run holds its place for about a second
    base = agent_server(make_server, mock_model, env={"MAX_ACTIVE_RUNS": "5"})
    results = asyncio.run(many_runs(base, 12))
    done = [events for status, events, _ in results if status == 200]
    refused = [headers for status, _, headers in results if status == 503]
    assert len(done) == 5 and all(events[-1] == "end" for events in done)
    assert len(refused) == 7
    assert all(headers["Retry-After"] == "1" for headers in refused)
    assert mock_model.calls == 5

    async def refusal() -> dict[str, Any]:
        async with aiohttp.ClientSession() as session:
            slow = [asyncio.create_task(stream_run(session, base, f"s{i}")) for i in range(5)]
            await asyncio.sleep(0.3)
            body = user_message("one more")
            async with session.post(base + "/v1/graph/invoke", json=body) as response:
                answer: dict[str, Any] = await response.json()
                assert response.status == 503
            await asyncio.gather(*slow)
            async with session.post(base + "/v1/graph/invoke", json=body) as response:
                assert response.status == 200  # room again once the runs ended
            return answer

    error = asyncio.run(refusal())["error"]
    assert error["code"] == "overloaded" and "MAX_ACTIVE_RUNS" in error["message"]
