"""`agentflow play --terminal`: the playground session in this terminal (works over SSH).

The graph runs in-process on one long-lived event loop with the configured checkpointer, as
user "anonymous" (the server's user without auth). The prompt is read with `input()` (readline
editing where available); each line then runs on the loop, and SIGINT meanwhile cancels only
that run: completed steps stay checkpointed, "stopped" is printed, the prompt returns. At the
prompt Ctrl-C prints a hint and a second one in a row exits 0, like /quit and Ctrl-D.
LOG_LEVEL=INFO (the default) is shown as WARNING: a REPL needs no line per event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from rich.text import Text

from agentflow.graph import ANONYMOUS
from agentflow_cli.output import EXIT_SERVER_FAILED, CliError, config_hint, console

if TYPE_CHECKING:
    from agentflow.checkpointer import Checkpointer, ThreadInfo
    from agentflow.graph import CompiledGraph, Message, StreamChunk
    from agentflow.runtime import Settings

COMMANDS = (
    ("/new", "start a new thread"),
    ("/threads", "list your threads"),
    ("/switch ID", "continue a thread (a unique prefix of its id is enough)"),
    ("/history", "show the current thread's messages"),
    ("/help", "show this help"),
    ("/quit", "exit (also Ctrl-D)"),
)


def run_terminal(settings: Settings) -> None:
    """Load the project's graph and chat with it until /quit, Ctrl-D or a double Ctrl-C."""
    from agentflow.graph import AgentflowError
    from agentflow.runtime import ConfigError, checkpointer_for, export_dotenv, load_graph
    from agentflow.utils import configure_logging

    configure_logging("WARNING" if settings.log_level == "INFO" else settings.log_level)
    export_dotenv(settings)
    try:
        graph = load_graph(settings.graph, settings.project_dir)
    except ConfigError as exc:
        raise CliError(
            f"cannot load the graph: {exc.problem}", hint=config_hint(exc), code=EXIT_SERVER_FAILED
        ) from None
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    checkpointer = checkpointer_for(settings.checkpointer)
    try:
        try:
            loop.run_until_complete(checkpointer.setup())
        except AgentflowError as exc:
            raise CliError(
                f"cannot open the {settings.checkpointer.kind} checkpointer: {exc}",
                hint="check 'checkpointer' in agentflow.json; run `agentflow doctor`",
                code=EXIT_SERVER_FAILED,
            ) from None
        Session(settings, graph.with_checkpointer(checkpointer), checkpointer, loop).repl()
    finally:
        _shutdown(loop, checkpointer)


def _shutdown(loop: asyncio.AbstractEventLoop, checkpointer: Checkpointer) -> None:
    from agentflow.models import aclose_shared_clients

    try:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        closing = (checkpointer.close(), aclose_shared_clients())
        loop.run_until_complete(asyncio.gather(*pending, *closing, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


class Session:
    """One REPL: the current thread, and how a run's events are printed."""

    def __init__(
        self,
        settings: Settings,
        graph: CompiledGraph,
        checkpointer: Checkpointer,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        from agentflow.graph import new_id

        self.settings, self.graph, self.checkpointer = settings, graph, checkpointer
        self.loop = loop
        self.new_id = new_id
        self.thread_id = new_id()
        self.resume_next = False  # the next line answers a pending interrupt
        self.line_open = False  # a streamed answer is mid-line
        self.streamed: set[str] = set()  # ids of messages whose text arrived as deltas
        self.stopping = False
        utf = (console.encoding or "").lower().startswith("utf")
        self.marks = ("→", "←", "·") if utf else ("->", "<-", "-")

    def repl(self) -> None:
        self.banner()
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401  (line editing and history for input())
        interrupts = 0
        while True:
            try:
                line = input("you> ")
            except EOFError:
                console.print()
                return
            except KeyboardInterrupt:
                interrupts += 1
                if interrupts >= 2:
                    console.print()
                    return
                console.print("\n(type /quit or press Ctrl-D to exit; Ctrl-C again exits)")
                continue
            interrupts = 0
            try:
                if not self.handle(line.strip()):
                    return
            except KeyboardInterrupt:  # landed outside a run's handler window
                self.end_line()
                console.print("stopped", style="yellow")

    def handle(self, line: str) -> bool:
        """Act on one input line; False to quit."""
        command, _, arg = line.partition(" ")
        if not line.startswith("/"):
            if line or self.resume_next:
                self.run(self.send(line))
        elif command in ("/quit", "/exit"):
            return False
        elif command == "/new":
            self.thread_id, self.resume_next = self.new_id(), False
            console.print(f"new thread {self.thread_id}", markup=False)
        elif command == "/threads":
            self.run(self.threads())
        elif command == "/switch" and arg.strip():
            self.run(self.switch(arg.strip()))
        elif command == "/history":
            self.run(self.history())
        elif command == "/help":
            for name, what in COMMANDS:
                console.print(f"  {name:<12} {what}", markup=False)
            console.print("  anything else goes to the graph; Ctrl-C stops a running answer")
        else:
            usage = "usage: /switch ID" if command == "/switch" else f"unknown command {command}"
            console.print(f"{usage}; /help lists the commands", markup=False, style="yellow")
        return True

    def run(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run `coro` on the loop; SIGINT meanwhile cancels it, and only it."""
        task = self.loop.create_task(coro)
        self.stopping = handled = False
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            self.loop.add_signal_handler(signal.SIGINT, self._stop, task)
            handled = True
        try:
            self.loop.run_until_complete(task)
        except (asyncio.CancelledError, KeyboardInterrupt):
            if not task.done():  # no signal handler (Windows): KeyboardInterrupt instead
                task.cancel()
                with contextlib.suppress(BaseException):
                    self.loop.run_until_complete(task)
            self.end_line()
            console.print("stopped", style="yellow")
        finally:
            if handled:
                self.loop.remove_signal_handler(signal.SIGINT)

    def _stop(self, task: asyncio.Task[None]) -> None:
        if not self.stopping:  # a second Ctrl-C must not cut the last checkpoint short
            self.stopping = True
            task.cancel()

    async def send(self, text: str) -> None:
        from agentflow.graph import AgentflowError, StreamEvent

        user = {"messages": [{"role": "user", "content": text}]}
        payload: dict[str, Any] = {"resume": text} if self.resume_next else user
        self.resume_next = False
        config = {"thread_id": self.thread_id, "user_id": ANONYMOUS,
                  "recursion_limit": self.settings.recursion_limit}  # fmt: skip
        error_shown = False
        try:
            async for chunk in self.graph.astream(payload, config):
                error_shown = error_shown or chunk.event == StreamEvent.ERROR
                self.show(chunk)
        except Exception as exc:
            if not error_shown:
                ours = isinstance(exc, AgentflowError)
                self.error(str(exc) if ours else f"{type(exc).__name__}: {exc}")
        self.end_line()

    def show(self, chunk: StreamChunk) -> None:
        from agentflow.graph import StreamEvent

        event, data = chunk.event, chunk.data
        if event == StreamEvent.DELTA:
            message_id = str(data.get("message_id"))
            if message_id not in self.streamed:
                self.end_line()
                self.streamed.add(message_id)
                self.write(Text("agent> ", style="bold green"))
            self.write(Text(str(data.get("delta", ""))))
        elif event == StreamEvent.MESSAGE and chunk.message is not None:
            self.show_message(chunk.message)
        elif event == StreamEvent.NODE_END:
            self.end_line()
            took = _took(data.get("duration_ms"))
            console.print(Text(f"  {self.marks[2]} {chunk.node} {took}", style="dim"))
        elif event == StreamEvent.INTERRUPT:
            self.end_line()
            self.ask(data)
        elif event == StreamEvent.ERROR:
            self.error(str(data.get("message") or data.get("error_class") or "the run failed"))

    def ask(self, interrupt: dict[str, Any]) -> None:
        value = interrupt.get("value")
        if isinstance(value, dict) and isinstance(value.get("question"), str):
            value = value["question"]
        if value is None:
            question = f"paused {interrupt.get('when', '')} node {interrupt.get('node')!r}"
            hint = "press Enter to continue"
        else:
            question = value if isinstance(value, str) else json.dumps(value, default=str)
            hint = "your next line is the answer"
        console.print(Text.assemble(("? ", "bold yellow"), question, (f"  ({hint})", "dim")))
        self.resume_next = True

    async def threads(self) -> None:
        page = await self.checkpointer.list_threads(ANONYMOUS, limit=50)
        if not any(t.thread_id == self.thread_id for t in page.items):
            console.print(f"* {self.thread_id}  (current, no messages yet)", markup=False)
        for thread in page.items:
            mark = "*" if thread.thread_id == self.thread_id else " "
            count = f"{thread.message_count} message{'' if thread.message_count == 1 else 's'}"
            updated = time.strftime("%Y-%m-%d %H:%M", time.localtime(thread.updated_at))
            line = Text(f"{mark} {thread.thread_id}  {_clip(thread.title or '(untitled)', 48)}  ")
            console.print(line.append(f"{count}, updated {updated}", style="dim"), soft_wrap=True)
        if page.next_cursor:
            console.print("(older threads not shown)", style="dim")

    async def switch(self, wanted: str) -> None:
        thread, problem = await self.find(wanted)
        if thread is None:
            console.print(f"{problem}; /threads lists yours", markup=False, style="yellow")
            return
        self.thread_id, self.resume_next = thread.thread_id, False
        title = f" ({_clip(thread.title, 48)})" if thread.title else ""
        console.print(f"switched to thread {thread.thread_id}{title}", markup=False)
        await self.history()
        checkpoint = await self.checkpointer.get_checkpoint(thread.thread_id)
        if checkpoint and checkpoint.status == "interrupted" and checkpoint.interrupt:
            self.ask(checkpoint.interrupt.to_dict())

    async def find(self, wanted: str) -> tuple[ThreadInfo | None, str]:
        """The user's thread with this id, or with this unique id prefix."""
        thread = await self.checkpointer.get_thread(wanted)
        if thread is not None and thread.user_id == ANONYMOUS:
            return thread, ""
        page = await self.checkpointer.list_threads(ANONYMOUS, limit=200)
        matches = [t for t in page.items if t.thread_id.startswith(wanted)]
        if len(matches) == 1:
            return matches[0], ""
        if matches:
            return None, f"{wanted!r} matches {len(matches)} threads; type more of the id"
        return None, f"no thread {wanted!r}"

    async def history(self) -> None:
        messages = await self.checkpointer.get_messages(self.thread_id)
        if not messages:
            console.print("(no messages in this thread yet)", style="dim")
        for message in messages:
            self.show_message(message, history=True)

    def show_message(self, message: Message, *, history: bool = False) -> None:
        call_mark, result_mark, _ = self.marks
        if message.role == "user" and history:
            console.print(Text.assemble(("you> ", "bold"), message.text), soft_wrap=True)
        elif message.role == "assistant":
            self.end_line()
            if message.text and (history or message.id not in self.streamed):
                console.print(Text.assemble(("agent> ", "bold green"), message.text))
            for call in message.tool_calls:
                args = ", ".join(
                    f"{k}={json.dumps(v, default=str)}" for k, v in call.arguments.items()
                )
                console.print(Text(f"  {call_mark} {call.name}({args})", style="cyan"))
        elif message.role == "tool":
            ok = message.metadata.get("status", "ok") == "ok"
            line = Text(f"  {result_mark} {message.name or 'tool'}: {_clip(message.text, 200)} ")
            console.print(line.append(*(("ok", "green") if ok else ("error", "bold red"))))

    def banner(self) -> None:
        cp = self.settings.checkpointer
        where = {"sqlite": f" ({cp.path})", "memory": " (lost on exit)"}.get(cp.kind, "")
        title = f" — {self.graph.name} ({self.settings.graph})"
        console.print(Text.assemble(("agentflow play --terminal", "bold"), title), soft_wrap=True)
        console.print(f"  checkpointer  {cp.kind}{where}", markup=False, soft_wrap=True)
        console.print(f"  thread        {self.thread_id}", markup=False)
        console.print("  commands      " + " ".join(c.split()[0] for c, _ in COMMANDS))
        console.print("  Ctrl-C stops a running answer; Ctrl-D or /quit exits.", style="dim")

    def write(self, text: Text) -> None:
        console.print(text, end="", soft_wrap=True)
        self.line_open = True

    def end_line(self) -> None:
        if self.line_open:
            console.print()
            self.line_open = False

    def error(self, message: str) -> None:
        from agentflow.utils import mask_secrets

        self.end_line()
        console.print(Text.assemble(("error: ", "bold red"), mask_secrets(message)), soft_wrap=True)


def _clip(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _took(ms: Any) -> str:
    if not isinstance(ms, int | float):
        return ""
    return f"{ms:.1f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"
