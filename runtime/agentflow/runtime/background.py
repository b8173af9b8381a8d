"""Runs that outlive their request: started and left, queued behind the thread's current run
(`enqueue`), started in its place (`interrupt`, `rollback`), joined, cancelled, and taken over
by another worker when theirs dies.

A background run is stored (`RunRecord`) before it starts, so every worker sees it. With the
shared store (Postgres), each worker sweeps for runs nobody runs: queued runs whose thread is
free, and background runs whose worker is gone (its lease on the thread expired after
RUN_LEASE_TTL); it takes one over by compare-and-set on the record's owner and continues it
from its last completed step (completed tool calls are replayed, not repeated). The memory and
SQLite checkpointers keep the same API in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any

from agentflow.graph.compiled import CompiledGraph
from agentflow.graph.messages import new_id
from agentflow.graph.storage import RunRecord
from agentflow.runtime.errors import ApiError, not_found, require_owner
from agentflow.runtime.run_log import RunLog
from agentflow.runtime.runs import RunService, thread_busy
from agentflow.runtime.schemas import RunRequest

__all__ = ["BackgroundRuns", "run_view"]

logger = logging.getLogger("agentflow.runtime.background")
SWEEP_INTERVAL = 1.0  # seconds between a worker's looks for runs nobody runs (shared store)
PRUNE_INTERVAL = 60.0  # seconds between removals of expired stream frames
POLL = 0.1  # seconds between looks at a run that runs elsewhere
STOP_WAIT = 30.0  # seconds a preempting run waits for the current one to stop


class BackgroundRuns:
    def __init__(self, runs: RunService) -> None:
        self.runs = runs
        self.queued: set[str] = set()  # threads with runs queued here
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        runs.on_thread_free = self._thread_free

    def start(self) -> None:
        if self.runs.shared is not None:
            self._sweeper = asyncio.create_task(self._sweep(), name="run-sweeper")
        elif self.runs.checkpointer.durable:  # SQLite: what the last process left running
            self._spawn(self._sweep_once(preempting_after=0.0))

    async def close(self) -> None:
        tasks = [*self._tasks, *([self._sweeper] if self._sweeper else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # -- starting -------------------------------------------------------------------------

    async def submit(
        self,
        request: RunRequest,
        *,
        user_id: str,
        request_id: str,
        strategy: str,
        run_id: str | None = None,
    ) -> RunRecord:
        """Store the run and start it now, or as `strategy` says when the thread is busy."""
        thread_id = request.thread_id
        assert thread_id is not None
        info = await self.runs.checkpointer.get_thread(thread_id)
        if info is not None:
            require_owner(info.user_id, user_id)
        busy = await self._busy(thread_id, user_id)
        if busy and strategy == "reject":
            raise thread_busy()
        record = RunRecord(
            run_id or new_id(), thread_id, user_id, request=request.to_record(),
            multitask_strategy=strategy, background=True,
        )  # fmt: skip
        await self.runs.checkpointer.put_run(record)
        if not busy:
            try:
                await self.runs.start(
                    request, user_id=user_id, request_id=request_id, stream=True, record=record
                )
                return record
            except ApiError as exc:
                if exc.code != "thread_busy" or strategy == "reject":
                    await self._fail(record, exc)
                    raise
        if strategy == "enqueue":
            self.queued.add(thread_id)
            self._spawn(self._pump(thread_id))  # the thread may have become free meanwhile
        else:
            self._spawn(self._preempt(record, rollback=strategy == "rollback"))
        return record

    async def _busy(self, thread_id: str, user_id: str) -> bool:
        running = self.runs.active.get(thread_id)
        if running is not None:
            require_owner(running.user_id, user_id)
            return True
        return bool(await self.runs.coordinator.running([thread_id]))

    async def _start_stored(self, record: RunRecord, *, resume: bool = False) -> bool:
        """Start a stored run (queued, or taken over: `resume` continues it from its last
        checkpoint); False when the thread is busy or another worker took the run first."""
        request = RunRequest.from_record(record.request)
        if resume:  # no input: the graph goes on from the thread's last checkpoint
            langgraph = request.langgraph
            request = RunRequest(
                thread_id=record.thread_id,
                recursion_limit=request.recursion_limit,
                stream_mode=request.stream_mode,
                graph=request.graph,
                protocol=request.protocol,
                langgraph=langgraph and {**langgraph, "input": None, "command": None},
            )
        try:
            await self.runs.start(
                request, user_id=record.user_id, request_id=new_id(), stream=True, record=record
            )
        except ApiError as exc:
            if exc.code == "thread_busy":
                return False
            await self._fail(record, exc)
            return False
        if resume:
            logger.warning(
                "took over run %s on thread %s: its worker stopped; continuing from its last "
                "completed step", record.run_id, record.thread_id,
            )  # fmt: skip
        return True

    async def _fail(self, record: RunRecord, error: ApiError) -> None:
        record.status, record.ended_at = "error", time.time()
        record.error = {"status": error.status, "code": error.code, "message": error.message}
        with contextlib.suppress(Exception):
            await self.runs.checkpointer.put_run(record)

    def _thread_free(self, thread_id: str) -> None:
        if thread_id in self.queued:
            self._spawn(self._pump(thread_id))

    async def _pump(self, thread_id: str) -> None:
        """Start the thread's oldest queued run, if the thread is free."""
        stored = await self.runs.checkpointer.list_runs(thread_id, limit=100)
        queued = [r for r in stored if r.status == "pending" and r.multitask_strategy == "enqueue"]
        if not queued:
            self.queued.discard(thread_id)
            return
        await self._start_stored(min(queued, key=lambda r: (r.created_at, r.run_id)))

    async def _preempt(self, record: RunRecord, *, rollback: bool) -> None:
        """Stop the thread's current run (discarding its steps for `rollback`), then start
        `record` in its place."""
        thread_id = record.thread_id
        deadline = time.monotonic() + STOP_WAIT
        while time.monotonic() < deadline:
            current = await self._current_run(thread_id)
            if current is not None:
                await self.runs.request_stop(thread_id)
                while await self._busy(thread_id, record.user_id):
                    if time.monotonic() >= deadline:
                        break
                    await asyncio.sleep(POLL / 2)
                if rollback:
                    await self._roll_back(thread_id, current)
            if await self._start_stored(record):
                return
            latest = await self.runs.checkpointer.get_run(record.run_id)
            if latest is None or latest.status != "pending":
                return  # cancelled meanwhile, or failed to start (recorded)
        await self._fail(
            record,
            ApiError(409, "thread_busy", "the thread's current run did not stop in time"),
        )

    async def _current_run(self, thread_id: str) -> str | None:
        running = self.runs.active.get(thread_id)
        if running is not None:
            return running.run_id
        if self.runs.shared is None:
            return None
        lease = (await self.runs.shared.live_leases([thread_id])).get(thread_id)
        return lease[0] if lease else None

    async def _roll_back(self, thread_id: str, run_id: str) -> None:
        """Discard what the stopped run `run_id` stored on the thread (and, as LangGraph
        does, the run itself when the LangGraph API started it)."""
        record = await self.runs.checkpointer.get_run(run_id)
        request = RunRequest.from_record(record.request) if record else RunRequest()
        graph = self.runs.graph_for(request)
        if not isinstance(graph, CompiledGraph):
            await graph.delete_run(run_id)
        else:
            history = await self.runs.checkpointer.list_history(thread_id, limit=1000)
            steps = [c.step for c in history if c.run_id == run_id]
            if steps:
                await self.runs.checkpointer.truncate_thread(thread_id, step=min(steps))
        if record is not None and run_protocol(record) == "langgraph":
            await self.runs.checkpointer.delete_run(run_id)

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("a background run task failed: %s", task.exception())

    # -- the shared store: runs nobody runs -----------------------------------------------

    async def _sweep(self) -> None:
        store = self.runs.shared
        assert store is not None
        pruned = 0.0
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            if not self.runs.accepting:
                return
            try:
                await self._sweep_once()
                if time.monotonic() - pruned > PRUNE_INTERVAL:
                    pruned = time.monotonic()
                    await store.prune_run_events(
                        time.time() - self.runs.settings.run_stream_retention
                    )
            except Exception as exc:  # the store is down: the next sweep tries again
                logger.warning("could not look for runs to take over: %s", exc)

    async def _sweep_once(self, preempting_after: float = STOP_WAIT) -> None:
        """Start what nobody runs: on each free thread, a run whose worker died (it continues
        from its last step), else the oldest queued run (or a preempting one older than
        `preempting_after` seconds: whoever was to start it is gone)."""
        live = await self.runs.checkpointer.live_runs()
        by_thread: dict[str, list[RunRecord]] = {}
        for record in live:
            by_thread.setdefault(record.thread_id, []).append(record)
        candidates = [t for t in by_thread if t not in self.runs.active]
        busy = await self.runs.coordinator.running(candidates) if candidates else set()
        for thread_id in candidates:
            if thread_id in busy:
                continue
            records = by_thread[thread_id]
            orphans = [r for r in records if r.status == "running"]
            if orphans:
                await self._start_stored(orphans[0], resume=True)
                continue
            queued = [
                r for r in records
                if r.status == "pending"
                and (r.multitask_strategy == "enqueue"
                     or time.time() - r.created_at > preempting_after)
            ]  # fmt: skip
            if queued:
                self.queued.add(thread_id)  # the rest start as each one ends
                await self._start_stored(queued[0])

    # -- following ------------------------------------------------------------------------

    async def get(
        self, thread_id: str, run_id: str, user_id: str, *, protocol: str = "agentflow"
    ) -> RunRecord:
        """The run, if it is on `thread_id`, belongs to `user_id` and was started through
        the API of `protocol` (each API shows its own runs); 404 otherwise."""
        record = await self.runs.checkpointer.get_run(run_id)
        if record is None or record.thread_id != thread_id or run_protocol(record) != protocol:
            raise not_found("run")
        require_owner(record.user_id, user_id)
        return record

    async def wait_for_log(self, record: RunRecord) -> RunLog | None:
        """This worker's log of the run, once a queued run starts here; None when it runs
        (or ran) elsewhere or its log is gone."""
        while True:
            log = self.runs.logs.get(record.run_id)
            if log is not None or record.status != "pending":
                return log
            await asyncio.sleep(POLL)
            record = await self.runs.checkpointer.get_run(record.run_id) or record

    async def join(self, record: RunRecord) -> dict[str, Any]:
        """Wait for the run to end; what /v1/graph/invoke answers (or its error)."""
        while not record.final:
            active = self.runs.active.get(record.thread_id)
            if active is not None and active.run_id == record.run_id and active.task:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(active.task)
                await asyncio.sleep(0)  # its record is written before the thread is let go
            else:
                await asyncio.sleep(POLL)
            record = await self.runs.checkpointer.get_run(record.run_id) or record
        if record.result is not None:
            return record.result
        error = record.error or {
            "status": 409 if record.status == "cancelled" else 500,
            "code": "run_cancelled" if record.status == "cancelled" else "run_failed",
            "message": f"the run ended {record.status}",
        }
        raise ApiError(error["status"], error["code"], error["message"])

    async def cancel(self, record: RunRecord) -> RunRecord:
        """Cancel a queued run, or stop a running one on whichever worker runs it."""
        if record.status == "pending":
            cancelled = RunRecord.from_dict(record.to_dict())
            cancelled.status, cancelled.ended_at = "cancelled", time.time()
            cancelled.error = {"status": 409, "code": "run_cancelled",
                               "message": "the run was cancelled before it started"}  # fmt: skip
            if self.runs.shared is None:
                await self.runs.checkpointer.put_run(cancelled)
                return cancelled
            if await self.runs.shared.claim_run(cancelled, record.owner, "pending"):
                return cancelled
            record = await self.runs.checkpointer.get_run(record.run_id) or record
        if (
            record.status == "running"
            and await self._current_run(record.thread_id) == record.run_id
        ):
            await self.runs.request_stop(record.thread_id)
        return record


def run_protocol(record: RunRecord) -> str:
    """The API a run was started through: agentflow (/v1) or langgraph."""
    return str(record.request.get("protocol") or "agentflow")


def run_view(record: RunRecord) -> dict[str, Any]:
    """A run as the API shows it (api_types.Run)."""
    return {
        "run_id": record.run_id,
        "thread_id": record.thread_id,
        "status": record.status,
        "multitask_strategy": record.multitask_strategy,
        "created_at": record.created_at,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "usage": record.usage,
        "error": record.error,
        "interrupt": record.interrupt,
        "result": record.result,
    }
