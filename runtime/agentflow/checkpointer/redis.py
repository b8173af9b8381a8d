"""Redis as an optional accelerator next to Postgres: a link that tolerates outages, and a
cache of each thread's latest snapshot that never serves stale data.

Staleness rules: every cached snapshot carries its checkpoint `step` (monotonic per thread).
After each committed write the writer raises `ver:<thread>` to the new step; a cached entry is
used only if its step >= that version, read together in one MGET. If Redis could not be told
about a write (it was down), the link is marked dirty and, when Redis comes back, bumps a
global generation that every key includes, so nothing cached before the outage is used.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from agentflow.checkpointer.base import Checkpoint, ThreadSnapshot
from agentflow.graph.messages import Message

logger = logging.getLogger("agentflow.checkpointer.redis")
R = TypeVar("R")
PROBE_INTERVAL = 1.0
CACHE_TTL = 3600

_SET_IF_NEWER = """
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
return 1
"""
_CACHE_IF_CURRENT = """
local version = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) >= version then
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
end
return 1
"""


class RedisLink:
    """A Redis client that never raises on outages: calls return None and mark the link
    down; a probe brings it back (after invalidating the cache generation)."""

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
        self.dirty = False
        self.generation = 0
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
            self._mark_down(exc)
            return None

    async def write(self, fn: Callable[[aioredis.Redis], Awaitable[Any]]) -> None:
        """A write that keeps the cache correct; if it cannot reach Redis, the whole cache
        generation is invalidated when Redis returns."""
        if not self.healthy:
            self.dirty = True
            return
        try:
            await fn(self.client)
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            self.dirty = True
            self._mark_down(exc)

    def _mark_down(self, exc: BaseException) -> None:
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
            gen_key = self.key("gen")
            if self.dirty:
                self.generation = int(await self.client.incr(gen_key))
                self.dirty = False
            else:
                self.generation = int(await self.client.get(gen_key) or 0)
            self.healthy = True
        except (RedisError, OSError, asyncio.TimeoutError):
            self.healthy = False


class SnapshotCache:
    """Latest snapshot per thread, validated against the thread's committed version."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link

    def _keys(self, thread_id: str) -> tuple[str, str, str]:
        return (
            self.link.key("gen"),
            self.link.key("ver", thread_id),
            self.link.key("snap", thread_id),
        )

    async def get(self, thread_id: str) -> ThreadSnapshot | None:
        gen_key, ver_key, snap_key = self._keys(thread_id)
        values = await self.link.call(lambda r: r.mget(gen_key, ver_key, snap_key))
        if not values or values[2] is None:
            return None
        gen, version, raw = values
        self.link.generation = int(gen or 0)  # another worker may have bumped it
        data = json.loads(raw or b"null")
        if (
            not isinstance(data, dict)
            or self.link.generation != data["gen"]
            or data["step"] < int(version or -1)
        ):
            return None
        return ThreadSnapshot(
            Checkpoint.from_dict(data["checkpoint"]),
            [Message.from_dict(m) for m in data["messages"]],
        )

    async def store(self, snapshot: ThreadSnapshot) -> None:
        """Cache a snapshot read from Postgres, unless a newer write already happened."""
        checkpoint = snapshot.checkpoint
        _, ver_key, snap_key = self._keys(checkpoint.thread_id)
        payload = json.dumps(
            {
                "gen": self.link.generation,
                "step": checkpoint.step,
                "checkpoint": checkpoint.to_dict(),
                "messages": [m.to_dict() for m in snapshot.messages],
            },
            separators=(",", ":"),
        )
        await self.link.call(
            lambda r: r.eval(
                _CACHE_IF_CURRENT, 2, ver_key, snap_key, checkpoint.step, payload, CACHE_TTL
            )
        )

    async def written(self, thread_id: str, step: int) -> None:
        """Record a committed write: older cached snapshots become invisible."""
        ver_key = self._keys(thread_id)[1]

        async def bump(r: aioredis.Redis) -> None:
            await r.eval(_SET_IF_NEWER, 1, ver_key, step, CACHE_TTL)

        await self.link.write(bump)

    async def forget(self, thread_id: str) -> None:
        """A deleted thread: drop its keys (a recreated thread restarts its steps)."""
        _, ver_key, snap_key = self._keys(thread_id)

        async def drop(r: aioredis.Redis) -> None:
            await r.delete(ver_key, snap_key)

        await self.link.write(drop)
