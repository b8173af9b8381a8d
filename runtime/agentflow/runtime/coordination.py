"""One run per thread across workers, and stop signals that reach the worker running it.

`LocalCoordinator` is for single-process checkpointers (memory, SQLite). `SharedCoordinator`
backs Postgres deployments with a lease per thread in Postgres, taken in the same round trip
that reads the thread (`claim`) and let go by the run's last write when nothing is recorded
after it; correctness never depends on Redis. Stops travel by Redis pub/sub (instant) and by
a flag on the lease that the running worker polls (works without Redis).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from agentflow.graph.storage import Checkpointer, ThreadClaim

if TYPE_CHECKING:
    from agentflow.checkpointer.postgres import PgCheckpointer
    from agentflow.checkpointer.redis import RedisLink

logger = logging.getLogger("agentflow.runtime.coordination")

StopHandler = Callable[[str], object]


class RunCoordinator(Protocol):
    owner: str  # this worker, as run records name it

    async def start(self, on_stop: StopHandler) -> None: ...
    async def close(self) -> None: ...
    async def claim(
        self, thread_id: str, run_id: str, user_id: str, *, load: bool
    ) -> ThreadClaim: ...
    def release_with_last_step(self, thread_id: str, run_id: str) -> None: ...
    async def acquire(self, thread_id: str, run_id: str) -> bool: ...
    async def release(self, thread_id: str, run_id: str) -> None: ...
    async def request_stop(self, thread_id: str) -> bool: ...
    async def running(self, thread_ids: Sequence[str]) -> set[str]: ...
    def health(self) -> dict[str, str]: ...


class LocalCoordinator:
    """Everything happens in this process: the RunService's own table is the lock."""

    owner = "local"

    def __init__(self, store: Checkpointer) -> None:
        self.store = store

    async def claim(self, thread_id: str, run_id: str, user_id: str, *, load: bool) -> ThreadClaim:
        """The thread's owner; the run reads the state itself (`load` is a no-op here)."""
        info = await self.store.get_thread(thread_id)
        return ThreadClaim(info.user_id if info is not None else None, True)

    def release_with_last_step(self, thread_id: str, run_id: str) -> None:
        return None

    async def start(self, on_stop: StopHandler) -> None:
        return None

    async def close(self) -> None:
        return None

    async def acquire(self, thread_id: str, run_id: str) -> bool:
        return True

    async def release(self, thread_id: str, run_id: str) -> None:
        return None

    async def request_stop(self, thread_id: str) -> bool:
        return False

    async def running(self, thread_ids: Sequence[str]) -> set[str]:
        return set()

    def health(self) -> dict[str, str]:
        return {"status": "not_configured"}


def process_namespace() -> str:
    """This host and PID namespace: pids are comparable only between processes that share
    both (two containers may share a hostname, never a PID namespace)."""
    try:
        namespace = os.readlink("/proc/self/ns/pid").strip("pid:[]")
    except OSError:
        namespace = "0"
    return f"{socket.gethostname()}/{namespace}"


class SharedCoordinator:
    def __init__(self, store: PgCheckpointer, *, lease_ttl: float = 10.0) -> None:
        self.store = store
        self.lease_ttl = lease_ttl
        self.renew_every = lease_ttl / 5
        self.redis: RedisLink | None = store.redis
        # A lease names its process, so a lease left by a dead process on this host is
        # released at once instead of blocking its thread until the TTL.
        self.host = process_namespace()
        self.owner = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.channel = f"agentflow:{store.schema}:stop"
        self._renewals: dict[str, asyncio.Task[None]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._on_stop: StopHandler = lambda thread_id: None

    async def start(self, on_stop: StopHandler) -> None:
        self._on_stop = on_stop
        if self.redis is not None:
            self._listener = asyncio.create_task(self._listen(), name="stop-listener")
        # A worker the supervisor started to replace a dead one frees the dead one's threads.
        with contextlib.suppress(Exception):  # best effort: the TTL frees them anyway
            for thread_id, run_id, owner in await self.store.leases_of(f"{self.host}:"):
                await self._release_if_dead(thread_id, run_id, owner)

    async def close(self) -> None:
        tasks = [*self._renewals.values(), *([self._listener] if self._listener else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def claim(self, thread_id: str, run_id: str, user_id: str, *, load: bool) -> ThreadClaim:
        """Take the thread for a run and (`load`) read its state, in one round trip; a lease
        left by a dead process on this host is released and the claim made again."""
        claim = await self.store.claim_thread(
            thread_id, user_id, run_id, self.owner, self.lease_ttl, load=load
        )
        dead = claim.holder is not None and await self._release_if_dead(thread_id, *claim.holder)
        if not claim.taken and dead:
            claim = await self.store.claim_thread(
                thread_id, user_id, run_id, self.owner, self.lease_ttl, load=load
            )
        if claim.taken:
            self._keep(thread_id, run_id)
        return claim

    def release_with_last_step(self, thread_id: str, run_id: str) -> None:
        self.store.release_with_last_step(thread_id, run_id)

    async def acquire(self, thread_id: str, run_id: str) -> bool:
        taken = await self.store.acquire_lease(thread_id, run_id, self.owner, self.lease_ttl)
        if not taken and await self._reap(thread_id):
            taken = await self.store.acquire_lease(thread_id, run_id, self.owner, self.lease_ttl)
        if taken:
            self._keep(thread_id, run_id)
        return taken

    def _keep(self, thread_id: str, run_id: str) -> None:
        self._renewals[thread_id] = asyncio.create_task(
            self._renew(thread_id, run_id), name=f"lease-{thread_id}"
        )

    async def release(self, thread_id: str, run_id: str) -> None:
        task = self._renewals.pop(thread_id, None)
        if task is not None:
            task.cancel()
        if self.store.released_by_last_step(thread_id, run_id, forget=True):
            return
        with contextlib.suppress(Exception):  # an unreleased lease expires by itself
            await self.store.release_lease(thread_id, run_id)

    async def running(self, thread_ids: Sequence[str]) -> set[str]:
        """The threads among `thread_ids` with a run in progress on any worker (a lease
        left by a dead process on this host does not count: it is released)."""
        leases = await self.store.live_leases(thread_ids)
        live = set()
        for thread_id, (run_id, owner) in leases.items():
            if not await self._release_if_dead(thread_id, run_id, owner):
                live.add(thread_id)
        return live

    async def _reap(self, thread_id: str) -> bool:
        """Release the thread's lease if the process holding it is dead; True if freed."""
        lease = (await self.store.live_leases([thread_id])).get(thread_id)
        return lease is not None and await self._release_if_dead(thread_id, *lease)

    async def _release_if_dead(self, thread_id: str, run_id: str, owner: str) -> bool:
        if not self._is_dead(owner):
            return False
        logger.warning(
            "released thread %s: its run %s belonged to process %s, which is gone",
            thread_id, run_id, owner,
        )  # fmt: skip
        await self.store.release_lease(thread_id, run_id)
        return True

    def _is_dead(self, owner: str) -> bool:
        """Whether the process named by a lease's owner (host:pid:nonce) is certainly gone:
        it ran on this host and its pid is now unused, or is ours under another nonce."""
        host, _, rest = owner.partition(":")
        pid_text, _, _ = rest.partition(":")
        if host != self.host or not pid_text.isdigit() or owner == self.owner:
            return False
        pid = int(pid_text)
        if pid == os.getpid():
            return True  # this process reuses the pid: the lease is a predecessor's
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False  # someone else's live process
        return False

    async def _renew(self, thread_id: str, run_id: str) -> None:
        """Keep the lease alive; a stop flag on the lease cancels the run."""
        while True:
            await asyncio.sleep(self.renew_every)
            try:
                stop = await self.store.renew_lease(thread_id, run_id, self.lease_ttl)
            except Exception as exc:
                logger.warning("could not renew the lease of thread %s: %s", thread_id, exc)
                continue
            if stop is None:
                if self.store.released_by_last_step(thread_id, run_id, forget=False):
                    return  # the run's last write let it go
                logger.warning("lost the lease of thread %s", thread_id)
            elif stop:
                self._on_stop(thread_id)

    async def request_stop(self, thread_id: str) -> bool:
        found = await self.store.request_stop(thread_id)
        if self.redis is not None:
            channel = self.channel
            await self.redis.call(lambda r: r.publish(channel, thread_id))
        return found

    async def _listen(self) -> None:
        """Subscribe to stop signals; resubscribe after Redis outages."""
        assert self.redis is not None
        while True:
            try:
                pubsub = self.redis.client.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(self.channel)
                try:
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._on_stop(message["data"].decode())
                finally:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the only Redis connection a turn no longer uses
                self.redis.mark_down(exc)
                await asyncio.sleep(1.0)

    def health(self) -> dict[str, str]:
        if self.redis is None:
            return {"status": "not_configured"}
        return {"status": "ok" if self.redis.healthy else "degraded"}
