"""`CompiledGraph`: runs a validated graph, checkpointing after every node step."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentflow import tracing
from agentflow.graph.builder import END, GraphSpec, Router, Step
from agentflow.graph.command import (
    Command,
    GraphInterrupt,
    Interrupt,
    reset_resume_values,
    set_resume_values,
)
from agentflow.graph.errors import (
    GraphError,
    GraphRecursionError,
    InvalidInputError,
    NodeError,
    NothingToResumeError,
)
from agentflow.graph.messages import Message, Usage, coerce_messages, new_id
from agentflow.graph.state import (
    AgentState,
    apply_update,
    build_state,
    check_input_fields,
    split_update,
    state_values,
)
from agentflow.graph.stream import (
    OPT_IN,
    Listener,
    StreamChunk,
    StreamEvent,
    reset_listener,
    set_listener,
)

if TYPE_CHECKING:
    from agentflow.graph.storage import Checkpoint, Checkpointer, ThreadSnapshot

DEFAULT_RECURSION_LIMIT = 25
ANONYMOUS = "anonymous"  # the user of a run without one (a server without auth)
RESERVED_CONFIG = ("thread_id", "run_id", "user_id", "recursion_limit")
ATTEMPT_STEP = "attempt_step"  # checkpoint metadata: the step number a node attempt ran under
EventSink = Callable[[StreamChunk], None]


@dataclass(slots=True)
class RunResult:
    """What a finished (or paused) run produced."""

    thread_id: str
    run_id: str
    status: str  # done | interrupted
    messages: list[Message]  # messages added by this run, input included
    state: AgentState
    usage: Usage
    interrupt: Interrupt | None = None
    next: list[str] = field(default_factory=list)
    steps: int = 0
    usage_by_model: dict[str, Usage] = field(default_factory=dict)
    # A served LangGraph graph's state as its API sends it (`state` is then empty).
    values: dict[str, Any] | None = None

    def usage_report(self) -> dict[str, Any]:
        """Token totals of the run, overall and per model (for responses, events, logs)."""
        return {
            **self.usage.to_dict(),
            "by_model": {name: u.to_dict() for name, u in self.usage_by_model.items()},
        }


@dataclass(slots=True)
class StateSnapshot:
    """A thread's latest (or a chosen) checkpoint, with the state rebuilt."""

    state: AgentState
    thread_id: str
    checkpoint_id: str
    run_id: str
    step: int
    status: str
    next: list[str]
    interrupt: Interrupt | None
    created_at: float


@dataclass(slots=True)
class _Run:
    """Mutable bookkeeping of one run."""

    thread_id: str
    run_id: str
    user_id: str
    recursion_limit: int
    extra: dict[str, Any]
    emit: EventSink | None
    state: AgentState
    events: frozenset[StreamEvent] | None = None
    step: int = 0
    message_count: int = 0
    new_messages: list[Message] = field(default_factory=list)
    checkpointer: Checkpointer | None = None  # handed to nodes (ToolNode records results)
    # The step number an unfinished attempt (failed, cancelled, interrupted during) of the
    # next node ran under: its retry runs under the same number, so tool idempotency keys
    # (thread, step, call id) match and recorded results are replayed, not run again.
    attempt_step: int | None = None

    @property
    def node_step(self) -> int:
        """The step number the next node runs under (config["step"])."""
        return self.step + 1 if self.attempt_step is None else self.attempt_step

    def chunk(self, event: StreamEvent, **kwargs: Any) -> None:
        if self.emit is None:
            return
        if event not in OPT_IN if self.events is None else event in self.events:
            self.emit(StreamChunk(event, self.thread_id, self.run_id, **kwargs))


class CompiledGraph:
    """A runnable graph. Immutable: `with_checkpointer` returns a new one."""

    def __init__(
        self, spec: GraphSpec, checkpointer: Checkpointer | None = None, name: str = "graph"
    ) -> None:
        self.spec = spec
        self.checkpointer = checkpointer
        self.name = name

    def __repr__(self) -> str:
        cp = type(self.checkpointer).__name__ if self.checkpointer else None
        return f"<CompiledGraph {self.name!r} nodes={list(self.spec.nodes)} checkpointer={cp}>"

    @property
    def state_cls(self) -> type[AgentState]:
        return self.spec.state_cls

    def get_graph(self) -> dict[str, Any]:
        """Nodes, edges (conditional ones marked) and a Mermaid drawing."""
        from agentflow.graph.drawing import describe

        return describe(self.spec, self.name)

    def with_checkpointer(self, checkpointer: Checkpointer | None) -> CompiledGraph:
        """The same graph bound to another checkpointer (the runtime uses this)."""
        return CompiledGraph(self.spec, checkpointer, self.name)

    # -- public run API -------------------------------------------------------------------

    async def ainvoke(
        self, input: Mapping[str, Any] | Command | None, config: Mapping[str, Any] | None = None
    ) -> RunResult:
        return await self.arun(input, config)

    def invoke(
        self, input: Mapping[str, Any] | Command | None, config: Mapping[str, Any] | None = None
    ) -> RunResult:
        """Synchronous wrapper for scripts; inside async code use `ainvoke`."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.arun(input, config))
        raise GraphError("invoke() was called inside a running event loop; use await ainvoke()")

    async def astream(
        self, input: Mapping[str, Any] | Command | None, config: Mapping[str, Any] | None = None
    ) -> AsyncIterator[StreamChunk]:
        """Yield the run's events as they happen. Leaving the loop early cancels the run
        (its completed steps stay checkpointed); a failing node yields an ERROR chunk and
        then raises."""
        queue: asyncio.Queue[StreamChunk | None] = asyncio.Queue()
        task = asyncio.create_task(self.arun(input, config, on_event=queue.put_nowait))
        task.add_done_callback(lambda _: queue.put_nowait(None))
        try:
            while (chunk := await queue.get()) is not None:
                yield chunk
            await task
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def arun(
        self,
        input: Mapping[str, Any] | Command | None,
        config: Mapping[str, Any] | None = None,
        *,
        on_event: EventSink | None = None,
        events: Collection[StreamEvent] | None = None,
        new_thread: bool = False,
        snapshot: ThreadSnapshot | None = None,
    ) -> RunResult:
        """Run to completion (or to an interrupt), passing each event to `on_event` (only
        the kinds in `events`, when given). `new_thread=True` promises the thread has no
        stored state yet, which skips reading it; `snapshot` is its latest state, already
        read by the caller (a server reads it while it takes the thread)."""
        messages, fields, resume, has_resume = _parse_input(input)
        check_input_fields(self.state_cls, fields)
        run = self._new_run(config, on_event)
        run.events = frozenset(events) if events is not None else None
        pending = None if new_thread else await self._load(run, snapshot)
        run.chunk(StreamEvent.METADATA, data={"thread_id": run.thread_id, "run_id": run.run_id})

        skip_before: str | None = None
        resume_values: list[Any] = []
        if has_resume:
            if pending is None or pending.status != "interrupted" or not pending.next:
                raise NothingToResumeError(
                    f"nothing to resume: thread {run.thread_id!r} has no pending interrupt. "
                    "Send messages to start a new run instead."
                )
            node = pending.next[0]
            assert pending.interrupt is not None
            if pending.interrupt.when == "during":
                resume_values = [*pending.interrupt.resume_values, resume]
            skip_before = node
            run.attempt_step = _attempt_step(pending)
        elif not messages and not fields and pending is not None:
            node = pending.next[0]  # continue a paused, crashed, failed or cancelled run
            skip_before = node
            if pending.interrupt is not None and pending.interrupt.when == "during":
                resume_values = list(pending.interrupt.resume_values)
            run.attempt_step = _attempt_step(pending)
        else:
            node = ""

        if messages or fields or not node:
            run.state = apply_update(run.state, messages, fields)
            if not node:
                entry = self.spec.entry
                node = entry if isinstance(entry, str) else await self._route(entry, run, "START")
            await self._save(run, messages, next_node=node, source="input")
        return await self._loop(run, node, skip_before, resume_values)

    async def aget_state(self, config: Mapping[str, Any]) -> AgentState | None:
        """The thread's latest state, or None for a thread that does not exist."""
        snapshot = await self.aget_snapshot(config)
        return snapshot.state if snapshot else None

    async def aget_snapshot(
        self, config: Mapping[str, Any], checkpoint_id: str | None = None
    ) -> StateSnapshot | None:
        cp = self._require_checkpointer("reading state")
        thread_id = _thread_id(config)
        snap = await cp.get_snapshot(thread_id, checkpoint_id)
        if snap is None:
            return None
        c = snap.checkpoint
        return StateSnapshot(
            state=build_state(self.state_cls, c.values, snap.messages),
            thread_id=thread_id,
            checkpoint_id=c.checkpoint_id,
            run_id=c.run_id,
            step=c.step,
            status=c.status,
            next=list(c.next),
            interrupt=c.interrupt,
            created_at=c.created_at,
        )

    async def aupdate_state(
        self, config: Mapping[str, Any], update: Any, *, as_node: str | None = None
    ) -> StateSnapshot:
        """Write `update` (what a node returns: new messages, changed fields) to the thread
        as a checkpoint of its own, as if `as_node` had returned it; a paused or unfinished
        run still continues where it would have. Returns the new state."""
        checkpointer = self._require_checkpointer("updating state")
        run = self._new_run(config, None)
        await self._load(run, None)
        latest = await checkpointer.get_checkpoint(run.thread_id)
        messages, fields = split_update(self.state_cls, update, node=as_node or "update")
        run.state = apply_update(run.state, messages, fields)
        await self._save(
            run, messages,
            next_node=latest.next[0] if latest is not None and latest.next else END,
            source="update", node=as_node,
            interrupt=latest.interrupt if latest is not None else None,
            status=latest.status if latest is not None else "done",
        )  # fmt: skip
        snapshot = await self.aget_snapshot({"thread_id": run.thread_id})
        assert snapshot is not None
        return snapshot

    # -- internals --------------------------------------------------------------------------

    def _require_checkpointer(self, why: str) -> Checkpointer:
        if self.checkpointer is None:
            raise GraphError(
                f"{why} needs a checkpointer: compile(checkpointer=SqliteCheckpointer()) "
                "or app.with_checkpointer(...)"
            )
        return self.checkpointer

    def _new_run(self, config: Mapping[str, Any] | None, emit: EventSink | None) -> _Run:
        config = dict(config or {})
        if "configurable" in config and isinstance(config["configurable"], Mapping):
            config = {**config.pop("configurable"), **config}
        limit = config.get("recursion_limit", DEFAULT_RECURSION_LIMIT)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInputError(f"recursion_limit must be a positive integer, got {limit!r}")
        user_id = config.get("user_id") or ANONYMOUS
        run_id = config.get("run_id") or new_id()
        thread_id = config.get("thread_id") or new_id()
        for key, value in (("user_id", user_id), ("run_id", run_id), ("thread_id", thread_id)):
            if not isinstance(value, str):
                raise InvalidInputError(f"config {key!r} must be a string, got {value!r}")
        extra = {k: v for k, v in config.items() if k not in RESERVED_CONFIG}
        return _Run(
            thread_id, run_id, user_id, limit, extra, emit, state=self.state_cls(),
            checkpointer=self.checkpointer,
        )  # fmt: skip

    async def _load(self, run: _Run, snap: ThreadSnapshot | None) -> Checkpoint | None:
        """Load the thread's state (`snap`, or read it); return its checkpoint if a run is
        pending on it."""
        if self.checkpointer is None:
            return None
        if snap is None:
            snap = await self.checkpointer.get_snapshot(run.thread_id)
        if snap is None:
            return None
        c = snap.checkpoint
        run.state = build_state(self.state_cls, c.values, snap.messages)
        run.step = c.step
        run.message_count = c.message_count
        resumable = ("running", "interrupted", "error", "cancelled")
        return c if c.next and c.status in resumable else None

    async def _loop(
        self, run: _Run, node: str, skip_before: str | None, resume_values: list[Any]
    ) -> RunResult:
        spec = self.spec
        steps = 0
        while node != END:
            if node in spec.interrupt_before and node != skip_before:
                return await self._pause(run, Interrupt(node, when="before"), next_node=node)
            skip_before = None
            if steps >= run.recursion_limit:
                error = GraphRecursionError(
                    f"run stopped after {steps} steps without reaching END (recursion_limit="
                    f"{run.recursion_limit}); the next node was {node!r}. Raise "
                    "config['recursion_limit'] or make the loop end."
                )
                await self._fail(run, node, error)
                raise error
            update, duration_ms = await self._run_node(run, node, resume_values)
            if isinstance(update, Interrupt):
                return await self._pause(run, update, next_node=node)
            resume_values = []
            steps += 1
            goto = None
            if isinstance(update, Command):
                goto, update = update.goto, update.update
            try:
                messages, fields = split_update(self.state_cls, update, node=node)
                state = apply_update(run.state, messages, fields)
                next_node = (
                    self._check_target(goto, node) if goto else await self._next(node, run, state)
                )
            except GraphError as exc:
                await self._fail(run, node, exc)  # the step's update is not committed
                raise
            run.state = state
            pause = node in spec.interrupt_after and next_node != END
            await self._save(
                run,
                messages,
                next_node=next_node,
                source="node",
                node=node,
                interrupt=Interrupt(node, when="after") if pause else None,
            )
            run.attempt_step = None  # the step is committed; the next one gets a new number
            for message in messages:
                run.chunk(StreamEvent.MESSAGE, node=node, message=message)
            run.chunk(StreamEvent.NODE_END, node=node, data={"duration_ms": duration_ms})
            run.chunk(StreamEvent.UPDATES, node=node, data={"messages": messages, "fields": fields})
            run.chunk(StreamEvent.VALUES, state=run.state)
            if pause:
                return self._paused_result(run, Interrupt(node, when="after"), next_node)
            node = next_node
        run.chunk(StreamEvent.STATE, state=run.state)
        result = self._result(run, "done", None, [])
        run.chunk(StreamEvent.END, data={"status": "done", "usage": result.usage_report()})
        return result

    async def _run_node(self, run: _Run, node: str, resume_values: list[Any]) -> tuple[Any, float]:
        step = self.spec.nodes[node]
        run.chunk(StreamEvent.NODE_START, node=node)
        config = _node_config(run, node)
        resume_token = set_resume_values(resume_values) if resume_values else None
        listener_token = None
        if run.emit is not None and (run.events is None or StreamEvent.DELTA in run.events):
            loop = asyncio.get_running_loop()
            listener = Listener(run.emit, loop, run.thread_id, run.run_id, node)
            listener_token = set_listener(listener)
        started = time.perf_counter()
        try:
            if tracing.recording_nodes():
                result = await _traced_call(step, run.state, config)
            else:
                result = await _call(step, run.state, config)
        except GraphInterrupt as interrupt:
            return Interrupt(node, interrupt.value, "during", resume_values), 0.0
        except asyncio.CancelledError:
            # Stopped (by the caller, a timeout or shutdown): record it, resumable at `node`.
            if self.checkpointer is not None:
                save = self._save(run, [], next_node=node, source="cancel", node=node,
                                  status="cancelled", attempted=True)  # fmt: skip
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.shield(save)
            raise
        except Exception as exc:
            error = NodeError(node, exc)
            await self._fail(run, node, error)
            raise error from exc
        finally:
            if listener_token is not None:
                reset_listener(listener_token)
            if resume_token is not None:
                reset_resume_values(resume_token)
        return result, round((time.perf_counter() - started) * 1000, 3)

    async def _next(self, node: str, run: _Run, state: AgentState) -> str:
        router = self.spec.routers.get(node)
        if router is not None:
            return await self._route(router, run, node, state)
        return self.spec.edges.get(node, END)

    async def _route(
        self, router: Router, run: _Run, source: str, state: AgentState | None = None
    ) -> str:
        """Ask a router where to go next. A router that raises fails the step of `source`."""
        try:
            choice = await _call(router.step, state or run.state, _node_config(run, source))
        except (GraphInterrupt, asyncio.CancelledError):
            raise
        except Exception as exc:
            raise NodeError(source, exc) from exc
        if router.path_map is not None:
            try:
                return router.path_map[choice]
            except (KeyError, TypeError):
                raise GraphError(
                    f"the router after {source!r} returned {choice!r}, which is not in its "
                    f"path map {list(router.path_map)}"
                ) from None
        return self._check_target(choice, source)

    def _check_target(self, target: Any, source: str) -> str:
        if target == END or target in self.spec.nodes:
            return str(target)
        raise GraphError(
            f"after node {source!r} the graph was sent to {target!r}, which is not a node; "
            f"known nodes: {sorted(self.spec.nodes)} (or END)"
        )

    async def _save(
        self,
        run: _Run,
        messages: list[Message],
        *,
        next_node: str,
        source: str,
        node: str | None = None,
        interrupt: Interrupt | None = None,
        status: str | None = None,
        attempted: bool = False,
    ) -> None:
        """Checkpoint the run. `attempted`: `next_node` ran under `run.node_step` but did not
        finish; the checkpoint records that number so that a retry runs under it again."""
        metadata = {ATTEMPT_STEP: run.node_step} if attempted else {}
        run.step += 1
        run.message_count += len(messages)
        run.new_messages.extend(messages)
        if self.checkpointer is None:
            return
        from agentflow.graph.storage import Checkpoint

        done = next_node == END
        checkpoint = Checkpoint(
            thread_id=run.thread_id,
            run_id=run.run_id,
            step=run.step,
            values=state_values(run.state),
            message_count=run.message_count,
            next=[] if done else [next_node],
            status=status or ("interrupted" if interrupt else "done" if done else "running"),
            interrupt=interrupt,
            source=source,
            node=node,
            metadata=metadata,
        )
        await self.checkpointer.put(checkpoint, messages, user_id=run.user_id)

    async def _pause(self, run: _Run, interrupt: Interrupt, *, next_node: str) -> RunResult:
        await self._save(
            run,
            [],
            next_node=next_node,
            source="interrupt",
            node=interrupt.node,
            interrupt=interrupt,
            attempted=interrupt.when == "during",
        )
        return self._paused_result(run, interrupt, next_node)

    def _paused_result(self, run: _Run, interrupt: Interrupt, next_node: str) -> RunResult:
        run.chunk(StreamEvent.INTERRUPT, node=interrupt.node, data=interrupt.to_dict())
        result = self._result(run, "interrupted", interrupt, [next_node])
        run.chunk(StreamEvent.END, data={"status": "interrupted", "usage": result.usage_report()})
        return result

    async def _fail(self, run: _Run, node: str, error: Exception) -> None:
        """Record a failed step (state unchanged, resumable at `node`) and emit ERROR."""
        run.chunk(
            StreamEvent.ERROR,
            node=node,
            data={"error_class": type(error).__name__, "message": str(error)},
        )
        if self.checkpointer is None:
            return
        with contextlib.suppress(Exception):
            await self._save(
                run, [], next_node=node, source="error", node=node, status="error", attempted=True
            )

    def _result(
        self, run: _Run, status: str, interrupt: Interrupt | None, next_nodes: list[str]
    ) -> RunResult:
        usage = Usage()
        by_model: dict[str, Usage] = {}
        for message in run.new_messages:
            if message.usage is not None:
                usage = usage + message.usage
                model = str(message.metadata.get("model", "unknown"))
                by_model[model] = by_model.get(model, Usage()) + message.usage
        return RunResult(
            thread_id=run.thread_id,
            run_id=run.run_id,
            status=status,
            messages=list(run.new_messages),
            state=run.state,
            usage=usage,
            interrupt=interrupt,
            next=next_nodes,
            steps=run.step,
            usage_by_model=by_model,
        )


def _node_config(run: _Run, node: str) -> dict[str, Any]:
    return {
        **run.extra,
        "thread_id": run.thread_id,
        "run_id": run.run_id,
        "user_id": run.user_id,
        "recursion_limit": run.recursion_limit,
        "step": run.node_step,
        "node": node,
        "checkpointer": run.checkpointer,
    }


async def _call(step: Step, state: AgentState, config: dict[str, Any]) -> Any:
    args = (state, config) if step.takes_config else (state,)
    if step.is_async:
        result = await step.fn(*args)
    else:
        result = await asyncio.to_thread(step.fn, *args)
    if inspect.isawaitable(result):
        result = await result
    return result


async def _traced_call(step: Step, state: AgentState, config: dict[str, Any]) -> Any:
    attributes = {
        "agentflow.node": config["node"],
        "agentflow.step": config["step"],
        "agentflow.thread_id": config["thread_id"],
        "agentflow.run_id": config["run_id"],
    }
    started = time.perf_counter()
    with tracing.span("agentflow.node", attributes):
        try:
            return await _call(step, state, config)
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000, 3)
            tracing.set_attributes({"agentflow.duration_ms": duration_ms})


def _attempt_step(pending: Checkpoint) -> int | None:
    """The step number the pending node already ran under, when its attempt was recorded
    unfinished (failed, cancelled or interrupted during the node); None otherwise."""
    value = pending.metadata.get(ATTEMPT_STEP)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _thread_id(config: Mapping[str, Any]) -> str:
    thread_id = config.get("thread_id")
    if not isinstance(thread_id, str) or not thread_id:
        raise InvalidInputError("config needs a 'thread_id' string")
    return thread_id


def _parse_input(
    input: Mapping[str, Any] | Command | None,
) -> tuple[list[Message], dict[str, Any], Any, bool]:
    """Split run input into (messages, state fields, resume value, resume given)."""
    if input is None:
        return [], {}, None, False
    if isinstance(input, Command):
        return [], {}, input.resume, True
    if not isinstance(input, Mapping):
        raise InvalidInputError(
            f"run input must be a dict like {{'messages': [...]}}, got {type(input).__name__}"
        )
    unknown = set(input) - {"messages", "state", "resume"}
    if unknown:
        raise InvalidInputError(
            f"unknown input keys {sorted(unknown)}; use 'messages', 'state' and 'resume'"
        )
    raw = input.get("messages") or []
    messages = coerce_messages(raw)
    fields = input.get("state") or {}
    if not isinstance(fields, Mapping):
        raise InvalidInputError("input 'state' must be an object of state fields")
    return messages, dict(fields), input.get("resume"), "resume" in input
