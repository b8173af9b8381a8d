"""Inbound rate limits: per user (per client IP without auth) and global, fixed windows.

Counted in Redis when the Postgres checkpointer has one, so every worker shares the budget
(INCR + PEXPIRE in one MULTI per request); in process memory otherwise, and whenever Redis is
down (each worker then enforces the limits on its own until Redis is back).

Over a limit: 429 `rate_limited` with `Retry-After`; every response of a limited route
carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from agentflow.runtime.errors import ApiError
from agentflow.runtime.settings import Rate, RateLimitSettings

RESPONSE_HEADERS = "response_headers"  # scope["state"] key the middleware adds to responses
UNLIMITED_PATHS = frozenset({"/v1/graph"})  # /v1 routes that are not limited


@dataclass(frozen=True, slots=True)
class Hit:
    """One counter after counting this request."""

    name: str  # "per-user" | "global"
    rate: Rate
    count: int
    reset: float  # seconds until the window ends

    @property
    def remaining(self) -> int:
        return max(0, self.rate.limit - self.count)

    @property
    def exceeded(self) -> bool:
        return self.count > self.rate.limit


class MemoryCounter:
    """Fixed windows in this process. Keys name their window, so a key is only ever counted
    within one window; {key: (window end, count)}."""

    def __init__(self) -> None:
        self._counts: dict[str, tuple[float, int]] = {}

    def incr(self, keys: Sequence[tuple[str, Rate]], now: float) -> list[tuple[int, float]]:
        if len(self._counts) > 10_000:
            self._counts = {k: v for k, v in self._counts.items() if v[0] > now}
        out = []
        for key, rate in keys:
            ends = (int(now // rate.window) + 1) * rate.window
            count = self._counts.get(key, (ends, 0))[1] + 1
            self._counts[key] = (ends, count)
            out.append((count, ends - now))
        return out


class RateLimiter:
    def __init__(self, settings: RateLimitSettings, *, by_ip: bool, redis: Any = None) -> None:
        self.settings = settings
        self.by_ip = by_ip  # no authentication: the client IP stands for the user
        self.redis = redis  # agentflow.checkpointer.redis.RedisLink | None
        self.memory = MemoryCounter()

    async def check(self, request: Request, user_id: str) -> None:
        """Count the request; 429 when a limit is exceeded, else note the headers."""
        if request.scope["path"] in UNLIMITED_PATHS:  # request.url would build a URL object
            return
        if self.by_ip:
            client = request.client
            who = "ip:" + (client.host if client is not None else "unknown")
        else:
            who = "user:" + user_id
        limits: list[tuple[str, str, Rate]] = []
        if self.settings.global_ is not None:
            limits.append(("global", "global", self.settings.global_))
        if self.settings.per_user is not None:
            limits.append(("per-user", who, self.settings.per_user))
        hits = await self._count(limits)
        worst = hits[0] if len(hits) == 1 else min(hits, key=_tightness)
        headers = {
            "RateLimit-Limit": str(worst.rate.limit),
            "RateLimit-Remaining": str(worst.remaining),
            "RateLimit-Reset": str(max(1, math.ceil(worst.reset))),
        }
        exceeded = [h for h in hits if h.exceeded]
        if exceeded:
            hit = max(exceeded, key=lambda h: h.reset)
            retry = max(1, math.ceil(hit.reset))
            headers.update(
                {
                    "RateLimit-Limit": str(hit.rate.limit),
                    "RateLimit-Remaining": "0",
                    "RateLimit-Reset": str(retry),
                    "Retry-After": str(retry),
                }
            )
            whose = (
                "the server's global"
                if hit.name == "global"
                else ("this client's" if self.by_ip else "this user's")
            )
            raise ApiError(
                429,
                "rate_limited",
                f"{whose} rate limit of {hit.rate.text} is exceeded; retry in {retry} s",
                headers=headers,
            )
        request.scope["state"].setdefault(RESPONSE_HEADERS, {}).update(headers)

    async def _count(self, limits: list[tuple[str, str, Rate]]) -> list[Hit]:
        now = time.time()
        keys = [
            (f"rl:{scope}:{int(rate.window)}:{int(now // rate.window)}", rate)
            for _, scope, rate in limits
        ]
        counted: list[tuple[int, float]] | None = None
        if self.redis is not None:
            counted = await self._redis_incr(keys, now)
        if counted is None:
            counted = self.memory.incr(keys, now)
        return [
            Hit(name, rate, count, reset)
            for (name, _, rate), (count, reset) in zip(limits, counted, strict=True)
        ]

    async def _redis_incr(
        self, keys: list[tuple[str, Rate]], now: float
    ) -> list[tuple[int, float]] | None:
        link = self.redis
        full = [(link.key(key), rate) for key, rate in keys]

        async def incr(client: Any) -> list[Any]:
            async with client.pipeline(transaction=True) as pipe:
                for key, rate in full:
                    pipe.incr(key)
                    pipe.pexpire(key, int(rate.window * 1000) + 1000)
                result: list[Any] = await pipe.execute()
                return result

        result = await link.call(incr)
        if result is None:
            return None
        return [
            (int(result[2 * i]), (int(now // rate.window) + 1) * rate.window - now)
            for i, (_, rate) in enumerate(full)
        ]


def _tightness(hit: Hit) -> tuple[int, float]:
    return hit.remaining, -hit.reset


def build_limiter(settings: Any, checkpointer: Any) -> RateLimiter | None:
    """The limiter for these Settings, sharing the checkpointer's Redis when it has one."""
    if settings.rate_limits is None:
        return None
    return RateLimiter(
        settings.rate_limits,
        by_ip=settings.auth is None,
        redis=getattr(checkpointer, "redis", None),
    )
