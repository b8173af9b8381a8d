"""A run's event stream as something clients can leave and come back to.

Every streamed or background run writes its SSE frames, numbered from 1, into a `RunLog`.
The client that started it and any client that reconnects (with `Last-Event-ID`) read the
same log, each from its own position, while the run is live and for RUN_STREAM_RETENTION
after. With a shared store (Postgres) the frames are also written there in batches
(`FrameWriter`), so a client that reconnects to another worker or replica reads them from
the store (`follow_stored`) and loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from agentflow.errors import CheckpointerError
from agentflow.graph.storage import FINAL_RUN_STATUSES
from agentflow.runtime.publisher import HEARTBEAT, sse_frame
from agentflow.runtime.timeouts import time_limit

if TYPE_CHECKING:
    from agentflow.checkpointer.postgres import PgCheckpointer

__all__ = ["FrameWriter", "RunLog", "follow", "follow_stored"]

logger = logging.getLogger("agentflow.runtime.run_log")
POLL_INTERVAL = 0.1  # seconds between reads of the shared store for a reconnected client
FLUSH_RETRIES = 5
# Seconds between stores of a live run's frames: each is one INSERT, so a token stream costs
# a few per second, not one per token; a reader on another worker lags by up to this much.
FLUSH_EVERY = 0.25


class RunLog:
    """The SSE frames of one run, in order; frame n has the SSE id n (from `first`)."""

    __slots__ = ("_changed", "closed", "first", "frames")

    def __init__(self, first: int = 1) -> None:
        self.first = first  # a run taken over continues its numbering
        self.frames: list[bytes] = []
        self.closed = False
        self._changed = asyncio.Event()

    @property
    def last_id(self) -> int:
        return self.first + len(self.frames) - 1

    def append(self, event: str, data: Any) -> None:
        self.frames.append(sse_frame(event, data, self.first + len(self.frames)))
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        # Whoever waits holds the event that is set now; later waiters get a fresh one.
        self._changed.set()
        self._changed = asyncio.Event()

    def after(self, event_id: int) -> list[bytes]:
        """The frames with an id above `event_id`."""
        return self.frames[max(event_id - self.first + 1, 0) :]

    async def wait_closed(self) -> None:
        while not self.closed:
            await self._changed.wait()

    async def wait_after(self, event_id: int) -> None:
        """Until a frame with an id above `event_id` exists, or the run is over."""
        while self.last_id <= event_id and not self.closed:
            await self._changed.wait()


async def follow(log: RunLog, after: int, heartbeat: float) -> AsyncIterator[bytes]:
    """The log's frames after id `after` as they come (what arrived together in one write),
    with heartbeat comments while the run is quiet, until the run is over."""
    while True:
        frames = log.after(after)
        if frames:
            after = log.last_id
            yield b"".join(frames)
            continue
        if log.closed:
            return
        try:
            async with time_limit(heartbeat):
                await log.wait_after(after)
        except TimeoutError:
            yield HEARTBEAT


async def follow_stored(
    store: PgCheckpointer, thread_id: str, run_id: str, after: int, heartbeat: float
) -> AsyncIterator[bytes]:
    """A run's frames from the shared store, for a client on a worker that does not run it:
    polled until the run's record is final and every frame is read (its worker writes all
    frames before it marks the record final)."""
    try:
        async for frames in _stored_frames(store, run_id, after, heartbeat):
            yield frames
    except CheckpointerError as exc:  # the headers are sent: end the stream with the error
        logger.warning("could not read the events of run %s: %s", run_id, exc)
        data = {
            "thread_id": thread_id,
            "run_id": run_id,
            "code": "storage_unavailable",
            "resumable": True,
            "message": "the state store is unavailable; reconnect with Last-Event-ID",
        }
        yield sse_frame("error", data)


async def _stored_frames(
    store: PgCheckpointer, run_id: str, after: int, heartbeat: float
) -> AsyncIterator[bytes]:
    quiet = 0.0
    while True:
        rows = await store.read_run_events(run_id, after)
        if rows:
            after = rows[-1][0]
            quiet = 0.0
            yield b"".join(frame for _, frame in rows)
            continue
        status = await store.run_status(run_id)
        if status is None or status in FINAL_RUN_STATUSES:
            rest = await store.read_run_events(run_id, after)
            if not rest:
                return
            after = rest[-1][0]
            yield b"".join(frame for _, frame in rest)
            continue
        await asyncio.sleep(POLL_INTERVAL)
        quiet += POLL_INTERVAL
        if quiet >= heartbeat:
            quiet = 0.0
            yield HEARTBEAT


class FrameWriter:
    """Copies a log's frames into the shared store as they come, in batches; `done()`
    returns once every frame of the closed log is stored."""

    def __init__(self, log: RunLog, store: PgCheckpointer, run_id: str) -> None:
        self.log = log
        self.store = store
        self.run_id = run_id
        self.task = asyncio.create_task(self._copy(), name=f"frames-{run_id}")

    async def _copy(self) -> None:
        stored = self.log.first - 1  # the id of the last stored frame
        failures = 0
        while True:
            await self.log.wait_after(stored)
            frames = self.log.after(stored)
            if not frames:
                if self.log.closed:
                    return
                continue
            try:
                await self.store.append_run_events(self.run_id, stored + 1, frames)
            except Exception as exc:
                failures += 1
                if failures > FLUSH_RETRIES:
                    logger.warning(
                        "gave up storing the events of run %s (%s); clients on other "
                        "workers cannot reconnect to its stream", self.run_id, exc,
                    )  # fmt: skip
                    return
                await asyncio.sleep(0.2 * failures)
                continue
            failures = 0
            stored += len(frames)
            # What arrives meanwhile goes in one INSERT; the run's end is stored at once (its
            # record is final, and its thread free, only after that).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.log.wait_closed(), FLUSH_EVERY)

    async def done(self) -> None:
        with contextlib.suppress(Exception):
            await self.task
