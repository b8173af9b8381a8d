"""Outbound limits against the local chat-completions server: concurrency never above
max_concurrency at the server, requests spread by requests_per_minute, a bounded wait, and the
env defaults."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import TYPE_CHECKING

import pytest

from agentflow.graph.messages import Message
from agentflow.models import ModelConfigError, ModelUnavailableError, OpenAIChat
from agentflow.models.limits import ModelLimitError, TokenBucket
from tests.models.conftest import FAST_RETRY

if TYPE_CHECKING:
    from .conftest import FakeProvider

HI = [Message(role="user", content="hi")]
DELAY = 0.2


def max_overlap(starts: list[float], duration: float) -> int:
    """Most requests the server held at once, each held `duration` after it arrived."""
    return max(sum(1 for s in starts if t - duration * 0.9 < s <= t) for t in starts)


@pytest.fixture(autouse=True)
def _no_limit_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTFLOW_MODEL_MAX_CONCURRENCY", raising=False)
    monkeypatch.delenv("AGENTFLOW_MODEL_RPM", raising=False)


async def test_max_concurrency_bounds_requests_in_flight(provider: FakeProvider) -> None:
    for _ in range(6):
        provider.json(provider.completion("ok"), delay=DELAY)
    model = OpenAIChat("gpt-test-2024-01-01", base_url=provider.url, max_concurrency=2)
    started = time.monotonic()
    replies = await asyncio.gather(*(model.ainvoke(HI) for _ in range(6)))
    elapsed = time.monotonic() - started
    assert [r.text for r in replies] == ["ok"] * 6
    assert max_overlap([r.at for r in provider.requests], DELAY) == 2
    assert elapsed >= 3 * DELAY * 0.95  # three rounds of two


async def test_limit_is_shared_by_instances_of_one_model(provider: FakeProvider) -> None:
    for _ in range(4):
        provider.json(provider.completion("ok"), delay=DELAY)
    models = [
        OpenAIChat("gpt-test-2024-01-01", base_url=provider.url, max_concurrency=1)
        for _ in range(4)
    ]
    await asyncio.gather(*(m.ainvoke(HI) for m in models))
    assert max_overlap([r.at for r in provider.requests], DELAY) == 1


async def test_streams_hold_their_slot(provider: FakeProvider) -> None:
    for _ in range(3):
        provider.stream(provider.text_stream("a", "b"), event_delay=DELAY / 4)
    model = OpenAIChat("gpt-test-2024-01-01", base_url=provider.url, max_concurrency=1)

    async def read() -> str:
        return "".join([c async for c in model.astream(HI) if isinstance(c, str)])

    assert await asyncio.gather(read(), read(), read()) == ["ab"] * 3
    starts = [r.at for r in provider.requests]
    assert all(b - a >= DELAY * 0.9 for a, b in itertools.pairwise(starts))


async def test_requests_per_minute_spreads_calls(provider: FakeProvider) -> None:
    for _ in range(5):
        provider.json(provider.completion("ok"))
    model = OpenAIChat("gpt-test-2024-01-01", base_url=provider.url, requests_per_minute=600)
    await asyncio.gather(*(model.ainvoke(HI) for _ in range(5)))
    starts = sorted(r.at for r in provider.requests)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.1 * 0.8, gaps  # 600/minute = one every 0.1 s
    assert starts[-1] - starts[0] >= 0.4 * 0.9


async def test_wait_is_bounded_by_the_timeout(provider: FakeProvider) -> None:
    provider.json(provider.completion("ok"))
    model = OpenAIChat(
        "gpt-test-2024-01-01",
        base_url=provider.url,
        requests_per_minute=6,  # one every 10 s
        timeout=0.3,
        retry=FAST_RETRY,
    )
    assert (await model.ainvoke(HI)).text == "ok"
    started = time.monotonic()
    with pytest.raises(ModelLimitError) as caught:
        await model.ainvoke(HI)
    assert time.monotonic() - started < 1.0  # no waiting past the deadline, no retries
    assert isinstance(caught.value, ModelUnavailableError)
    assert "requests_per_minute=6" in str(caught.value)
    assert provider.attempts == 1


async def test_token_bucket_refill() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=2.0, clock=lambda: now[0])
    assert await bucket.take(deadline=0.0)
    assert not await bucket.take(deadline=0.1)  # the next token is 0.5 s away
    now[0] = 0.5
    assert await bucket.take(deadline=0.5)


def test_env_defaults_and_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTFLOW_MODEL_MAX_CONCURRENCY", "3")
    monkeypatch.setenv("AGENTFLOW_MODEL_RPM", "120")
    model = OpenAIChat("gpt-test-2024-01-01", base_url="http://127.0.0.1:9/v1")
    assert (model.max_concurrency, model.requests_per_minute) == (3, 120)
    explicit = OpenAIChat("m-1", base_url="http://127.0.0.1:9/v1", max_concurrency=1)
    assert explicit.max_concurrency == 1
    monkeypatch.setenv("AGENTFLOW_MODEL_RPM", "lots")
    with pytest.raises(ModelConfigError, match="AGENTFLOW_MODEL_RPM"):
        OpenAIChat("m-1", base_url="http://127.0.0.1:9/v1")
    monkeypatch.delenv("AGENTFLOW_MODEL_RPM")
    with pytest.raises(ModelConfigError, match="max_concurrency"):
        OpenAIChat("m-1", base_url="http://127.0.0.1:9/v1", max_concurrency=0)
