"""SIGTERM/SIGINT start the drain at once, before uvicorn's own shutdown.

uvicorn, on SIGTERM, closes its listening socket, waits `timeout_graceful_shutdown` for the
open requests, cancels them (plain-text 500s, streams cut short), and only then runs the
app's shutdown, which gave the runs a second grace period. Instead, the first SIGTERM or
SIGINT here:

1. marks the runtime draining: new runs get a JSON 503 at once and /health says "draining"
   (503), so a load balancer stops sending traffic while the port still answers;
2. gives the runs in flight SHUTDOWN_GRACE seconds, then cancels the rest with the reason
   `server_shutdown`: an invoke answers a JSON 503 and a stream ends with an `error` event
   (resumable) and `end`;
3. hands the signal to the handler it replaced (uvicorn's), which then finds no run left and
   stops within its short `timeout_graceful_shutdown`.

A second signal cancels the runs at once (their clients are still told) and goes to uvicorn.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable, Coroutine
from types import FrameType
from typing import Any

from agentflow.runtime.runs import RunService

logger = logging.getLogger("agentflow.runtime.shutdown")
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class DrainOnSignal:
    """Chains itself in front of the current SIGTERM/SIGINT handlers (see the module)."""

    def __init__(self, runs: RunService, grace: float, loop: asyncio.AbstractEventLoop) -> None:
        self.runs = runs
        self.grace = grace
        self.loop = loop
        self.previous: dict[int, Any] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.signalled = False
        self.handed_over = False

    def install(self) -> bool:
        """Replace the handlers; False (nothing done) off the main thread, where Python
        cannot install signal handlers (a server run in a thread, as tests do)."""
        if threading.current_thread() is not threading.main_thread():
            return False
        for signum in SIGNALS:
            self.previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self.on_signal)
        return True

    def uninstall(self) -> None:
        """Put back the handlers this replaced, where this one is still installed."""
        for signum, previous in self.previous.items():
            if signal.getsignal(signum) == self.on_signal:
                signal.signal(signum, previous)

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self.signalled:
            self.signalled = True
            self.loop.call_soon_threadsafe(self.spawn, self.drain(signum))
            return
        # Asked again (a second Ctrl+C): cancel the runs now and let uvicorn stop.
        self.loop.call_soon_threadsafe(self.spawn, self.runs.drain(0))
        self.hand_over(signum, frame)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(work, name="agentflow-drain")
        self.tasks.add(task)  # a reference until it is done
        task.add_done_callback(self.tasks.discard)

    async def drain(self, signum: int) -> None:
        name = signal.Signals(signum).name
        running = len(self.runs.active)
        logger.warning(
            "%s: draining: new runs are refused; %s%s",
            name,
            f"{running} run(s) in flight get up to {self.grace:g} s" if running else "no run "
            "in flight",
            "; press Ctrl+C again to stop them now" if running and signum == signal.SIGINT
            else "",
            extra={"signal": name, "runs": running, "grace_s": self.grace},
        )  # fmt: skip
        try:
            await self.runs.drain(self.grace)
        finally:
            if not self.handed_over:
                self.hand_over(signum, None)

    def hand_over(self, signum: int, frame: FrameType | None) -> None:
        """Pass the signal to the handler this one replaced (uvicorn's: stop serving)."""
        self.handed_over = True
        previous = self.previous.get(signum)
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:  # nobody else handles it: its default action
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)


def drain_on_signal(
    runs: RunService, grace: float, loop: asyncio.AbstractEventLoop | None = None
) -> Callable[[], None]:
    """Install the drain for SIGTERM/SIGINT (from the event loop's thread, the main one, in
    the app's startup: after uvicorn installed its own handlers). Returns the function that
    puts the previous handlers back."""
    chain = DrainOnSignal(runs, grace, loop or asyncio.get_running_loop())
    chain.install()
    return chain.uninstall
