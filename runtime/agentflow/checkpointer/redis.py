"""Redis as an optional accelerator next to Postgres: a link that tolerates outages, and a
cache of each thread's latest snapshot.

The cache is never trusted on its own: Postgres confirms that a hit is the thread's latest
checkpoint (one index probe) before it is used, so writes Redis never saw (it was down, or
restarted with old data) cannot make anyone read stale state. What the cache saves is loading
the conversation's messages.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from agentflow.graph.messages import Message
from agentflow.graph.storage import Checkpoint, ThreadSnapshot

logger = logging.getLogger("agentflow.checkpointer.redis")
R = TypeVar("R")
PROBE_INTERVAL = 1.0
CACHE_TTL = 3600


class RedisLink:
    """A Redis client that never raises on outages: calls return None and mark the link
    down; a background probe brings it back."""

    def __init__(self, url: str, *, prefix: str = "agentflow", timeout: float = 0.5) -> None:
        self.url = url
        self.prefix = prefix
        self.client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry_on_timeout=False,
            decode_responses=False,
        )
        self.healthy = False
        self._probe: asyncio.Task[None] | None = None

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    async def connect(self) -> None:
        await self._check()
        if not self.healthy:
            logger.warning("Redis is unreachable; serving from Postgres until it is back")
            self._start_probe()

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None
        await self.client.aclose()

    async def call(self, fn: Callable[[aioredis.Redis], Awaitable[R]]) -> R | None:
        """Run `fn` against Redis; None (and a background probe) when Redis fails."""
        if not self.healthy:
            return None
        try:
            return await fn(self.client)
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            self.mark_down(exc)
            return None

    def mark_down(self, exc: BaseException) -> None:
        """Redis failed (a call here, or a connection of the caller's own, such as a
        subscription): calls return None until the probe finds it back."""
        if self.healthy:
            logger.warning("Redis failed (%s); falling back to Postgres", type(exc).__name__)
        self.healthy = False
        self._start_probe()

    def _start_probe(self) -> None:
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self._probe_until_back(), name="redis-probe")

    async def _probe_until_back(self) -> None:
        while not self.healthy:
            await asyncio.sleep(PROBE_INTERVAL)
            await self._check()
        logger.info("Redis is back")

    async def _check(self) -> None:
        try:
            await self.client.ping()
            self.healthy = True
        except (RedisError, OSError, asyncio.TimeoutError):
            self.healthy = False


class SnapshotCache:
    """Latest snapshot per thread; callers confirm a hit against Postgres."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link

    async def get(self, thread_id: str) -> ThreadSnapshot | None:
        key = self.link.key("snap", thread_id)
        raw = await self.link.call(lambda r: r.get(key))
        if raw is None:
            return None
        data = json.loads(raw)
        return ThreadSnapshot(
            Checkpoint.from_dict(data["checkpoint"]),
            [Message.from_dict(m) for m in data["messages"]],
        )

    async def store(self, snapshot: ThreadSnapshot) -> None:
        key = self.link.key("snap", snapshot.checkpoint.thread_id)
        payload = json.dumps(
            {
                "checkpoint": snapshot.checkpoint.to_dict(),
                "messages": [m.to_dict() for m in snapshot.messages],
            },
            separators=(",", ":"),
        )
        await self.link.call(lambda r: r.set(key, payload, ex=CACHE_TTL))

    async def forget(self, thread_id: str) -> None:
        key = self.link.key("snap", thread_id)
        await self.link.call(lambda r: r.delete(key))
