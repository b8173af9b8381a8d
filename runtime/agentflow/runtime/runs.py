"""Running graphs for HTTP requests: one run per thread, timeouts, stop, metrics and logs.

A run is an asyncio task owned by the `RunService`, not by the request: a client that
disconnects from a stream does not cancel it; it completes and is persisted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from agentflow import tracing
from agentflow.errors import (
    CheckpointerError,
    ConflictError,
    GraphRecursionError,
    InvalidInputError,
    ModelHTTPError,
    NodeError,
    NothingToResumeError,
    RunTimeoutError,
)
from agentflow.graph.compiled import CompiledGraph, RunResult
from agentflow.graph.messages import Message, new_id
from agentflow.graph.storage import Checkpointer, IdempotencyRecord, RunRecord, ThreadClaim
from agentflow.graph.stream import OPT_IN, StreamChunk, StreamEvent
from agentflow.runtime import idempotency
from agentflow.runtime.coordination import LocalCoordinator, RunCoordinator
from agentflow.runtime.errors import ApiError, require_owner
from agentflow.runtime.lgapi import frames as lg_frames
from agentflow.runtime.loader import ServedGraph
from agentflow.runtime.metrics import Metrics
from agentflow.runtime.publisher import chunk_payload, run_body
from agentflow.runtime.run_log import FrameWriter, RunLog
from agentflow.runtime.schemas import RunRequest
from agentflow.runtime.settings import DEFAULT_GRAPH_NAME, Settings
from agentflow.runtime.timeouts import time_limit
from agentflow.utils import mask_secrets

if TYPE_CHECKING:
    from agentflow.checkpointer.postgres import PgCheckpointer

logger = logging.getLogger("agentflow.runtime.runs")
EventSink = Callable[[StreamChunk], None]
# Called with the run's result (None when it failed or was cancelled) after the run and
# before it gives up the thread: what must be recorded while nobody else can run there.
FinishHook = Callable[[RunResult | None], Awaitable[object]]
# What metrics and logs need from a run nobody streams.
OBSERVED = frozenset({StreamEvent.NODE_END, StreamEvent.ERROR, StreamEvent.MESSAGE})


OVERLOAD_RETRY_AFTER = "1"  # seconds: runs against a model finish within a few
SERVER_SHUTDOWN = "server_shutdown"  # the cancel reason (and error code) of a drained run
CANCEL_SETTLE = 0.5  # seconds cancelled runs get to checkpoint before the server stops
RETAINED_LOGS = 1000  # finished runs' streams one process keeps (memory and SQLite)
# A taken-over run's frames continue at the next multiple of this (ids are 32-bit: room
# for 2,047 takeovers of a run of up to a million frames each).
FRAME_ID_BLOCK = 1 << 20


@dataclass(slots=True)
class ActiveRun:
    thread_id: str
    run_id: str
    user_id: str
    request_id: str
    started: float = field(default_factory=time.perf_counter)
    task: asyncio.Task[RunResult] | None = None
    stop_requested: bool = False
    outcome: str = "running"
    leased: bool = False
    error_class: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    on_finish: FinishHook | None = None
    cancel_reason: str | None = None  # SERVER_SHUTDOWN when the drain cancelled it
    input_count: int = 0  # the run's messages that are input, not output
    record: RunRecord | None = None
    log: RunLog | None = None  # its SSE frames, when it streams or runs in the background
    writer: FrameWriter | None = None  # copies the frames to the shared store
    recording: asyncio.Future[None] | None = None  # the record's first write
    failure: BaseException | None = None
    protocol: str = "agentflow"  # the format of its stream and record: agentflow | langgraph

    def log_fields(self) -> dict[str, Any]:
        """Outcome fields for the request's summary log line."""
        fields: dict[str, Any] = {"outcome": self.outcome, **self.usage}
        if self.error_class:
            fields["error_class"] = self.error_class
        return fields


@dataclass(slots=True)
class Submitted:
    """What `RunService.submit` did: started `run`, or (a repeated Idempotency-Key whose run
    finished) found its recorded response, `replay`. `recorded` receives the response an
    Idempotency-Key run recorded for its retries, once it finished."""

    run: ActiveRun | None
    input_count: int = 0  # the run's messages that are input, not output
    replay: dict[str, Any] | None = None
    recorded: dict[str, Any] = field(default_factory=dict)


class RunService:
    """Starts runs, enforces one run per thread, and answers stop requests."""

    def __init__(
        self,
        graph: ServedGraph,
        checkpointer: Checkpointer,
        settings: Settings,
        metrics: Metrics,
        coordinator: RunCoordinator | None = None,
        graphs: Mapping[str, ServedGraph] | None = None,
    ) -> None:
        self.graph = graph
        # Every served graph by name (the LangGraph API's graph ids); `graph` is the default.
        self.graphs: Mapping[str, ServedGraph] = graphs or {DEFAULT_GRAPH_NAME: graph}
        self.checkpointer = checkpointer
        self.settings = settings
        self.metrics = metrics
        self.coordinator: RunCoordinator = coordinator or LocalCoordinator(checkpointer)
        self.active: dict[str, ActiveRun] = {}
        self.accepting = True
        # The frames of streamed runs, by run id: while they run and RUN_STREAM_RETENTION after
        # (finished ones in order of finishing, in `_finished`).
        self.logs: dict[str, RunLog] = {}
        self._finished: OrderedDict[str, float] = OrderedDict()
        # The store other workers read runs and frames from (Postgres), if shared.
        self.shared = (
            cast("PgCheckpointer", checkpointer)
            if settings.checkpointer.kind == "postgres"
            else None
        )
        # Called with a thread id when a run lets it go (queued runs start then).
        self.on_thread_free: Callable[[str], object] = lambda thread_id: None

    async def submit(
        self,
        request: RunRequest,
        *,
        user_id: str,
        request_id: str,
        key: str | None = None,
        request_hash: str = "",
        stream: bool = False,
    ) -> Submitted:
        """Start a run for an HTTP request; with an Idempotency-Key, at most one per key
        (idempotency.py): a retry of a finished request gets its recorded response, one of
        a failed or abandoned request continues or answers from what was stored."""
        if key is None:
            run = await self.start(request, user_id=user_id, request_id=request_id, stream=stream)
            return Submitted(run, len(request.messages))
        claimed = await idempotency.claim(self, user_id, key, request_hash, request)
        if isinstance(claimed, IdempotencyRecord):
            return Submitted(None, replay=claimed.body)
        submitted = Submitted(None, claimed.input_count)

        async def record(result: RunResult | None) -> None:
            submitted.recorded.update(await idempotency.settle(self, claimed, result) or {})

        try:
            submitted.run = await self.start(
                claimed.request,
                user_id=user_id,
                request_id=request_id,
                stream=stream,
                earlier=claimed.earlier,
                run_id=claimed.run_id,
                on_finish=record,
            )
        except BaseException:
            await idempotency.release(self, claimed)
            raise
        return submitted

    async def start(
        self,
        request: RunRequest,
        *,
        user_id: str,
        request_id: str,
        stream: bool = False,
        earlier: Sequence[Message] = (),
        run_id: str | None = None,
        on_finish: FinishHook | None = None,
        record: RunRecord | None = None,
    ) -> ActiveRun:
        """Claim the thread and start the run in the background. Raises 404 for another
        user's thread, 409 when the thread already has a run, 503 while shutting down.
        `on_finish` (an idempotent request's bookkeeping) marks the thread as one others may
        know of: it is leased like any named thread. `stream`: the run's events go to a
        RunLog (`earlier`: what an earlier attempt said, sent after its metadata).
        `record`: a stored run (queued, or taken over from a dead worker) to run; its owner
        is compared and set, so of two workers only one starts it."""
        if not self.accepting:
            raise ApiError(
                503,
                "shutting_down",
                "the server is shutting down; retry shortly (another instance takes over)",
                headers={"Retry-After": OVERLOAD_RETRY_AFTER},
            )
        if len(self.active) >= self.settings.max_active_runs:
            self.metrics.count_run("refused")
            raise ApiError(
                503,
                "overloaded",
                f"this worker is running {len(self.active)} runs, its limit "
                "(MAX_ACTIVE_RUNS); retry shortly",
                headers={"Retry-After": OVERLOAD_RETRY_AFTER},
            )
        # A new random id: nobody else can know it yet (unless a retry can, by its key).
        fresh = request.thread_id is None and on_finish is None
        taken_over = record is not None and record.status == "running"  # its worker died
        thread_id = request.thread_id or new_id()
        running = self.active.get(thread_id)
        if running is not None:  # never tell another user that the thread exists
            require_owner(running.user_id, user_id)
            raise thread_busy()
        graph = self.graph_for(request)
        run = ActiveRun(
            thread_id, record.run_id if record else run_id or new_id(), user_id, request_id,
            on_finish=on_finish, input_count=len(request.messages), protocol=request.protocol,
        )  # fmt: skip
        self.active[thread_id] = run  # claimed before any await: no race within a worker
        # An agentflow graph's state comes with the claim (one round trip with Postgres).
        claim = ThreadClaim(None, True, loaded=True)  # a fresh thread: nothing stored
        try:
            if not fresh:  # take the thread, across workers with Postgres
                claim = await self.coordinator.claim(
                    thread_id, run.run_id, user_id, load=isinstance(graph, CompiledGraph)
                )
                if claim.owner is not None:
                    require_owner(claim.owner, user_id)
                run.leased = claim.taken
                if not claim.taken:
                    raise thread_busy()
            # A LangGraph graph keeps its steps apart: the thread's row is made here.
            if claim.owner is None and (request.metadata or not isinstance(graph, CompiledGraph)):
                await self.checkpointer.create_thread(thread_id, user_id, metadata=request.metadata)
            if stream or record is not None:  # an invoke's answer is its record
                run.record = await self._record_start(run, request, record)
            elif run.leased and on_finish is None:  # nothing is recorded after the last step
                self.coordinator.release_with_last_step(thread_id, run.run_id)
        except BaseException:
            self.active.pop(thread_id, None)
            if run.leased:
                await self.coordinator.release(thread_id, run.run_id)
            raise
        config: dict[str, Any] = {
            "thread_id": thread_id,
            "run_id": run.run_id,
            "user_id": user_id,
            "recursion_limit": request.recursion_limit or self.settings.recursion_limit,
            "request_id": request_id,
        }
        sink, events = None, None
        if stream:
            first = await self._first_frame_id(record, taken_over)
            run.log = self.logs[run.run_id] = RunLog(first)
            if self.shared is not None:
                run.writer = FrameWriter(run.log, self.shared, run.run_id)
            if request.protocol == "langgraph":
                sent = lg_frames.events_for(request.stream_mode)
                sink = lg_frames.frames_sink(run.log.append, request.stream_mode)
            else:
                sent = sent_events(request.stream_mode)
                sink = _with_earlier(_log_sink(run.log, sent), list(earlier))
            events = sent | OBSERVED  # what metrics and logs need is produced too
        run.task = asyncio.create_task(
            self._execute(run, graph, request.graph_input(), config, sink, events, claim),
            name=f"run-{run.run_id}",
        )
        run.task.add_done_callback(_retrieve)  # its failure is recorded, not lost
        return run

    async def _record_start(
        self, run: ActiveRun, request: RunRequest, stored: RunRecord | None
    ) -> RunRecord:
        """The run's record, stored as running (a stored one taken over by compare and set:
        thread_busy if another worker took it first)."""
        now = time.time()
        record = stored or RunRecord(
            run.run_id, run.thread_id, run.user_id, created_at=now, request=request.to_record()
        )
        owner, status = record.owner, record.status
        record.status, record.started_at, record.owner = "running", now, self.coordinator.owner
        if stored is None:  # a new stream's record: written beside the run, not before it
            run.recording = asyncio.ensure_future(self.checkpointer.put_run(record))
        elif self.shared is not None:
            if not await self.shared.claim_run(record, owner, status):
                raise thread_busy()
        else:
            await self.checkpointer.put_run(record)
        return record

    async def _first_frame_id(self, stored: RunRecord | None, taken_over: bool) -> int:
        """1; for a run taken over from a dead worker, the first id of the next block of
        FRAME_ID_BLOCK ids after its stored frames: that worker may have sent frames it
        never stored (it stores them in batches), and a client that resumes after one of
        those ids must get every frame of the new attempt, none under an id it has seen."""
        if stored is None or self.shared is None or not taken_over:
            return 1
        last = await self.shared.last_run_event(stored.run_id)
        return (last // FRAME_ID_BLOCK + 1) * FRAME_ID_BLOCK + 1

    def graph_for(self, request: RunRequest) -> ServedGraph:
        """The served graph a request names (the default one when it names none)."""
        if request.graph is None:
            return self.graph
        graph = self.graphs.get(request.graph)
        if graph is None:
            raise ApiError(
                404, "graph_not_found",
                f"this server serves no graph named {request.graph!r}; it serves: "
                f"{', '.join(self.graphs)}",
            )  # fmt: skip
        return graph

    async def _execute(
        self,
        run: ActiveRun,
        graph: ServedGraph,
        graph_input: Any,
        config: dict[str, Any],
        sink: EventSink | None,
        events: frozenset[StreamEvent] | None,
        claim: ThreadClaim,
    ) -> RunResult:
        if not tracing.recording():
            return await self._execute_run(run, graph, graph_input, config, sink, events, claim)
        # The task was created in the request handler: its context holds the request span.
        attributes = {
            "agentflow.thread_id": run.thread_id,
            "agentflow.run_id": run.run_id,
            "agentflow.user_id": run.user_id,
            "agentflow.request_id": run.request_id,
        }
        with tracing.span("agentflow.run", attributes):
            try:
                return await self._execute_run(run, graph, graph_input, config, sink, events, claim)
            finally:
                usage = {
                    f"agentflow.usage.{k}": v
                    for k, v in run.usage.items()
                    if isinstance(v, int | float)
                }
                tracing.set_attributes(
                    {"agentflow.outcome": run.outcome, "agentflow.error_class": run.error_class}
                    | usage
                )

    async def _execute_run(
        self,
        run: ActiveRun,
        graph: ServedGraph,
        graph_input: Any,
        config: dict[str, Any],
        sink: EventSink | None,
        events: frozenset[StreamEvent] | None,
        claim: ThreadClaim,
    ) -> RunResult:
        """Run the graph; `claim` says what is known of the thread's state (read with the
        claim, or nothing stored yet: the graph does not read it again)."""
        self.metrics.active_runs.inc()
        # Only an agentflow graph's state is read with the claim.
        loaded = {"snapshot": claim.snapshot} if claim.snapshot is not None else {}

        def observe(chunk: StreamChunk) -> None:
            self._observe(run, chunk)
            if sink is not None and chunk.event != StreamEvent.ERROR:
                sink(chunk)

        result: RunResult | None = None
        try:
            try:
                async with time_limit(self.settings.run_timeout):
                    result = await graph.arun(
                        graph_input,
                        config,
                        on_event=observe,
                        events=events if sink is not None else OBSERVED,
                        new_thread=claim.loaded and claim.snapshot is None,
                        **loaded,
                    )
            except TimeoutError:
                if run.stop_requested:
                    raise asyncio.CancelledError from None
                raise RunTimeoutError from None
            run.outcome = result.status
            run.usage = result.usage_report()
            return result
        except asyncio.CancelledError as exc:
            run.outcome = "cancelled"
            run.failure = exc
            raise
        except BaseException as exc:
            run.outcome = "error"
            run.failure = exc
            cause = exc.error if isinstance(exc, NodeError) else exc
            run.error_class = type(cause).__name__
            if not isinstance(exc, NodeError | RunTimeoutError | InvalidInputError):
                logger.error(
                    "run failed: %s: %s", type(exc).__name__, mask_secrets(str(exc)),
                    extra=self._log_fields(run, error_class=type(exc).__name__),
                )  # fmt: skip
            raise
        finally:
            self.metrics.active_runs.dec()
            self.metrics.count_run(run.outcome)
            await asyncio.shield(self._finish(run, result))

    async def _finish(self, run: ActiveRun, result: RunResult | None) -> None:
        """Record the outcome (on_finish, the run's record, its last frames), then let the
        thread go: in this order, so whoever finds the thread free also finds the outcome."""
        try:
            if run.on_finish is not None:
                await run.on_finish(result)
            self._end_frames(run)
            if run.writer is not None:
                await run.writer.done()  # every frame is stored before the record is final
            await self._record_end(run, result)
        finally:
            if self.active.get(run.thread_id) is run:
                del self.active[run.thread_id]
            if run.leased:
                await self.coordinator.release(run.thread_id, run.run_id)
            if run.log is not None:
                self._retain(run.run_id)
            self.on_thread_free(run.thread_id)

    def _retain(self, run_id: str) -> None:
        """Keep a finished run's log for clients that reconnect: RUN_STREAM_RETENTION, and at
        most RETAINED_LOGS of them. With the shared store the frames are read from there."""
        if self.shared is not None:
            self.logs.pop(run_id, None)  # readers that follow it keep their own reference
            return
        now = time.monotonic()
        self._finished[run_id] = now
        retention = self.settings.run_stream_retention
        while self._finished:
            oldest, ended = next(iter(self._finished.items()))
            if len(self._finished) <= RETAINED_LOGS and now - ended < retention:
                break
            del self._finished[oldest]
            self.logs.pop(oldest, None)

    def _end_frames(self, run: ActiveRun) -> None:
        """A failed or cancelled run's stream ends with `error` and `end` (the graph sends
        `end` itself when it finishes or pauses); then the log is closed."""
        log = run.log
        if log is None:
            return
        if run.failure is not None and run.protocol == "langgraph":
            error = self._error_of(run)
            log.append("error", lg_frames.error_frame(error.code, error.message))
        elif run.failure is not None:
            error = self._error_of(run)
            ids = {"thread_id": run.thread_id, "run_id": run.run_id}
            log.append(
                "error",
                {**ids, "code": error.code, "message": error.message, "request_id": run.request_id,
                 "resumable": error.code == SERVER_SHUTDOWN},
            )  # fmt: skip
            cancelled = isinstance(run.failure, asyncio.CancelledError)
            log.append("end", {**ids, "status": "cancelled" if cancelled else "error"})
        log.close()

    def _error_of(self, run: ActiveRun) -> ApiError:
        assert run.failure is not None
        return run_error(
            run.failure, production=self.settings.production, cancel_reason=run.cancel_reason
        )

    async def _record_end(self, run: ActiveRun, result: RunResult | None) -> None:
        record = run.record
        if record is None:
            return
        if run.recording is not None:  # the start's write lands first
            with contextlib.suppress(Exception):
                await run.recording
        record.ended_at = time.time()
        if result is not None:
            record.status = "success" if result.status == "done" else "interrupted"
            record.result = run_body(result, run.input_count)
            record.usage = record.result["usage"]
            record.interrupt = record.result["interrupt"]
            if run.protocol == "langgraph":  # what LangGraph's join answers
                record.result["values"] = lg_frames.result_values(result)
        else:
            record.status = _failed_status(run.failure)
            error = self._error_of(run)
            record.error = {"status": error.status, "code": error.code, "message": error.message}
        try:
            await self.checkpointer.put_run(record)
        except Exception as exc:  # the thread's state is stored; only the record is stale
            logger.warning("could not record the end of run %s: %s", run.run_id, exc)

    def _observe(self, run: ActiveRun, chunk: StreamChunk) -> None:
        if chunk.event == StreamEvent.NODE_END:
            duration_ms = chunk.data.get("duration_ms", 0.0)
            self.metrics.observe_node(chunk.node or "", duration_ms / 1000)
            if not logger.isEnabledFor(logging.INFO):
                return
            logger.info(
                "node %s done in %.1f ms", chunk.node, duration_ms,
                extra=self._log_fields(run, node=chunk.node, duration_ms=duration_ms,
                                       outcome="ok"),
            )  # fmt: skip
        elif chunk.event == StreamEvent.ERROR:
            logger.warning(
                "node %s failed: %s", chunk.node, mask_secrets(str(chunk.data.get("message"))),
                extra=self._log_fields(run, node=chunk.node, outcome="error",
                                       error_class=chunk.data.get("error_class")),
            )  # fmt: skip
        elif chunk.event == StreamEvent.MESSAGE and chunk.message is not None:
            message = chunk.message
            if message.role == "tool" and message.metadata.get("status") == "error":
                self.metrics.tool_errors.labels(message.name or "unknown").inc()
            if message.usage is not None:
                model = str(message.metadata.get("model", "unknown"))
                self.metrics.tokens.labels("prompt", model).inc(message.usage.prompt_tokens)
                self.metrics.tokens.labels("completion", model).inc(message.usage.completion_tokens)

    def _log_fields(self, run: ActiveRun, **extra: Any) -> dict[str, Any]:
        return {
            "request_id": run.request_id,
            "thread_id": run.thread_id,
            "run_id": run.run_id,
            "user_id": run.user_id,
            **extra,
        }

    async def running(self, thread_ids: Sequence[str]) -> set[str]:
        """The threads among `thread_ids` with a run in progress, here or on any worker."""
        here = {t for t in thread_ids if t in self.active}
        rest = [t for t in thread_ids if t not in here]
        return here | (await self.coordinator.running(rest) if rest else set())

    async def delete_thread(self, thread_id: str) -> None:
        """Delete the thread unless a run is in progress on it, on any worker (409)."""
        async with self.holding(thread_id):
            await self.checkpointer.delete_thread(thread_id)

    @contextlib.asynccontextmanager
    async def holding(self, thread_id: str) -> AsyncIterator[None]:
        """Hold the thread like a run does (409 when a run is in progress on it, on any
        worker), so that no run starts meanwhile: for a deletion or a state update."""
        if thread_id in self.active:
            raise thread_busy()
        holder = "hold-" + new_id()
        if not await self.coordinator.acquire(thread_id, holder):
            raise thread_busy()
        try:
            yield
        finally:
            await self.coordinator.release(thread_id, holder)

    async def request_stop(self, thread_id: str) -> bool:
        """Cancel the thread's run, here or on whichever worker runs it; its completed
        steps stay checkpointed. False when no run is in progress."""
        if self.stop_local(thread_id):
            return True
        return await self.coordinator.request_stop(thread_id)

    def stop_local(self, thread_id: str) -> bool:
        run = self.active.get(thread_id)
        if run is None or run.task is None or run.task.done():
            return False
        run.stop_requested = True
        run.task.cancel()
        return True

    async def drain(self, grace: float) -> None:
        """Refuse new runs, give running ones `grace` seconds, then cancel the rest with the
        reason SERVER_SHUTDOWN (each is checkpointed as cancelled and can be resumed; their
        clients are told so) and give them CANCEL_SETTLE seconds to save that."""
        self.accepting = False
        running = {r.task: r for r in self.active.values() if r.task and not r.task.done()}
        if not running:
            return
        logger.info("waiting up to %gs for %d run(s) to finish", grace, len(running))
        _, pending = await asyncio.wait(list(running), timeout=grace)
        for task in pending:
            running[task].cancel_reason = SERVER_SHUTDOWN
            task.cancel()
        if pending:
            logger.warning(
                "cancelled %d run(s) still going after the %gs grace period; their threads "
                "can be resumed", len(pending), grace,
            )  # fmt: skip
            await asyncio.wait(pending, timeout=CANCEL_SETTLE)


# What each stream_mode sends; metadata, interrupt and end always go (and the error the
# run service adds at the end of a failed run).
ALWAYS_SENT = frozenset({StreamEvent.METADATA, StreamEvent.INTERRUPT, StreamEvent.END})
STREAM_MODES: dict[str, frozenset[StreamEvent]] = {
    "events": frozenset(StreamEvent) - OPT_IN,
    "messages": frozenset({StreamEvent.DELTA, StreamEvent.MESSAGE}),
    "updates": frozenset({StreamEvent.UPDATES}),
    "values": frozenset({StreamEvent.VALUES}),
}


def sent_events(modes: Sequence[str]) -> frozenset[StreamEvent]:
    """The events a stream in these modes sends."""
    return ALWAYS_SENT.union(*(STREAM_MODES[mode] for mode in modes))


def _retrieve(task: asyncio.Task[RunResult]) -> None:
    if not task.cancelled():
        task.exception()


def _log_sink(log: RunLog, sent: frozenset[StreamEvent]) -> EventSink:
    def put(chunk: StreamChunk) -> None:
        if chunk.event in sent:
            log.append(*chunk_payload(chunk))

    return put


def _failed_status(failure: BaseException | None) -> str:
    if isinstance(failure, asyncio.CancelledError):
        return "cancelled"
    if isinstance(failure, RunTimeoutError):
        return "timeout"
    return "error"


def _with_earlier(sink: EventSink | None, earlier: list[Message]) -> EventSink | None:
    """A resumed run's stream: after its metadata, what its earlier attempt said."""
    if sink is None or not earlier:
        return sink
    put = sink

    def with_earlier(chunk: StreamChunk) -> None:
        put(chunk)
        if chunk.event == StreamEvent.METADATA:
            for message in earlier:
                put(StreamChunk(StreamEvent.MESSAGE, chunk.thread_id, chunk.run_id,
                                message=message))  # fmt: skip

    return with_earlier


def thread_busy() -> ApiError:
    return ApiError(
        409,
        "thread_busy",
        "this thread already has a run in progress; wait for it to finish or stop it "
        "with POST /v1/graph/stop",
    )


def run_error(
    exc: BaseException, *, production: bool, cancel_reason: str | None = None
) -> ApiError:
    """Map a failed run to the API error a client sees. Production never shows exception
    text; development shows it with secrets masked. `cancel_reason` is the run's (a run
    the shutdown cancelled is a 503 the client can retry)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, RunTimeoutError):
        return ApiError(504, "run_timeout", "the run took longer than the server's RUN_TIMEOUT")
    if isinstance(exc, asyncio.CancelledError) and cancel_reason == SERVER_SHUTDOWN:
        return ApiError(
            503,
            SERVER_SHUTDOWN,
            "the server is restarting and stopped this run before it finished; its completed "
            "steps are saved: resume it with a request on the same thread_id without new "
            "messages",
            headers={"Retry-After": OVERLOAD_RETRY_AFTER},
        )
    if isinstance(exc, asyncio.CancelledError):
        return ApiError(409, "run_cancelled", "the run was stopped before it finished")
    if isinstance(exc, GraphRecursionError):
        message = "the run exceeded its recursion limit without finishing"
        if not production:
            message = mask_secrets(str(exc))
        return ApiError(422, "recursion_limit_exceeded", message)
    if isinstance(exc, NothingToResumeError):  # the thread's state conflicts, not the body
        return ApiError(409, "nothing_to_resume", mask_secrets(str(exc)))
    if isinstance(exc, InvalidInputError):
        return ApiError(422, "invalid_input", mask_secrets(str(exc)))
    if isinstance(exc, ConflictError):
        return thread_busy()
    refused = model_auth_error(exc)
    if refused is not None:
        return ApiError(
            502,
            "model_auth_failed",
            "the model provider refused the server's credentials; the server log has the details"
            if production
            else "the model provider refused the server's credentials: "
            + mask_secrets(str(refused)),
        )
    if isinstance(exc, CheckpointerError):
        return ApiError(
            503,
            "storage_unavailable",
            "the state store is unavailable; retry shortly"
            if production
            else f"the state store failed: {mask_secrets(str(exc))}",
        )
    if production:
        return ApiError(500, "run_failed", "the run failed; the server log has the details")
    detail = exc.error if isinstance(exc, NodeError) else exc
    node = f" in node {exc.node!r}" if isinstance(exc, NodeError) else ""
    return ApiError(
        500, "run_failed",
        f"the run failed{node}: {type(detail).__name__}: {mask_secrets(str(detail))}",
    )  # fmt: skip


AUTH_STATUSES = frozenset({401, 403})


def model_auth_error(exc: BaseException) -> ModelHTTPError | None:
    """The provider's 401/403 behind a failed run (a wrong or unauthorised API key): the
    server's setup is wrong, not the request, so it is a 502, never retried."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ModelHTTPError) and current.status_code in AUTH_STATUSES:
            return current
        inner = current.error if isinstance(current, NodeError) else None
        current = inner or current.__cause__ or current.__context__
    return None
