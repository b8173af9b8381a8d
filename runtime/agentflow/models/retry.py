"""Retrying transient model failures: exponential backoff with full jitter, Retry-After aware.

Only failures that a second attempt can plausibly fix are retried:

* HTTP 408 (request timeout), 429 (rate limit), 500, 502, 503, 504 and the gateway/overload
  statuses 520-524 (Cloudflare, in front of many OpenAI-compatible hosts) and 529 (overloaded).
  500 is included because the big providers return short-lived 500s under load and their own
  SDKs retry them; a 500 caused by the request itself costs at most ``max_attempts`` calls.
* connection failures and resets, and connect/read timeouts.

Never retried: 400, 401, 403, 404, 409, 422 and every other status. Those are caused by the
request or the configuration (bad payload, wrong key, unknown model) and repeating them only
burns quota and hides the bug. 409 is excluded because on most OpenAI-compatible servers it
means a real conflict.

Every retry is logged on the ``agentflow.models`` logger at WARNING with the attempt number,
the attempt budget, the status or error class and the delay; never headers, bodies or keys.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import NoReturn, TypeVar

from agentflow.models.errors import (
    ModelConfigError,
    ModelError,
    ModelHTTPError,
    ModelUnavailableError,
)
from agentflow.utils.config import read

logger = logging.getLogger("agentflow.models")

T = TypeVar("T")

RETRYABLE_STATUS_CODES: frozenset[int] = frozenset(
    {408, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524, 529}
)
MAX_RETRIES_ENV = "AGENTFLOW_MODEL_MAX_RETRIES"


def is_retryable_status(status_code: int) -> bool:
    return status_code in RETRYABLE_STATUS_CODES


def is_retryable(error: BaseException) -> bool:
    """True for transient failures: retryable HTTP statuses, timeouts, connection errors."""
    return isinstance(error, ModelError) and bool(error.retryable)


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``Retry-After`` (seconds or an HTTP date)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms:
        try:
            value = float(raw_ms) / 1000.0
        except ValueError:
            value = -1.0
        if value >= 0:
            return value
    raw = lowered.get("retry-after")
    if not raw:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        current = time.time() if now is None else now
        return max(0.0, when.timestamp() - current)
    return seconds if seconds >= 0 else None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a model call is retried.

    Defaults, and why:

    * ``max_attempts=3`` (the first call plus two retries, like the OpenAI SDK): enough to ride
      out a blip or one rate-limit window; more mostly delays the error a user is waiting for,
      and a ``FallbackChat`` is the better answer to a real outage.
    * ``initial_backoff=0.5``, ``multiplier=2.0``: waits of up to 0.5s, then 1s, ... -- quick
      enough for an interactive request, spaced enough to let a saturated provider recover.
    * ``max_backoff=20.0``: caps one wait (also a server's ``Retry-After``) so a request is not
      parked for minutes.
    * ``jitter=True``: "full jitter" (wait a uniform random time in ``[0, backoff]``), so many
      workers that failed together do not retry together.
    * ``max_total_time=120.0``: no retry is started when its wait would end more than this many
      seconds after the first attempt began -- with the default 60s per-attempt timeout, one
      slow failure plus one retry fits; a server asking to wait past it makes us give up at
      once (so a fallback model can answer instead).

    ``AGENTFLOW_MODEL_MAX_RETRIES`` (retries after the first attempt) overrides
    ``max_attempts`` in ``RetryPolicy.from_env()``, which models use when given no policy.
    """

    max_attempts: int = 3
    initial_backoff: float = 0.5
    max_backoff: float = 20.0
    multiplier: float = 2.0
    jitter: bool = True
    max_total_time: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ModelConfigError(
                f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts}"
            )
        if self.initial_backoff < 0 or self.max_backoff < 0:
            raise ModelConfigError("RetryPolicy backoff values must be >= 0")
        if self.multiplier < 1:
            raise ModelConfigError(f"RetryPolicy.multiplier must be >= 1, got {self.multiplier}")
        if self.max_total_time <= 0:
            raise ModelConfigError("RetryPolicy.max_total_time must be > 0")

    @classmethod
    def from_env(cls, base: RetryPolicy | None = None) -> RetryPolicy:
        """``base`` (or the defaults) with ``AGENTFLOW_MODEL_MAX_RETRIES`` applied when set."""
        policy = base or cls()
        retries: int | None = read(MAX_RETRIES_ENV, error=ModelConfigError)
        return policy if retries is None else replace(policy, max_attempts=retries + 1)

    def with_max_retries(self, retries: int) -> RetryPolicy:
        if retries < 0:
            raise ModelConfigError(f"max_retries must be >= 0, got {retries}")
        return replace(self, max_attempts=retries + 1)

    def backoff(self, retry_number: int) -> float:
        """The wait before retry ``retry_number`` (1 = the first retry), jitter applied."""
        ceiling = min(
            self.max_backoff, self.initial_backoff * self.multiplier ** max(0, retry_number - 1)
        )
        return random.uniform(0.0, ceiling) if self.jitter else ceiling


def _describe(error: BaseException) -> str:
    if isinstance(error, ModelHTTPError):
        return f"HTTP {error.status_code}"
    return type(error).__name__


class AttemptCount:
    """The attempts made for one traced model call: ``call_model`` sets one up around its
    span (only while tracing is on) and writes it to the span as ``agentflow.model.attempts``
    when the call ends. Every :class:`RetryLoop` below it adds its attempts, so the models
    tried by a ``FallbackChat`` add up to one total."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


attempt_count: ContextVar[AttemptCount | None] = ContextVar(
    "agentflow_model_attempts", default=None
)


class RetryLoop:
    """Bookkeeping for one retried call, created just before its first attempt. After each
    failed attempt call :meth:`next_delay`: it returns how long to sleep before the next
    attempt, or raises when the call must stop.

    ``model`` names the model in logs and errors.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        model: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self.model = model
        self.attempt = 1
        self.errors: list[ModelError] = []
        self._clock = clock
        self._start = clock()
        self._count = attempt_count.get()  # None unless call_model traces this call
        if self._count is not None:
            self._count.value += 1

    def elapsed(self) -> float:
        return self._clock() - self._start

    def next_delay(self, error: ModelError) -> float:
        """Record a failed attempt; return the wait before the next one or raise.

        Non-retryable errors are re-raised unchanged. When the attempts or the time budget are
        used up, raises ``ModelUnavailableError`` (or ``ModelTimeoutError`` /
        ``ModelConnectionError`` when that was the last failure) listing every error.
        """
        if not is_retryable(error):
            raise error
        self.errors.append(error)
        policy = self.policy
        if self.attempt >= policy.max_attempts:
            self._give_up(f"gave up after {self.attempt} attempt(s)")
        requested = error.retry_after if isinstance(error, ModelHTTPError) else None
        if requested is not None:
            delay = min(requested, policy.max_backoff)
            wanted = requested
        else:
            delay = policy.backoff(self.attempt)
            wanted = delay
        remaining = policy.max_total_time - self.elapsed()
        if wanted > remaining:
            what = (
                f"the server asked to wait {requested:.1f}s"
                if requested is not None
                else (f"the next wait ({delay:.1f}s)")
            )
            self._give_up(
                f"gave up after {self.attempt} attempt(s): {what}, more than the "
                f"{max(remaining, 0.0):.1f}s left of the retry budget (max_total_time="
                f"{policy.max_total_time:g}s)"
            )
        logger.warning(
            "model %s: attempt %d/%d failed (%s); retrying in %.2fs",
            self.model,
            self.attempt,
            policy.max_attempts,
            _describe(error),
            delay,
            extra={
                "model": self.model,
                "attempt": self.attempt,
                "max_attempts": policy.max_attempts,
                "error_class": type(error).__name__,
                "status_code": getattr(error, "status_code", None),
                "retry_in_s": round(delay, 3),
            },
        )
        self.attempt += 1
        if self._count is not None:
            self._count.value += 1
        return delay

    def _give_up(self, why: str) -> NoReturn:
        last = self.errors[-1]
        cls = type(last) if isinstance(last, ModelUnavailableError) else ModelUnavailableError
        raise cls(
            f"{why} in {self.elapsed():.1f}s; last error: {last.reason}",
            model=self.model,
            errors=self.errors,
        ) from last


async def retry_async(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    model: str,
) -> T:
    """Run ``attempt()`` until it succeeds, retrying transient ``ModelError``s per ``policy``."""
    loop = RetryLoop(policy, model=model)
    while True:
        try:
            return await attempt()
        except ModelError as exc:
            delay = loop.next_delay(exc)
        await asyncio.sleep(delay)
