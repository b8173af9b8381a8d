"""Closed-loop load over aiohttp: C clients, each doing back-to-back streamed runs.

One `Target` per protocol (agentflow `/v1/graph/stream`, LangGraph's thread run stream, the
model's own chat completions) says how to start a run and what each SSE frame means. A run
is timed from sending the request to its end (agentflow: the `end` event; the others: the
end of the stream); time to first token is to the first frame carrying content.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

TOKEN, END, ERROR = "token", "end", "error"
OK, REFUSED = "ok", "refused"
ERROR_PAUSE = 0.1  # a client whose run failed at once waits this long, not to spin
MAX_RETRY_AFTER = 5.0
USER_MESSAGE = {"role": "user", "content": "hello"}


@dataclass(frozen=True)
class Target:
    name: str
    request: Callable[[], tuple[str, bytes]]  # URL and body of one run (a fresh thread each)
    classify: Callable[[bytes], tuple[str, str] | None]  # frame -> (TOKEN|END|ERROR, detail)
    end_at_eof: bool  # a stream that ends without an END frame ended well
    # the target client i uses, when each client has its own (e.g. its own thread)
    per_client: Callable[[int], Target] | None = None

    def for_client(self, index: int) -> Target:
        return self.per_client(index) if self.per_client else self


HEADERS = {"Content-Type": "application/json", "Accept": "text/event-stream"}


def sse_event(frame: bytes) -> tuple[bytes, bytes]:
    """(event name, data) of one SSE frame (lines already split on \\n)."""
    event = data = b""
    for line in frame.split(b"\n"):
        if line.startswith(b"event:"):
            event = line[6:].strip()
        elif line.startswith(b"data:"):
            data = line[5:].strip()
    return event, data


def error_code(data: bytes) -> str:
    try:
        body = json.loads(data)
    except ValueError:
        return "?"
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return str(inner.get("code") or inner.get("type") or inner.get("error") or "?")
        return str(inner)
    return "?"


def agentflow_frame(frame: bytes) -> tuple[str, str] | None:
    event, data = sse_event(frame)
    if event == b"delta":
        return TOKEN, ""
    if event == b"end":
        return END, ""
    if event == b"error":
        return ERROR, error_code(data)
    return None


def langgraph_frame(frame: bytes) -> tuple[str, str] | None:
    event, data = sse_event(frame)
    if event == b"messages" and b'"content":"",' not in data[:40]:
        return TOKEN, ""
    if event == b"error":
        return ERROR, error_code(data)
    return None


def openai_frame(frame: bytes) -> tuple[str, str] | None:
    _, data = sse_event(frame)
    if data == b"[DONE]":
        return END, ""
    if data.startswith(b'{"error"'):
        return ERROR, error_code(data)
    if b'"content":' in data:
        return TOKEN, ""
    return None


def agentflow_target(base_url: str) -> Target:
    url = base_url + "/v1/graph/stream"

    def request() -> tuple[str, bytes]:
        body = {"messages": [USER_MESSAGE], "thread_id": f"cap-{uuid.uuid4().hex}"}
        return url, json.dumps(body).encode()

    return Target("agentflow", request, agentflow_frame, end_at_eof=False)


def langgraph_target(base_url: str) -> Target:
    """What langgraph-sdk's `client.runs.stream(thread_id, "agent", input=...,
    stream_mode="messages-tuple", if_not_exists="create")` sends: a new thread in the same
    request, streaming the model's message chunks (what a chat UI shows)."""
    payload = {"assistant_id": "agent", "input": {"messages": [USER_MESSAGE]},
               "stream_mode": ["messages-tuple"], "if_not_exists": "create"}  # fmt: skip
    body = json.dumps(payload).encode()

    def request() -> tuple[str, bytes]:
        return f"{base_url}/threads/{uuid.uuid4()}/runs/stream", body

    return Target("langgraph", request, langgraph_frame, end_at_eof=True)


def langgraph_thread_target(base_url: str) -> Target:
    """The same request as `langgraph_target`, but each client keeps one thread of its own
    for all its runs, as a chat client does: `/threads/{the client's thread}/runs/stream`
    (the first run creates it through if_not_exists=create; later runs find it, with the
    earlier turns in its state)."""
    payload = {"assistant_id": "agent", "input": {"messages": [USER_MESSAGE]},
               "stream_mode": ["messages-tuple"], "if_not_exists": "create"}  # fmt: skip
    body = json.dumps(payload).encode()

    def for_client(index: int) -> Target:
        url = f"{base_url}/threads/{uuid.uuid4()}/runs/stream"
        return Target("langgraph thread", lambda: (url, body), langgraph_frame, end_at_eof=True)

    template = langgraph_target(base_url)
    return Target("langgraph thread", template.request, langgraph_frame, True, for_client)


def model_target(base_url: str, model: str) -> Target:
    url = base_url + "/v1/chat/completions"
    payload = {"model": model, "messages": [USER_MESSAGE], "stream": True,
               "stream_options": {"include_usage": True}}  # fmt: skip
    body = json.dumps(payload).encode()
    return Target("model", lambda: (url, body), openai_frame, end_at_eof=False)


@dataclass(slots=True)
class Run:
    started: float
    ended: float
    first_token: float | None  # seconds after `started`
    outcome: str  # OK, REFUSED, or the kind of error
    retry_after: float = 0.0

    @property
    def latency(self) -> float:
        return self.ended - self.started


def status_outcome(status: int, headers: dict[str, str], body: bytes) -> tuple[str, float]:
    retry_after = headers.get("Retry-After")
    if status == 503 and retry_after is not None:
        try:
            return REFUSED, float(retry_after)
        except ValueError:
            return REFUSED, 1.0
    return f"HTTP {status} {error_code(body)}", 0.0


async def one_run(session: aiohttp.ClientSession, target: Target, timeout: float) -> Run:
    url, body = target.request()
    started = time.perf_counter()
    first: float | None = None
    outcome = ""
    responded = False
    try:
        async with session.post(
            url, data=body, headers=HEADERS,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:  # fmt: skip
            responded = True
            if response.status != 200:
                text = await response.read()
                kind, retry_after = status_outcome(response.status, dict(response.headers), text)
                return Run(started, time.perf_counter(), None, kind, retry_after)
            buffer = b""
            ended = 0.0
            async for chunk in response.content.iter_any():
                buffer = (buffer + chunk).replace(b"\r\n", b"\n")
                *frames, buffer = buffer.split(b"\n\n")
                for frame in frames:
                    seen = target.classify(frame)
                    if seen is None:
                        continue
                    kind, detail = seen
                    if kind == TOKEN and first is None:
                        first = time.perf_counter() - started
                    elif kind == ERROR and not outcome:
                        outcome = f"SSE error {detail}"
                    elif kind == END and not ended:
                        ended = time.perf_counter()  # read on to EOF: the connection is reused
            if target.end_at_eof and not ended:
                ended = time.perf_counter()
            if not ended:
                return Run(started, time.perf_counter(), first, outcome or "stream cut short")
            return Run(started, ended, first, outcome or OK)
    except TimeoutError:
        return Run(started, time.perf_counter(), first, f"timeout ({timeout:.0f} s, client)")
    except aiohttp.ClientError as exc:
        return Run(started, time.perf_counter(), first, connection_error(exc, responded))


def connection_error(exc: aiohttp.ClientError, responded: bool) -> str:
    """`connection <class> (<OS reason>), <before the response | mid-response>`."""
    os_error = getattr(exc, "os_error", exc)  # ClientConnectorError wraps the OSError
    reason = getattr(os_error, "strerror", None)
    where = "mid-response" if responded else "before the response"
    return f"connection {type(exc).__name__}{f' ({reason})' if reason else ''}, {where}"


@dataclass
class Window:
    """The clock of one level: warm-up from `start`, measured from `t0` to `t_end`."""

    start: float
    t0: float
    t_end: float

    @classmethod
    def from_now(cls, warmup: float, duration: float) -> Window:
        now = time.perf_counter()
        return cls(now, now + warmup, now + warmup + duration)


async def closed_loop(
    target: Target, clients: int, window: Window, timeout: float, ramp: float
) -> list[Run]:
    """`clients` concurrent clients, each starting a new run as soon as its last one ended,
    until `window.t_end`; runs still going then end on their own (each within `timeout`).
    Client i starts at i/clients * `ramp`: thousands connecting in the same instant
    overflow a listen queue, and clients started together stay in lockstep, finishing in
    waves that a window counts whole or not at all. A refused run's client waits for its
    Retry-After (at most 5 s) before its next run."""
    connector = aiohttp.TCPConnector(limit=0)
    runs: list[Run] = []
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client(i: int) -> None:
            mine = target.for_client(i)
            await asyncio.sleep(i / clients * ramp)
            while time.perf_counter() < window.t_end:
                run = await one_run(session, mine, timeout)
                runs.append(run)
                pause = min(run.retry_after, MAX_RETRY_AFTER) if run.outcome == REFUSED else 0.0
                if run.outcome not in (OK, REFUSED):
                    pause = ERROR_PAUSE
                if pause:
                    await asyncio.sleep(min(pause, max(0.0, window.t_end - time.perf_counter())))

        await asyncio.gather(*(client(i) for i in range(clients)))
    return runs
