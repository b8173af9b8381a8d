"""Inbound rate limits: per user (per client IP without auth) and global, fixed windows.

Counted in Redis when the Postgres checkpointer has one, so every worker shares the budget;
in process memory otherwise, and whenever Redis is down (each worker then enforces the
limits on its own until Redis is back).

Redis is not asked once per request. A worker reserves a block of counts for a window with
one INCRBY and hands them out locally; the block grows (doubling, at most 1% of the limit
and at most 64) while the key is busy and shrinks again when a window ends with counts left.
Every request still gets its own position in the shared count, so the limit is never
exceeded across workers; the price is that counts a worker reserved and did not use are lost
for that window (at most 1% of the limit per worker). A limit of 100 or less per window is
counted exactly, one INCRBY per request.

Over a limit: 429 `rate_limited` with `Retry-After`; every response of a limited route
carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds).
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from agentflow.runtime.errors import ApiError
from agentflow.runtime.middleware import RESPONSE_HEADERS
from agentflow.runtime.settings import Rate, RateLimitSettings

UNLIMITED_PATHS = frozenset({"/v1/graph"})  # /v1 routes that are not limited
MAX_BLOCK = 64  # counts one Redis reservation may take
PRUNE_AT = 10_000  # keys kept in memory before windows that ended are dropped


@dataclass(frozen=True, slots=True)
class Limit:
    name: str  # "per-user" | "global"
    rate: Rate
    block: int  # the largest Redis reservation for this limit

    @classmethod
    def of(cls, name: str, rate: Rate) -> Limit:
        return cls(name, rate, max(1, min(MAX_BLOCK, rate.limit // 100)))


class Lease:
    """Counts first..last of one key's window, reserved in Redis by this worker."""

    __slots__ = ("block", "last", "next", "pending", "window")

    def __init__(self) -> None:
        self.window = -1
        self.next = 1
        self.last = 0
        self.block = 1
        self.pending: asyncio.Future[None] | None = None  # a reservation in flight

    def take(self, window: int) -> int | None:
        """The next reserved position in `window`; None when there is none left."""
        if self.window != window or self.next > self.last:
            return None
        self.next += 1
        return self.next - 1


class Counter:
    """Each key's position in its current window: in memory, or in Redis through leases."""

    def __init__(self, redis: Any = None) -> None:
        self.redis = redis  # agentflow.checkpointer.redis.RedisLink | None
        self._memory: dict[str, tuple[int, int]] = {}  # key -> (window, count)
        self._leases: dict[str, Lease] = {}

    async def take(self, key: str, limit: Limit, window: int) -> int:
        """Count one request for `key` in `window`; its 1-based position in the window."""
        if self.redis is not None and self.redis.healthy:
            lease = self._leases.get(key)
            position = lease.take(window) if lease is not None else None
            if position is None:
                position = await self._take_leased(key, limit, window)
            if position is not None:
                return position
        return self._take_memory(key, window)

    def _take_memory(self, key: str, window: int) -> int:
        memory = self._memory
        seen = memory.get(key)
        count = seen[1] + 1 if seen is not None and seen[0] == window else 1
        if count == 1 and len(memory) > PRUNE_AT:
            self._memory = memory = {k: v for k, v in memory.items() if v[0] >= window - 1}
        memory[key] = (window, count)
        return count

    async def _take_leased(self, key: str, limit: Limit, window: int) -> int | None:
        leases = self._leases
        lease = leases.get(key)
        if lease is None:
            if len(leases) > PRUNE_AT:
                self._leases = leases = {k: v for k, v in leases.items() if v.window >= window - 1}
            lease = leases[key] = Lease()
        while lease.pending is not None:  # another request is reserving for this key: wait
            await asyncio.shield(lease.pending)
            position = lease.take(window)
            if position is not None:
                return position
        if lease.window == window:  # used up within its window: busy key, bigger blocks
            lease.block = min(limit.block, lease.block * 2)
        elif lease.next <= lease.last:  # a window ended with counts left: smaller blocks
            lease.block = max(1, lease.block // 2)
        block = min(lease.block, limit.block)
        pending = lease.pending = asyncio.get_running_loop().create_future()
        try:
            last = await self._reserve(key, limit.rate, window, block)
        finally:
            lease.pending = None
            pending.set_result(None)
        if last is None:
            return None
        lease.window, lease.next, lease.last = window, last - block + 2, last
        return last - block + 1

    async def _reserve(self, key: str, rate: Rate, window: int, block: int) -> int | None:
        name = self.redis.key("rl", key, str(int(rate.window)), str(window))
        ttl = int(rate.window * 1000) + 1000

        async def incr(client: Any) -> int:
            async with client.pipeline(transaction=True) as pipe:
                pipe.incrby(name, block)
                pipe.pexpire(name, ttl)
                result: list[Any] = await pipe.execute()
            return int(result[0])

        last: int | None = await self.redis.call(incr)
        return last


class RateLimiter:
    def __init__(self, settings: RateLimitSettings, *, by_ip: bool, redis: Any = None) -> None:
        self.settings = settings
        self.by_ip = by_ip  # no authentication: the client IP stands for the user
        self.limits = [
            Limit.of(name, rate)
            for name, rate in (("global", settings.global_), ("per-user", settings.per_user))
            if rate is not None
        ]
        self.counter = Counter(redis)

    async def check(self, request: Request, user_id: str) -> None:
        """Count the request; 429 when a limit is exceeded, else note the headers."""
        scope = request.scope
        if scope["path"] in UNLIMITED_PATHS:  # request.url would build a URL object
            return
        if self.by_ip:
            client = scope.get("client")
            who = "ip:" + (client[0] if client else "unknown")
        else:
            who = "user:" + user_id
        now = time.time()
        tightest: tuple[int, float, Limit] | None = None  # (remaining, reset, limit)
        exceeded: tuple[float, Limit] | None = None  # the limit whose window ends last
        for limit in self.limits:
            window = int(now // limit.rate.window)
            key = "global" if limit.name == "global" else who
            position = await self.counter.take(key, limit, window)
            reset = (window + 1) * limit.rate.window - now
            remaining = limit.rate.limit - position
            if remaining < 0:
                if exceeded is None or reset > exceeded[0]:
                    exceeded = (reset, limit)
            elif tightest is None or (remaining, -reset) < (tightest[0], -tightest[1]):
                tightest = (remaining, reset, limit)
        if exceeded is not None:
            raise self._refusal(*exceeded)
        assert tightest is not None
        remaining, reset, limit = tightest
        scope["state"][RESPONSE_HEADERS] = [
            (b"ratelimit-limit", str(limit.rate.limit).encode()),
            (b"ratelimit-remaining", str(remaining).encode()),
            (b"ratelimit-reset", str(max(1, math.ceil(reset))).encode()),
        ]

    def _refusal(self, reset: float, limit: Limit) -> ApiError:
        retry = max(1, math.ceil(reset))
        if limit.name == "global":
            whose = "the server's global"
        else:
            whose = "this client's" if self.by_ip else "this user's"
        return ApiError(
            429,
            "rate_limited",
            f"{whose} rate limit of {limit.rate.text} is exceeded; retry in {retry} s",
            headers={
                "RateLimit-Limit": str(limit.rate.limit),
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(retry),
                "Retry-After": str(retry),
            },
        )


def build_limiter(settings: Any, checkpointer: Any) -> RateLimiter | None:
    """The limiter for these Settings, sharing the checkpointer's Redis when it has one."""
    if settings.rate_limits is None:
        return None
    return RateLimiter(
        settings.rate_limits,
        by_ip=settings.auth is None,
        redis=getattr(checkpointer, "redis", None),
    )
