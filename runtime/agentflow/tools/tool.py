"""`@tool`: a typed Python function the model can call."""

from __future__ import annotations

import asyncio
import enum
import functools
import hashlib
import inspect
import json
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, overload

from agentflow.tools.schema import ArgumentError, function_schema, validate

DEFAULT_TOOL_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Injected into a tool that declares a parameter annotated `ToolContext`.

    `idempotency_key` is stable for one tool call of one run step: pass it to APIs that
    charge or send (payments, email) so a retried step does not do it twice.
    """

    thread_id: str
    run_id: str
    user_id: str
    tool_call_id: str
    step: int

    @property
    def idempotency_key(self) -> str:
        raw = f"{self.thread_id}:{self.step}:{self.tool_call_id}".encode()
        return hashlib.sha256(raw).hexdigest()[:32]


def _is_context(name: str, hint: Any) -> bool:
    """`ToolContext` or `ToolContext | None` (resolved type hints)."""
    if hint is ToolContext:
        return True
    args = typing.get_args(hint)
    return (
        bool(args)
        and ToolContext in args
        and all(a is ToolContext or a is type(None) for a in args)
    )


class Tool:
    """A function plus the JSON Schema the model sees. Calling it calls the function."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
        read_only: bool = False,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"@tool needs a function, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or fn.__name__
        doc_description, self.parameters = function_schema(fn, skip=_is_context)
        self.description = description or doc_description or self.name.replace("_", " ")
        self.timeout = timeout
        self.read_only = read_only
        self.is_async = inspect.iscoroutinefunction(fn)
        hints = typing.get_type_hints(fn)
        self._context_param = next(
            (name for name, hint in hints.items() if _is_context(name, hint)), None
        )
        self._enums = {
            name: hint
            for name, hint in hints.items()
            if isinstance(hint, type) and issubclass(hint, enum.Enum)
        }
        functools.update_wrapper(self, fn)

    @property
    def schema(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Tool {self.name}>"

    async def arun(self, arguments: Any, context: ToolContext | None = None) -> str:
        """Validate the model's arguments, run the function (sync ones in a worker thread)
        and return its result as text. Raises ArgumentError for bad arguments."""
        if not isinstance(arguments, dict):
            raise ArgumentError(f"arguments must be a JSON object, got {arguments!r}")
        validate(arguments, self.parameters)
        kwargs = dict(arguments)
        for name, enum_cls in self._enums.items():
            if name in kwargs:
                kwargs[name] = enum_cls(kwargs[name])
        if self._context_param is not None:
            kwargs[self._context_param] = context
        if self.is_async:
            result = await self.fn(**kwargs)
        else:
            result = await asyncio.to_thread(self.fn, **kwargs)
            if inspect.isawaitable(result):
                result = await result
        return result_text(result)


def result_text(result: Any) -> str:
    if isinstance(result, str):
        return result
    try:
        return json.dumps(result, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(result)


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    read_only: bool = False,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    read_only: bool = False,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Turn a typed function into a tool: ``@tool`` or ``@tool(name=..., timeout=...)``."""

    def wrap(f: Callable[..., Any]) -> Tool:
        return Tool(f, name=name, description=description, timeout=timeout, read_only=read_only)

    return wrap(fn) if fn is not None else wrap
