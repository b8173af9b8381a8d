"""The conformance scenarios, written once against the `langgraph_sdk` client.

Each scenario drives one part of the protocol with the real SDK (async; a subset also with the
sync client), asserts what the values must be (semantic asserts, true on `langgraph dev`), and
returns a `Transcript`: the steps in order, each a call name and its normalized result (uuids,
times and ids replaced by placeholders; field names, types, event names and order kept).
`test_conformance.py` compares agentflow's transcripts with `langgraph dev`'s.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from langgraph_sdk.client import LangGraphClient, SyncLangGraphClient
from langgraph_sdk.errors import APIError

from tests.runtime.lgapi.recording import (
    SETUP,
    AsyncRecordingTransport,
    Recorder,
    SyncRecordingTransport,
)

# LangGraph's rule for the default assistant of a graph (langgraph_api/graph.py NAMESPACE_GRAPH)
NAMESPACE_GRAPH = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
TIMEOUT = httpx.Timeout(connect=5, read=30, write=30, pool=5)


def default_assistant_id(graph_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE_GRAPH, graph_id))


@dataclass(frozen=True)
class Target:
    """The graphs a scenario runs: LangGraph's pair, or agentflow's echo graph for both."""

    agent: str  # answers "echo: <text>", streams it, "sleep N ..." waits first
    approve: str  # interrupts, answers "decision: <resume value>"
    approve_text: str  # the message that makes `approve` interrupt
    answer_node: str  # the node of `agent` that answers
    approve_node: str  # the node of `approve` that interrupts
    custom_events: int  # `custom` events an `agent` run writes
    kind: str  # "langgraph" or "agentflow": the graph's framework


LANGGRAPH = Target("agent", "approve", "ship it", "answer", "ask", 1, "langgraph")
AGENTFLOW = Target("echo", "echo", "ask", "respond", "respond", 0, "agentflow")

# -- normalization -----------------------------------------------------------------------------

UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$")
HEX_ID = re.compile(r"\b[0-9a-f]{32}\b")


def normalize(value: Any) -> Any:
    """`value` with uuids, 32-hex ids and timestamps replaced by placeholders (in keys too:
    a thread's `interrupts` map is keyed by task id). Both kinds of id are `<id>`: ids are
    opaque to the protocol's clients (the SDK never parses one), so agentflow's 32-hex
    message ids match LangChain's uuids."""
    if isinstance(value, dict):
        return {normalize(str(k)): normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    if isinstance(value, str):
        if TIME.match(value):
            return "<time>"
        return HEX_ID.sub("<id>", UUID.sub("<id>", value))
    return value


# Keys whose string values are names the protocol defines: kept in a shape.
NAME_KEYS = frozenset({"event", "status", "type", "multitask_strategy", "graph_id", "call"})
# Maps whose keys are the server's or the caller's own (run metadata, config, run kwargs, a
# message's provider metadata): a shape keeps only that they are maps.
FREE_FORM = frozenset({"metadata", "config", "configurable", "kwargs", "context", "lc_versions",
                       "response_metadata", "additional_kwargs"})  # fmt: skip
# The metadata of a `messages` (messages-tuple) event that a shape keeps: LangGraph's own
# (where the chunk came from); the rest is the server's (its version, host, plan, ...).
MESSAGE_META = ("langgraph_node", "langgraph_step", "langgraph_triggers", "langgraph_path",
                "langgraph_checkpoint_ns", "checkpoint_ns")  # fmt: skip


def shape(value: Any, key: str = "") -> Any:
    """The shape of a normalized value: field names, list lengths, scalar types; the names
    under NAME_KEYS kept as they are, FREE_FORM maps and messages metadata reduced."""
    if isinstance(value, dict):
        if key in FREE_FORM:
            return "{...}"
        data = value.get("data")
        if value.get("event") == "messages" and isinstance(data, list) and len(data) == 2:
            chunk, meta = data
            kept = {k: shape(meta[k], k) for k in MESSAGE_META if k in meta}
            return {"event": "messages", "data": [shape(chunk), kept]}
        return {k: shape(v, k) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(v, key) for v in value]
    if isinstance(value, str):
        if key == "status" and value in UNDER_WAY:
            return "<pending or running>"
        return value if key in NAME_KEYS or value.startswith("<") else "str"
    if value is None:
        return None
    return type(value).__name__


# A run's status while it is under way: which of the two a read sees is timing (langgraph dev's
# queue picks a run up after ~1 s, agentflow starts it at once), not protocol.
UNDER_WAY = frozenset({"pending", "running"})

# Stream events whose presence depends on the graph (a LangGraph node writes `custom` events).
GRAPH_EVENTS = frozenset({"custom"})


def outline(step: dict[str, Any]) -> dict[str, Any]:
    """What two different graphs' shaped steps share: the call; for a stream its first event
    and the names of the others; for a resource its fields (and status); for a list the
    fields of its first item."""
    call, result = step["call"], step["result"]
    if (
        isinstance(result, list)
        and result
        and all(isinstance(p, dict) and "event" in p for p in result)
    ):
        names = [p["event"] for p in result]
        return {"call": call, "first": names[0], "events": sorted(set(names) - GRAPH_EVENTS)}
    if isinstance(result, dict):
        return {"call": call, "fields": sorted(result), "status": result.get("status")}
    if isinstance(result, list):
        first = result[0] if result else None
        return {"call": call, "item fields": sorted(first) if isinstance(first, dict) else first}
    return {"call": call, "value": result}


# Steps where `langgraph dev` 0.16.7 differs from what issue 20 asks of agentflow: their
# results are not compared (each scenario asserts both sides).
DIVERGENT_STEPS = {
    # langgraph dev answers 422 {"detail": "Invalid assistant ID: must be a UUID"} to
    # GET /assistants/<graph id> (it accepts a graph id in runs and in /assistants/<id>/graph);
    # the issue asks for a graph id wherever an assistant id is.
    "assistants.get (graph id)",
}


@dataclass
class Transcript:
    """The steps of one scenario run: (call name, normalized result)."""

    server: str  # "langgraph-dev" or "agentflow": where langgraph dev is pinned differently
    recorder: Recorder | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)

    def _label(self, name: str) -> None:
        if self.recorder is not None:
            self.recorder.label = name

    def add(self, name: str, result: Any) -> None:
        self.steps.append({"call": name, "result": normalize(result)})
        self._label(SETUP + ", not a step)")

    async def call(self, name: str, awaitable: Awaitable[Any], expect: int | None = None) -> Any:
        """The result of `awaitable`, or with `expect` the HttpError of that status; any other
        outcome fails the scenario (after it is recorded)."""
        self._label(name)
        try:
            result = await awaitable
        except httpx.HTTPStatusError as exc:
            return self._error(name, exc, expect)
        return self._success(name, result, expect)

    def _error(self, name: str, exc: httpx.HTTPStatusError, expect: int | None) -> HttpError:
        body = exc.body if isinstance(exc, APIError) and exc.body is not None else None
        error = HttpError(exc.response.status_code, body or error_body(exc.response))
        # Compared: the status and that the SDK finds a message. The bodies differ on
        # purpose: langgraph dev sends {"detail"}, agentflow its one error shape
        # {"error": {code, message, request_id}}, which the SDK reads as well.
        self.add(name, {"status_code": error.status, "message": error_message(error.body)})
        if error.status != expect:
            wanted = f"HTTP {expect}" if expect else "success"
            raise AssertionError(f"{name}: HTTP {error.status} {error.body!r}; expected {wanted}")
        return error

    def _success(self, name: str, result: Any, expect: int | None) -> Any:
        self.add(name, result)
        if expect is not None:
            raise AssertionError(f"{name}: succeeded with {result!r}; expected HTTP {expect}")
        return result

    async def stream(self, name: str, parts: AsyncIterator[Any], stop_after: int = 0) -> list[Any]:
        """The parts of a stream as {"event", "data"}; with `stop_after`, the client leaves
        after that many parts (closes the connection)."""
        self._label(name)
        found: list[dict[str, Any]] = []
        try:
            async for part in parts:
                found.append({"event": part.event, "data": part.data})
                if stop_after and len(found) >= stop_after:
                    break
        except httpx.HTTPStatusError as exc:
            self._error(name, exc, None)
        if stop_after:
            await parts.aclose()  # type: ignore[attr-defined]
        self.add(name, found)
        return found

    def call_sync(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """call() for the sync client: `fn(*args, **kwargs)`, which must succeed."""
        self._label(name)
        try:
            result = fn(*args, **kwargs)
        except httpx.HTTPStatusError as exc:
            return self._error(name, exc, None)
        return self._success(name, result, None)

    def stream_sync(self, name: str, parts: Iterator[Any]) -> list[Any]:
        self._label(name)
        try:
            found = [{"event": part.event, "data": part.data} for part in parts]
        except httpx.HTTPStatusError as exc:
            self._error(name, exc, None)
        self.add(name, found)
        return found

    def shape(self) -> list[Any]:
        return [shape(step) for step in self.steps]


@dataclass
class HttpError:
    status: int
    body: Any


def error_message(body: Any) -> str | None:
    """The message langgraph-sdk shows for an error body (its `detail`, or `error.message`)."""
    if isinstance(body, dict):
        if isinstance(body.get("detail"), str):
            return "<message>"
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return "<message>"
    return None


def error_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text
    except httpx.ResponseNotRead:
        return "(body not read)"


# Every call on a connection of its own: a server with two workers answers the calls of one
# scenario from both (the kernel hands each new connection to either), so a run started by
# one worker is joined, streamed, cancelled and read through the other too.
FRESH_CONNECTIONS = httpx.Limits(max_keepalive_connections=0)


def async_client(url: str, recorder: Recorder) -> LangGraphClient:
    transport = AsyncRecordingTransport(recorder, FRESH_CONNECTIONS)
    return LangGraphClient(httpx.AsyncClient(base_url=url, transport=transport, timeout=TIMEOUT))


def sync_client(url: str, recorder: Recorder) -> SyncLangGraphClient:
    transport = SyncRecordingTransport(recorder, FRESH_CONNECTIONS)
    return SyncLangGraphClient(httpx.Client(base_url=url, transport=transport, timeout=TIMEOUT))


# -- helpers -----------------------------------------------------------------------------------


def user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def message_text(message: Any) -> str:
    content = message.get("content", "") if isinstance(message, dict) else ""
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def is_reply(message: Any) -> bool:
    return isinstance(message, dict) and (
        message.get("type") in ("ai", "AIMessageChunk") or message.get("role") == "assistant"
    )


def reply(values: Any) -> str:
    """The text of the last assistant message of a thread's values."""
    messages = values.get("messages", []) if isinstance(values, dict) else []
    replies = [message_text(m) for m in messages if is_reply(m)]
    assert replies, f"no assistant message in {values!r}"
    return replies[-1]


def events(parts: list[dict[str, Any]]) -> list[str]:
    return [p["event"] for p in parts]


def streamed_text(parts: list[dict[str, Any]]) -> str:
    """The text of the `messages` (messages-tuple) chunks of a stream, in order."""
    text = ""
    for part in parts:
        if part["event"] == "messages":
            chunk, _metadata = part["data"]
            text += message_text(chunk)
    return text


async def wait_status(
    client: LangGraphClient, thread_id: str, run_id: str, done: set[str], timeout: float = 10
) -> str:
    """The run's status once it is in `done` (polled, bounded)."""
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        status = (await client.runs.get(thread_id, run_id))["status"]
        if status in done:
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} still {status!r} after {timeout} s, expected {done}")


async def wait_input_saved(
    client: LangGraphClient, thread_id: str, text: str, timeout: float = 10
) -> None:
    """Once the thread's state holds the user message `text` (the run saved its input)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        values = (await client.threads.get_state(thread_id))["values"]
        messages = values.get("messages", []) if isinstance(values, dict) else []
        if any(message_text(m) == text for m in messages):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"thread {thread_id} has not saved {text!r} after {timeout} s")


async def wait_running(client: LangGraphClient, thread_id: str, run_id: str) -> None:
    await wait_status(client, thread_id, run_id, {"running", "success", "error", "interrupted"})


# -- scenarios (async client) ------------------------------------------------------------------


async def system(c: LangGraphClient, tg: Target, t: Transcript) -> None:
    ok = await t.call("GET /ok", c.http.get("/ok"))
    assert ok["ok"] is True
    info = await t.call("GET /info", c.http.get("/info"))
    assert isinstance(info, dict) and "version" in info and "flags" in info


async def assistants(c: LangGraphClient, tg: Target, t: Transcript) -> None:
    expected = default_assistant_id(tg.agent)
    found = await t.call("assistants.search", c.assistants.search(graph_id=tg.agent))
    assert [a["assistant_id"] for a in found] == [expected]
    count = await t.call("assistants.count", c.assistants.count(graph_id=tg.agent))
    assert count == 1
    by_id = await t.call("assistants.get", c.assistants.get(expected))
    assert by_id["graph_id"] == tg.agent and by_id["assistant_id"] == expected
    pinned = 422 if t.server == "langgraph-dev" else None  # see DIVERGENT_STEPS
    by_graph = await t.call("assistants.get (graph id)", c.assistants.get(tg.agent), pinned)
    assert pinned or by_graph == by_id
    await t.call("assistants.get (unknown)", c.assistants.get(str(uuid.uuid4())), 404)
    graph = await t.call("assistants.get_graph", c.assistants.get_graph(tg.agent))
    nodes = {n["id"] for n in graph["nodes"]}
    assert {"__start__", tg.answer_node, "__end__"} <= nodes, nodes
    schemas = await t.call("assistants.get_schemas", c.assistants.get_schemas(expected))
    assert schemas["graph_id"] == tg.agent
    assert "messages" in schemas["state_schema"]["properties"]


async def threads(c: LangGraphClient, tg: Target, t: Transcript) -> None:
    tag = uuid.uuid4().hex
    created = await t.call("threads.create", c.threads.create(metadata={"suite": tag}))
    tid = created["thread_id"]
    assert created["status"] == "idle" and created["metadata"]["suite"] == tag
    again = await t.call(
        "threads.create (if_exists=do_nothing)",
        c.threads.create(thread_id=tid, if_exists="do_nothing", metadata={"other": 1}),
    )
    assert again["thread_id"] == tid and again["metadata"] == created["metadata"]
    await t.call(
        "threads.create (if_exists=raise)", c.threads.create(thread_id=tid, if_exists="raise"), 409
    )
    got = await t.call("threads.get", c.threads.get(tid))
    assert got["thread_id"] == tid
    patched = await t.call("threads.update", c.threads.update(tid, metadata={"k": "v"}))
    assert patched["metadata"]["k"] == "v" and patched["metadata"]["suite"] == tag
    found = await t.call("threads.search", c.threads.search(metadata={"suite": tag}))
    assert [x["thread_id"] for x in found] == [tid]
    count = await t.call("threads.count", c.threads.count(metadata={"suite": tag}))
    assert count == 1
    empty = await t.call("threads.get_state (new thread)", c.threads.get_state(tid))
    assert empty["values"] in ({}, []) and empty["next"] == []
    deleted = await t.call("threads.delete", c.threads.delete(tid))
    assert deleted is None
    await t.call("threads.get (deleted)", c.threads.get(tid), 404)


async def thread_state(c: LangGraphClient, tg: Target, t: Transcript) -> None:
    tid = (await c.threads.create())["thread_id"]
    values = await t.call("runs.wait", c.runs.wait(tid, tg.agent, input=user("hello")))
    assert reply(values) == "echo: hello"
    state = await t.call("threads.get_state", c.threads.get_state(tid))
    assert reply(state["values"]) == "echo: hello" and state["next"] == []
    thread = await t.call("threads.get (after run)", c.threads.get(tid))
    assert thread["status"] == "idle" and reply(thread["values"]) == "echo: hello"
    note = {"messages": [{"role": "assistant", "content": "edited"}]}
    updated = await t.call(
        "threads.update_state (values, as_node)",
        c.threads.update_state(tid, note, as_node=tg.answer_node),
    )
    assert updated["checkpoint"]["thread_id"] == tid
    after = await t.call("threads.get_state (after update)", c.threads.get_state(tid))
    assert reply(after["values"]) == "edited" and len(after["values"]["messages"]) == 3
    history = await t.call("threads.get_history", c.threads.get_history(tid))
    assert reply(history[0]["values"]) == "edited" and len(history) >= 3
    assert history[-1]["values"] in ({}, {"messages": []}) or history[-1]["next"]
    two = await t.call("threads.get_history (limit=2)", c.threads.get_history(tid, limit=2))
    assert [h["checkpoint_id"] for h in two] == [h["checkpoint_id"] for h in history[:2]]
    older = await t.call(
        "threads.get_state (checkpoint_id)",
        c.threads.get_state(tid, checkpoint_id=history[1]["checkpoint_id"]),
    )
    assert reply(older["values"]) == "echo: hello"


STREAM_MODES: list[Any] = ["values", "updates", "messages-tuple", "custom", "events",
                           ["values", "updates", "messages-tuple", "custom"]]  # fmt: skip


async def stream_modes(c: LangGraphClient, tg: Target, t: Transcript) -> None:
    tid = (await c.threads.create())["thread_id"]
    for i, mode in enumerate(STREAM_MODES):
        text = f"hi {i}"
        label = mode if isinstance(mode, str) else ",".join(mode)
        parts = await t.stream(
            f"runs.stream ({label})",
            c.runs.stream(tid, tg.agent, input=user(text), stream_mode=mode),
        )
        names = events(parts)
        assert names[0] == "metadata" and parts[0]["data"]["run_id"], names
        modes = [mode] if isinstance(mode, str) else mode
        if "values" in modes:
            last = [p for p in parts if p["event"] == "values"][-1]
            assert reply(last["data"]) == f"echo: {text}"
        if "updates" in modes:
            updates = [p["data"] for p in parts if p["event"] == "updates"]
            assert [list(u) for u in updates] == [[tg.answer_node]], updates
            assert reply(updates[0][tg.answer_node]) == f"echo: {text}"
        if "messages-tuple" in modes:
            assert streamed_text(parts) == f"echo: {text}", parts
        if "custom" in modes:
            assert names.count("custom") == tg.custom_events
        if mode == "events":
            assert "events" in names and all(n in ("metadata", "events") for n in names)


async def stateless(c: LangGraphClient, tg: Target, t: Transcript) -> None:
    parts = await t.stream(
        "runs.stream (stateless)",
        c.runs.stream(None, tg.agent, input=user("solo"), stream_mode=["values", "updates"]),
    )
    assert events(parts)[0] == "metadata"
    assert reply([p for p in parts if p["event"] == "values"][-1]["data"]) == "echo: solo"
    values = await t.call("runs.wait (stateless)", c.runs.wait(None, tg.agent, input=user("one")))
    assert reply(values) == "echo: one"
    created: list[Any] = []
    parts = await t.stream(
        "runs.stream (stateless, on_run_created)",
        c.runs.stream(None, tg.agent, input=user("cb"), on_run_created=created.append),
    )
    assert len(created) == 1 and created[0]["run_id"] == parts[0]["data"]["run_id"]
    t.add("on_run_created (stateless)", created)


async def background(c: LangGraphClient, tg: Target, t: Transcript) -> None:
    tid = (await c.threads.create())["thread_id"]
    run = await t.call("runs.create", c.runs.create(tid, tg.agent, input=user("sleep 0.3 bg")))
    rid = run["run_id"]
    assert run["thread_id"] == tid and run["status"] in ("pending", "running")
    got = await t.call("runs.get", c.runs.get(tid, rid))
    assert got["run_id"] == rid
    values = await t.call("runs.join", c.runs.join(tid, rid))
    assert reply(values) == "echo: sleep 0.3 bg"
    done = await t.call("runs.get (after join)", c.runs.get(tid, rid))
    assert done["status"] == "success"
    listed = await t.call("runs.list", c.runs.list(tid))
    assert [r["run_id"] for r in listed] == [rid]
    # join_stream while the run works: the events from then on, then the end
    run = await t.call(
        "runs.create (values, updates)",
        c.runs.create(tid, tg.agent, input=user("sleep 0.5 js"), stream_mode=["values", "updates"]),
    )
    parts = await t.stream("runs.join_stream", c.runs.join_stream(tid, run["run_id"]))
    assert "updates" in events(parts), parts
    assert reply([p for p in parts if p["event"] == "values"][-1]["data"]) == "echo: sleep 0.5 js"
    # cancel a running run
    run = await t.call("runs.create (slow)", c.runs.create(tid, tg.agent, input=user("sleep 5 x")))
    await wait_input_saved(c, tid, "sleep 5 x")
    cancelled = await t.call("runs.cancel (wait)", c.runs.cancel(tid, run["run_id"], wait=True))
    # The SDK's annotation says None; the server answers what joining the run gives: the
    # values the run streams after the cancel request, none here ({}) once its input is saved.
    assert cancelled == {}, f"runs.cancel(wait=True) answered {cancelled!r}, not {{}}"
    after = await t.call("runs.get (cancelled)", c.runs.get(tid, run["run_id"]))
    assert after["status"] == "interrupted"
    listed = await t.call("runs.list (three)", c.runs.list(tid))
    assert len(listed) == 3


async def multitask(c: LangGraphClient, tg: Target, t: Transcript) -> None:
    for strategy in ("reject", "enqueue", "interrupt", "rollback"):
        tid = (await c.threads.create())["thread_id"]
        first = await t.call(
            f"runs.create (first, {strategy})",
            c.runs.create(tid, tg.agent, input=user("sleep 1 a")),
        )
        await wait_running(c, tid, first["run_id"])
        second = await t.call(
            f"runs.create (multitask_strategy={strategy})",
            c.runs.create(tid, tg.agent, input=user("b"), multitask_strategy=strategy),
            409 if strategy == "reject" else None,
        )
        if strategy == "reject":
            values = await t.call("runs.join (first)", c.runs.join(tid, first["run_id"]))
            assert reply(values) == "echo: sleep 1 a"
            continue
        assert second["multitask_strategy"] == strategy
        values = await t.call(f"runs.join (second, {strategy})", c.runs.join(tid, second["run_id"]))
        assert reply(values) == "echo: b"
        texts = [message_text(m) for m in values["messages"]]
        old = await t.call(
            f"runs.get (first, {strategy})",
            c.runs.get(tid, first["run_id"]),
            404 if strategy == "rollback" else None,  # a rolled back run is deleted
        )
        if strategy == "enqueue":
            assert old["status"] == "success"
            assert texts == ["sleep 1 a", "echo: sleep 1 a", "b", "echo: b"]
        elif strategy == "interrupt":
            assert old["status"] == "interrupted"
            assert texts[-2:] == ["b", "echo: b"] and "echo: sleep 1 a" not in texts
        else:
            assert texts == ["b", "echo: b"]


async def if_not_exists(c: LangGraphClient, tg: Target, t: Transcript) -> None:
    tid = str(uuid.uuid4())
    await t.call("runs.wait (unknown thread)", c.runs.wait(tid, tg.agent, input=user("x")), 404)
    values = await t.call(
        "runs.wait (if_not_exists=create)",
        c.runs.wait(tid, tg.agent, input=user("new"), if_not_exists="create"),
    )
    assert reply(values) == "echo: new"
    thread = await t.call("threads.get (created by run)", c.threads.get(tid))
    assert thread["thread_id"] == tid and thread["status"] == "idle"
    other = str(uuid.uuid4())
    parts = await t.stream(
        "runs.stream (if_not_exists=create)",
        c.runs.stream(other, tg.agent, input=user("s"), if_not_exists="create"),
    )
    assert reply(parts[-1]["data"]) == "echo: s"


DISCONNECT_MODES: list[tuple[Literal["cancel", "continue"], str]] = [
    ("cancel", "interrupted"),  # on_disconnect: the run's status once its client left
    ("continue", "success"),
]


async def disconnect(c: LangGraphClient, tg: Target, t: Transcript) -> None:
    for mode, final in DISCONNECT_MODES:
        tid = (await c.threads.create())["thread_id"]
        created: list[Any] = []
        parts = await t.stream(
            f"runs.stream (on_disconnect={mode}, left after metadata)",
            c.runs.stream(
                tid,
                tg.agent,
                input=user("sleep 1 d"),
                on_disconnect=mode,
                on_run_created=created.append,
            ),
            stop_after=1,
        )
        rid = parts[0]["data"]["run_id"]
        assert created == [{"run_id": rid, "thread_id": tid}], created
        t.add(f"on_run_created ({mode})", created)
        status = await wait_status(c, tid, rid, {"success", "interrupted", "error"})
        t.add(f"run status after leaving ({mode})", status)
        assert status == final


async def interrupt_resume(c: LangGraphClient, tg: Target, t: Transcript) -> None:
    tid = (await c.threads.create())["thread_id"]
    parts = await t.stream(
        "runs.stream (interrupt)",
        c.runs.stream(
            tid, tg.approve, input=user(tg.approve_text), stream_mode=["values", "updates"]
        ),
    )
    updates = [p["data"] for p in parts if p["event"] == "updates"]
    assert updates and "__interrupt__" in updates[-1], parts
    asked = updates[-1]["__interrupt__"][0]["value"]
    assert asked["question"] == "approve?", asked
    state = await t.call("threads.get_state (interrupted)", c.threads.get_state(tid))
    assert state["next"] == [tg.approve_node]
    assert state["tasks"][0]["interrupts"][0]["value"]["question"] == "approve?"
    thread = await t.call("threads.get (interrupted)", c.threads.get(tid))
    assert thread["status"] == "interrupted" and thread["interrupts"]
    parts = await t.stream(
        "runs.stream (command.resume)",
        c.runs.stream(tid, tg.approve, command={"resume": "yes"}, stream_mode="values"),
    )
    assert reply(parts[-1]["data"]) == "decision: yes"
    thread = await t.call("threads.get (resumed)", c.threads.get(tid))
    assert thread["status"] == "idle"
    # the same with runs.wait
    tid = (await c.threads.create())["thread_id"]
    values = await t.call(
        "runs.wait (interrupt)", c.runs.wait(tid, tg.approve, input=user(tg.approve_text))
    )
    assert values["__interrupt__"][0]["value"]["question"] == "approve?", values
    values = await t.call(
        "runs.wait (command.resume)", c.runs.wait(tid, tg.approve, command={"resume": "no"})
    )
    assert reply(values) == "decision: no"


ASYNC_SCENARIOS: dict[str, Callable[[LangGraphClient, Target, Transcript], Awaitable[None]]] = {
    f.__name__: f
    for f in (
        system,
        assistants,
        threads,
        thread_state,
        stream_modes,
        stateless,
        background,
        multitask,
        if_not_exists,
        disconnect,
        interrupt_resume,
    )
}


# -- the sync client: a representative subset --------------------------------------------------


def sync_subset(c: SyncLangGraphClient, tg: Target, t: Transcript) -> None:
    ok = t.call_sync("GET /ok (sync)", c.http.get, "/ok")
    assert ok["ok"] is True
    found = t.call_sync("assistants.search (sync)", c.assistants.search, graph_id=tg.agent)
    assert [a["assistant_id"] for a in found] == [default_assistant_id(tg.agent)]
    tid = t.call_sync("threads.create (sync)", c.threads.create)["thread_id"]
    parts = t.stream_sync(
        "runs.stream (sync, values)",
        c.runs.stream(tid, tg.agent, input=user("sync"), stream_mode="values"),
    )
    assert events(parts)[0] == "metadata" and reply(parts[-1]["data"]) == "echo: sync"
    values = t.call_sync("runs.wait (sync)", c.runs.wait, tid, tg.agent, input=user("again"))
    assert reply(values) == "echo: again"
    state = t.call_sync("threads.get_state (sync)", c.threads.get_state, tid)
    assert len(state["values"]["messages"]) == 4
    run = t.call_sync("runs.create (sync)", c.runs.create, None, tg.agent, input=user("bg"))
    assert run["thread_id"] is None or isinstance(run["thread_id"], str)
    tid = t.call_sync("threads.create (sync, approve)", c.threads.create)["thread_id"]
    values = t.call_sync(
        "runs.wait (sync, interrupt)", c.runs.wait, tid, tg.approve, input=user(tg.approve_text)
    )
    assert values["__interrupt__"][0]["value"]["question"] == "approve?"
    values = t.call_sync(
        "runs.wait (sync, command.resume)", c.runs.wait, tid, tg.approve, command={"resume": "ok"}
    )
    assert reply(values) == "decision: ok"
