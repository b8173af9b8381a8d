"""Retry policy: what is retried, how long we wait, what is logged."""

from __future__ import annotations

import email.utils
import logging
import time
from typing import TYPE_CHECKING

import pytest

from agentflow.graph.messages import Message
from agentflow.models import (
    RETRYABLE_STATUS_CODES,
    ModelConfigError,
    ModelHTTPError,
    ModelTimeoutError,
    ModelUnavailableError,
    OpenAIChat,
    RetryPolicy,
    is_retryable,
    retry_async,
)
from agentflow.models.retry import RetryLoop, parse_retry_after

if TYPE_CHECKING:
    from .conftest import FakeProvider

MODEL = "gpt-test-2024-01-01"


def make_model(provider: FakeProvider, key: str, retry: RetryPolicy) -> OpenAIChat:
    return OpenAIChat(MODEL, base_url=provider.url, api_key=key, retry=retry)


async def test_429_with_retry_after_is_honoured(
    provider: FakeProvider, secret_key: str, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING, logger="agentflow.models")
    provider.error(429, "slow down", headers={"Retry-After": "1"})
    provider.json(provider.completion("after the wait"))
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=5.0, jitter=False)

    reply = await make_model(provider, secret_key, policy).ainvoke([Message.user("hi")])

    assert reply.content == "after the wait"
    assert provider.attempts == 2
    gap = provider.requests[1].at - provider.requests[0].at
    assert 0.9 <= gap < 2.0
    [record] = [r for r in caplog.records if r.name == "agentflow.models"]
    assert record.levelno == logging.WARNING
    text = record.getMessage()
    assert "attempt 1/3" in text
    assert "HTTP 429" in text
    assert "1.00s" in text
    assert record.__dict__["model"] == MODEL
    assert record.__dict__["status_code"] == 429


async def test_retry_after_ms_is_preferred(provider: FakeProvider, secret_key: str):
    provider.error(429, "slow down", headers={"retry-after-ms": "150", "Retry-After": "30"})
    provider.json(provider.completion("ok"))
    policy = RetryPolicy(initial_backoff=0.01, max_backoff=5.0, jitter=False)

    started = time.monotonic()
    await make_model(provider, secret_key, policy).ainvoke([Message.user("hi")])

    assert provider.attempts == 2
    assert 0.14 <= time.monotonic() - started < 1.5


async def test_retry_after_is_capped_by_max_backoff(provider: FakeProvider, secret_key: str):
    provider.error(503, "busy", headers={"Retry-After": "3"})
    provider.json(provider.completion("ok"))
    policy = RetryPolicy(initial_backoff=0.01, max_backoff=0.1, jitter=False, max_total_time=10)

    started = time.monotonic()
    await make_model(provider, secret_key, policy).ainvoke([Message.user("hi")])

    assert provider.attempts == 2
    assert time.monotonic() - started < 1.0


async def test_retry_after_beyond_the_budget_gives_up_at_once(
    provider: FakeProvider, secret_key: str
):
    provider.error(429, "slow down", headers={"Retry-After": "30"})
    provider.json(provider.completion("never"))
    policy = RetryPolicy(max_attempts=5, max_backoff=60, max_total_time=5)

    started = time.monotonic()
    with pytest.raises(ModelUnavailableError) as info:
        await make_model(provider, secret_key, policy).ainvoke([Message.user("hi")])

    assert time.monotonic() - started < 1.0
    assert provider.attempts == 1
    assert "30.0s" in str(info.value)
    assert "max_total_time" in str(info.value)
    [error] = info.value.errors
    assert isinstance(error, ModelHTTPError) and error.status_code == 429


async def test_503_then_success(provider: FakeProvider, secret_key: str, fast_retry: RetryPolicy):
    provider.error(503, "overloaded")
    provider.json(provider.completion("recovered"))

    reply = await make_model(provider, secret_key, fast_retry).ainvoke([Message.user("hi")])

    assert reply.content == "recovered"
    assert provider.attempts == 2


@pytest.mark.parametrize("status", [408, 500, 502, 504])
async def test_other_transient_statuses_are_retried(
    provider: FakeProvider, secret_key: str, fast_retry: RetryPolicy, status: int
):
    provider.error(status)
    provider.json(provider.completion("ok"))

    await make_model(provider, secret_key, fast_retry).ainvoke([Message.user("hi")])

    assert provider.attempts == 2


async def test_exhausted_retries_raise_unavailable_with_every_error(
    provider: FakeProvider, secret_key: str, fast_retry: RetryPolicy
):
    provider.error(500).error(502).error(503).json(provider.completion("too late"))

    with pytest.raises(ModelUnavailableError) as info:
        await make_model(provider, secret_key, fast_retry).ainvoke([Message.user("hi")])

    assert provider.attempts == 3
    assert [e.status_code for e in info.value.errors] == [500, 502, 503]  # type: ignore[attr-defined]
    assert "3 attempt" in str(info.value)
    assert "HTTP 503" in str(info.value)
    assert isinstance(info.value.__cause__, ModelHTTPError)


async def test_retry_logs_never_contain_the_key(
    provider: FakeProvider,
    secret_key: str,
    fast_retry: RetryPolicy,
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.DEBUG)
    provider.error(503, f"key {secret_key} is overloaded").error(503, f"again {secret_key}")
    provider.error(503, secret_key)

    with pytest.raises(ModelUnavailableError) as info:
        await make_model(provider, secret_key, fast_retry).ainvoke([Message.user("hi")])

    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2
    assert secret_key not in caplog.text
    assert secret_key not in str(info.value)
    assert all(secret_key not in str(e) for e in info.value.errors)


# -- the policy itself --------------------------------------------------------------------------


def test_defaults_are_sensible():
    policy = RetryPolicy()
    assert policy.max_attempts == 3
    assert policy.jitter
    assert 0 < policy.initial_backoff <= 1
    assert policy.max_backoff <= 30
    assert policy.max_total_time >= 60


def test_retryable_statuses():
    for status in (408, 429, 500, 502, 503, 504):
        assert status in RETRYABLE_STATUS_CODES
    for status in (400, 401, 403, 404, 409, 422, 501):
        assert status not in RETRYABLE_STATUS_CODES


def test_is_retryable_by_error():
    assert is_retryable(ModelHTTPError(503, "x", retryable=True))
    assert not is_retryable(ModelHTTPError(401, "x"))
    assert is_retryable(ModelTimeoutError("slow"))
    assert not is_retryable(ModelConfigError("bad"))
    assert not is_retryable(ValueError("bug"))


def test_backoff_grows_exponentially_and_is_capped():
    policy = RetryPolicy(initial_backoff=0.5, multiplier=2, max_backoff=3, jitter=False)
    assert [policy.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_full_jitter_stays_within_the_backoff():
    policy = RetryPolicy(initial_backoff=1.0, multiplier=2, max_backoff=4)
    delays = [policy.backoff(3) for _ in range(200)]
    assert all(0 <= d <= 4.0 for d in delays)
    assert len(set(delays)) > 1


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"initial_backoff": -1}, {"multiplier": 0.5}, {"max_total_time": 0}],
)
def test_invalid_policies_are_refused(kwargs: dict[str, float]):
    with pytest.raises(ModelConfigError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_env_overrides_max_retries(monkeypatch: pytest.MonkeyPatch):
    assert RetryPolicy.from_env() == RetryPolicy()
    monkeypatch.setenv("AGENTFLOW_MODEL_MAX_RETRIES", "0")
    assert RetryPolicy.from_env().max_attempts == 1
    monkeypatch.setenv("AGENTFLOW_MODEL_MAX_RETRIES", "many")
    with pytest.raises(ModelConfigError, match="AGENTFLOW_MODEL_MAX_RETRIES"):
        RetryPolicy.from_env()


def test_parse_retry_after():
    now = time.time()
    assert parse_retry_after({"Retry-After": "2"}) == 2.0
    assert parse_retry_after({"retry-after": "0.5"}) == 0.5
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({}) is None
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({"Retry-After": "-3"}) is None
    date = email.utils.formatdate(now + 10, usegmt=True)
    waited = parse_retry_after({"Retry-After": date}, now=now)
    assert waited is not None and 8.5 <= waited <= 10.5
    past = email.utils.formatdate(now - 100, usegmt=True)
    assert parse_retry_after({"Retry-After": past}, now=now) == 0.0


def test_retry_loop_raises_non_retryable_errors_unchanged():
    loop = RetryLoop(RetryPolicy(), model="m")
    error = ModelHTTPError(400, "bad")
    with pytest.raises(ModelHTTPError) as info:
        loop.next_delay(error)
    assert info.value is error


async def test_retry_async_retries_transient_errors_only():
    calls: list[int] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ModelTimeoutError("slow", model="m")
        return "done"

    policy = RetryPolicy(max_attempts=3, initial_backoff=0.001, jitter=False)
    assert await retry_async(flaky, policy, model="m") == "done"
    assert len(calls) == 3

    async def buggy() -> str:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError):
        await retry_async(buggy, policy, model="m")
