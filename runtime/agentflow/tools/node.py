"""`ToolNode`: run the tool calls of the last assistant message."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from agentflow import tracing
from agentflow.graph.errors import CheckpointerError
from agentflow.graph.messages import Message, ToolCall
from agentflow.graph.state import AgentState
from agentflow.graph.storage import Checkpointer
from agentflow.tools.schema import ArgumentError
from agentflow.tools.tool import DEFAULT_TOOL_TIMEOUT, Tool, ToolContext
from agentflow.utils import mask_secrets
from agentflow.utils.secrets import mask_known_secrets

logger = logging.getLogger("agentflow.tools")


class ToolNode:
    """A graph node that executes every tool call of the last assistant message,
    concurrently, each with a timeout. A failure never raises: it becomes a tool message
    that says what failed, so the model can retry, ask, or move on.

    Replay safety: with a checkpointer (config["checkpointer"], set by the graph), every
    successful result of a tool that is not `read_only` is recorded under the call's
    idempotency key as soon as it completes; a resumed or retried step reuses the recorded
    result (metadata "replayed": true) instead of running the tool again."""

    def __init__(
        self,
        tools: Sequence[Tool | Callable[..., Any]],
        *,
        timeout: float = DEFAULT_TOOL_TIMEOUT,
        max_concurrency: int = 8,
    ) -> None:
        wrapped = [t if isinstance(t, Tool) else Tool(t) for t in tools]
        self.tools = {t.name: t for t in wrapped}
        if len(self.tools) != len(wrapped):
            names = [t.name for t in wrapped]
            dupes = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"duplicate tool names: {dupes}")
        self.timeout = timeout
        self.max_concurrency = max_concurrency

    @property
    def schemas(self) -> list[dict[str, Any]]:
        return [t.schema for t in self.tools.values()]

    async def __call__(self, state: AgentState, config: dict[str, Any]) -> list[Message]:
        last = state.context[-1] if state.context else None
        if last is None or last.role != "assistant" or not last.tool_calls:
            return []
        limit = asyncio.Semaphore(self.max_concurrency)
        checkpointer = config.get("checkpointer")
        if not isinstance(checkpointer, Checkpointer):
            checkpointer = None
        thread_id = str(config.get("thread_id", ""))
        keys: dict[str, str] = {}  # tool call id -> idempotency key, for recorded tools
        recorded: dict[str, Message] = {}
        if checkpointer is not None:
            for call in last.tool_calls:
                tool = self.tools.get(call.name)
                if tool is not None and not tool.read_only:
                    keys[call.id] = _context(call, config).idempotency_key
            if keys:
                recorded = await checkpointer.get_tool_results(thread_id, list(keys.values()))

        async def bounded(call: ToolCall) -> Message:
            key = keys.get(call.id)
            if key is not None and key in recorded:
                return _replayed(recorded[key])
            async with limit:
                if tracing.recording():
                    message = await _traced_call(self, call, config)
                else:
                    message = await self.run_call(call, config)
            if checkpointer is not None and key is not None:
                await _record(checkpointer, thread_id, key, message)
            return message

        return list(await asyncio.gather(*(bounded(c) for c in last.tool_calls)))

    async def run_call(self, call: ToolCall, config: dict[str, Any]) -> Message:
        started = time.perf_counter()
        tool = self.tools.get(call.name)
        if tool is None:
            return self._result(
                call, started, "error",
                f"Error: there is no tool named {call.name!r}. "
                f"Available tools: {', '.join(sorted(self.tools)) or 'none'}.",
            )  # fmt: skip
        context = _context(call, config)
        timeout = tool.timeout if tool.timeout is not None else self.timeout
        task = asyncio.ensure_future(tool.arun(call.arguments, context))
        try:
            done, _ = await asyncio.wait({task}, timeout=timeout)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not done:
            task.cancel()
            return self._result(
                call, started, "error",
                f"Error: {call.name} did not finish within {timeout:g}s and was abandoned. "
                "Try again later or with simpler input.",
            )  # fmt: skip
        try:
            text = task.result()
        except ArgumentError as exc:
            return self._result(
                call, started, "error",
                f"Error: invalid arguments for {call.name}: {exc}. Fix them and call again.",
            )  # fmt: skip
        except Exception as exc:
            return self._result(
                call, started, "error",
                f"Error: {call.name} failed: {type(exc).__name__}: {exc}",
            )  # fmt: skip
        return self._result(call, started, "ok", text)

    def _result(self, call: ToolCall, started: float, status: str, text: str) -> Message:
        """The tool message; it is stored, sent to the model and logged, so secrets are
        masked: every known secret value, and in error texts (which quote arguments and
        exceptions) anything that looks like one."""
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
        text = mask_known_secrets(text) if status == "ok" else mask_secrets(text)
        if status != "ok":
            logger.warning(
                "tool %s failed: %s",
                call.name,
                text,
                extra={"tool": call.name, "tool_call_id": call.id, "duration_ms": duration_ms},
            )
        return Message.tool(
            text,
            tool_call_id=call.id,
            name=call.name,
            metadata={"status": status, "duration_ms": duration_ms},
        )


def _context(call: ToolCall, config: dict[str, Any]) -> ToolContext:
    return ToolContext(
        thread_id=str(config.get("thread_id", "")),
        run_id=str(config.get("run_id", "")),
        user_id=str(config.get("user_id", "")),
        tool_call_id=call.id,
        step=int(config.get("step", 0)),
    )


def _replayed(message: Message) -> Message:
    return Message.from_dict(
        {**message.to_dict(), "metadata": {**message.metadata, "replayed": True}}
    )


async def _record(checkpointer: Checkpointer, thread_id: str, key: str, message: Message) -> None:
    """Record a successful result; a failed call is not recorded, so a retry runs it again.
    A storage failure is logged, not raised: the result itself is still good."""
    if message.metadata.get("status") != "ok":
        return
    try:
        await checkpointer.put_tool_result(thread_id, key, message)
    except CheckpointerError as exc:
        logger.warning(
            "could not record the result of tool %s (%s): a replay of this step runs it again",
            message.name,
            exc,
            extra={"tool": message.name, "tool_call_id": message.tool_call_id},
        )


async def _traced_call(node: ToolNode, call: ToolCall, config: dict[str, Any]) -> Message:
    attributes = {
        "gen_ai.tool.name": call.name,
        "gen_ai.tool.call.id": call.id,
        "agentflow.thread_id": config.get("thread_id"),
        "agentflow.run_id": config.get("run_id"),
        "agentflow.step": config.get("step"),
    }
    with tracing.span("agentflow.tool", attributes):
        message = await node.run_call(call, config)
        status = str(message.metadata.get("status", "ok"))
        tracing.set_attributes(
            {
                "agentflow.outcome": status,
                "agentflow.duration_ms": message.metadata.get("duration_ms"),
            }
        )
        if status != "ok":
            tracing.mark_error("tool_error")
        return message
