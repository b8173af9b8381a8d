"""`ToolNode`: run the tool calls of the last assistant message."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from agentflow.graph.messages import Message, ToolCall
from agentflow.graph.state import AgentState
from agentflow.tools.schema import ArgumentError
from agentflow.tools.tool import DEFAULT_TOOL_TIMEOUT, Tool, ToolContext
from agentflow.utils import mask_secrets

logger = logging.getLogger("agentflow.tools")


class ToolNode:
    """A graph node that executes every tool call of the last assistant message,
    concurrently, each with a timeout. A failure never raises: it becomes a tool message
    that says what failed, so the model can retry, ask, or move on."""

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

        async def bounded(call: ToolCall) -> Message:
            async with limit:
                return await self.run_call(call, config)

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
        context = ToolContext(
            thread_id=str(config.get("thread_id", "")),
            run_id=str(config.get("run_id", "")),
            user_id=str(config.get("user_id", "")),
            tool_call_id=call.id,
            step=int(config.get("step", 0)),
        )
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
                f"Error: {call.name} failed: {type(exc).__name__}: {mask_secrets(str(exc))}",
            )  # fmt: skip
        return self._result(call, started, "ok", text)

    def _result(self, call: ToolCall, started: float, status: str, text: str) -> Message:
        duration_ms = round((time.perf_counter() - started) * 1000, 3)
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
