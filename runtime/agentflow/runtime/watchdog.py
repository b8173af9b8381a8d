"""Event-loop stall detection: which node blocked the worker, and for how long.

A node that calls blocking code from `async def` (time.sleep, a sync HTTP client, heavy CPU)
stops every request of its worker. The watchdog is a heartbeat callback on the event loop
plus a daemon thread: when the loop has not run the heartbeat for more than `threshold`
seconds, the thread reads the loop thread's stack (`sys._current_frames()`, documented) and
notes the graph node running there and the innermost line of code outside the standard
library and installed packages. When the loop runs again, one WARNING says:

    event loop blocked for 2.1 s in node lookup (/app/graph/react.py:12)

A stall still going after `report_after` seconds is logged at once (ERROR): the supervisor
may kill the worker before the stall ends.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import sysconfig
import threading
import time
from dataclasses import dataclass
from types import CodeType, FrameType

from agentflow.graph.compiled import CompiledGraph

logger = logging.getLogger("agentflow.runtime.watchdog")

STALL_THRESHOLD = 1.0  # seconds without a heartbeat that make a stall
HEARTBEAT_INTERVAL = 0.1
REPORT_AFTER = 4.0  # a stall this long is logged before it ends (the supervisor kills at 5)

# The coroutine that runs one node: its `node` local names the node being run.
NODE_RUNNER: CodeType = CompiledGraph._run_node.__code__
LIBRARY_DIRS = tuple(
    sorted({sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")})
)


@dataclass(frozen=True, slots=True)
class Culprit:
    """Where the loop's thread was during a stall."""

    node: str | None
    location: str | None  # "file:line"

    def describe(self) -> str:
        where = f"in node {self.node}" if self.node else "outside any graph node"
        return f"{where} ({self.location or 'location unknown'})"


def is_library(filename: str) -> bool:
    return filename.startswith("<") or filename.startswith(LIBRARY_DIRS)


def find_culprit(frame: FrameType | None) -> Culprit:
    """The node being run and the innermost line of non-library code in `frame`'s stack."""
    node: str | None = None
    location: str | None = None
    while frame is not None:
        code = frame.f_code
        if location is None and not is_library(code.co_filename):
            location = f"{code.co_filename}:{frame.f_lineno}"
        if code is NODE_RUNNER:
            value = frame.f_locals.get("node")
            node = value if isinstance(value, str) else None
            break  # the frames further out are the executor's and the server's
        frame = frame.f_back
    return Culprit(node, location)


class Watchdog:
    """Watches one event loop (see the module). Start it from the loop's own thread."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        threshold: float = STALL_THRESHOLD,
        interval: float = HEARTBEAT_INTERVAL,
        report_after: float = REPORT_AFTER,
    ) -> None:
        self.loop = loop
        self.threshold = threshold
        self.interval = interval
        self.report_after = report_after
        self.loop_thread = threading.get_ident()
        self.last_beat = time.monotonic()
        self.lock = threading.Lock()
        self.culprit: Culprit | None = None  # of the stall that began at `stall_of`
        self.stall_of = 0.0
        self.reported = False
        self.stopped = threading.Event()
        self.timer: asyncio.TimerHandle | None = None
        self.thread = threading.Thread(target=self.watch, name="agentflow-watchdog", daemon=True)

    def start(self) -> Watchdog:
        self.last_beat = time.monotonic()
        self.timer = self.loop.call_later(self.interval, self.beat)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        if self.timer is not None:
            self.timer.cancel()
        if self.thread.is_alive():
            self.thread.join(timeout=1)

    # -- on the event loop -----------------------------------------------------------------

    def beat(self) -> None:
        now = time.monotonic()
        previous, self.last_beat = self.last_beat, now
        gap = now - previous
        if gap > self.threshold:
            with self.lock:
                culprit = self.culprit if self.stall_of == previous else None
                reported = self.reported and self.stall_of == previous
                self.culprit, self.reported = None, False
            if not reported:
                self.log_stall(gap, culprit, logging.WARNING, "")
        if not self.stopped.is_set():
            self.timer = self.loop.call_later(self.interval, self.beat)

    # -- on the watchdog's thread ------------------------------------------------------------

    def watch(self) -> None:
        while not self.stopped.wait(self.interval):
            since = self.last_beat
            blocked = time.monotonic() - since
            if blocked <= self.threshold:
                continue
            with self.lock:
                if self.stall_of != since or self.culprit is None:
                    frame = sys._current_frames().get(self.loop_thread)
                    self.stall_of, self.culprit, self.reported = since, find_culprit(frame), False
                report = blocked > self.report_after and not self.reported
                if report:
                    self.reported = True
                culprit = self.culprit
            if report:
                self.log_stall(blocked, culprit, logging.ERROR, " and counting")

    def log_stall(self, blocked: float, culprit: Culprit | None, level: int, tail: str) -> None:
        culprit = culprit or Culprit(None, None)
        logger.log(
            level,
            "event loop blocked for %.1f s%s %s: every request of this worker waited; "
            "move blocking calls out of async code (a sync node runs in a thread)",
            blocked, tail, culprit.describe(),
            extra={"blocked_s": round(blocked, 2), "node": culprit.node,
                   "location": culprit.location},
        )  # fmt: skip


def start_watchdog(
    loop: asyncio.AbstractEventLoop | None = None, *, threshold: float = STALL_THRESHOLD
) -> Watchdog:
    """Watch `loop` (default: the running one); call from the loop's thread. `.stop()` ends
    it."""
    return Watchdog(loop or asyncio.get_running_loop(), threshold=threshold).start()
