"""Outbound limits per model: at most N requests in flight and M requests per minute,
shared by every OpenAIChat of one (base URL, model) in the process, so one busy tenant does
not trip the provider's 429s for everyone.

Callers wait for a slot rather than fail; a wait longer than `max_wait` raises
`ModelLimitError` (a ModelUnavailableError). Requests are spaced evenly: the token bucket
holds one token and refills `rate` tokens per second (requests_per_minute / 60).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable

from agentflow.errors import ModelConfigError
from agentflow.errors import ModelLimitError as ModelLimitError
from agentflow.utils.config import read

MAX_CONCURRENCY_ENV = "AGENTFLOW_MODEL_MAX_CONCURRENCY"
RPM_ENV = "AGENTFLOW_MODEL_RPM"


class TokenBucket:
    """`rate` tokens per second, at most `capacity` saved up; `take` waits for one."""

    def __init__(
        self, rate: float, capacity: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.capacity = capacity
        self.clock = clock
        self.tokens = capacity
        self.updated = clock()
        self._lock = asyncio.Lock()  # first come, first served

    async def take(self, deadline: float) -> bool:
        """Take a token, waiting until `deadline` (clock time) at most; False if it passed."""
        async with self._lock:
            while True:
                now = self.clock()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
                self.updated = now
                if self.tokens >= 1.0:
                    self.tokens -= 1.0
                    return True
                wait = (1.0 - self.tokens) / self.rate
                if now + wait > deadline:
                    return False
                await asyncio.sleep(wait)


class ModelLimiter:
    def __init__(self, max_concurrency: int | None, requests_per_minute: int | None) -> None:
        self.max_concurrency = max_concurrency
        self.requests_per_minute = requests_per_minute
        self.semaphore = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        self.bucket = TokenBucket(requests_per_minute / 60.0) if requests_per_minute else None
        self.in_flight = 0

    @contextlib.asynccontextmanager
    async def slot(self, max_wait: float, model: str | None = None) -> AsyncIterator[None]:
        """Hold one request slot for the block; wait up to `max_wait` seconds for it."""
        deadline = time.monotonic() + max_wait
        if self.semaphore is not None:
            try:
                await asyncio.wait_for(self.semaphore.acquire(), max_wait)
            except asyncio.TimeoutError:
                raise self._error(
                    "max_concurrency", self.max_concurrency, max_wait, model
                ) from None
        try:
            if self.bucket is not None and not await self.bucket.take(deadline):
                raise self._error("requests_per_minute", self.requests_per_minute, max_wait, model)
            self.in_flight += 1
            try:
                yield
            finally:
                self.in_flight -= 1
        finally:
            if self.semaphore is not None:
                self.semaphore.release()

    @staticmethod
    def _error(what: str, value: int | None, max_wait: float, model: str | None) -> ModelLimitError:
        return ModelLimitError(
            f"no request slot within {max_wait:g}s under the local limit {what}={value}; "
            "raise the limit or the timeout, or reduce the load",
            model=model,
        )


_limiters: dict[tuple[asyncio.AbstractEventLoop, str, str], ModelLimiter] = {}
_lock = threading.Lock()


def shared_limiter(
    base_url: str, model: str, max_concurrency: int | None, requests_per_minute: int | None
) -> ModelLimiter | None:
    """The limiter of (base_url, model) in the running event loop; None without limits. The
    first caller's limits win for a key."""
    if not max_concurrency and not requests_per_minute:
        return None
    loop = asyncio.get_running_loop()
    with _lock:
        for key in [k for k in _limiters if k[0].is_closed()]:
            del _limiters[key]
        limiter = _limiters.get((loop, base_url, model))
        if limiter is None:
            limiter = ModelLimiter(max_concurrency, requests_per_minute)
            _limiters[(loop, base_url, model)] = limiter
        return limiter


def limit_option(value: int | None, env_name: str, what: str) -> int | None:
    """The option, else the declared environment setting; a positive integer or None."""
    if value is None:
        limit: int | None = read(env_name, error=ModelConfigError)
        return limit
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelConfigError(f"{what} must be a positive integer, got {value!r}")
    return value
