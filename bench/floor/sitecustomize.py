"""The floor of span tracing, for bench/tracing_bench.py's "floor" mode (never the product).

On the server's PYTHONPATH with AGENTFLOW_BENCH_FLOOR=1, this replaces agentflow.tracing's
functions with the least a span can do: one context variable, a random span id, two clock
reads and a tuple appended to a list; no OpenTelemetry, no export. The call sites (the
middleware, runs, nodes, models, tools) build their attributes as they do for real spans.
What tracing on costs over this floor is what the OpenTelemetry path adds.
"""

from __future__ import annotations

import os

if os.environ.get("AGENTFLOW_BENCH_FLOOR") == "1":
    import random
    import time
    from collections.abc import Callable, Mapping
    from contextvars import ContextVar, Token
    from typing import Any

    import agentflow.tracing as tracing

    _current: ContextVar[_Span | None] = ContextVar("floor_span", default=None)
    _finished: list[tuple[Any, ...]] = []

    class _Span:
        __slots__ = ("attributes", "name", "parent", "span_id", "start", "token")

        def __init__(self, name: str, attributes: Mapping[str, Any] | None) -> None:
            self.name = name
            self.attributes = dict(attributes) if attributes else {}

        def __enter__(self) -> _Span:
            self.parent = _current.get()
            self.span_id = random.getrandbits(64)
            self.start = time.time_ns()
            self.token: Token[_Span | None] = _current.set(self)
            return self

        def __exit__(self, *exc: object) -> None:
            _current.reset(self.token)
            parent = self.parent.span_id if self.parent is not None else 0
            row = (self.span_id, parent, self.name, self.start, time.time_ns(), self.attributes)
            _finished.append(row)
            if len(_finished) > 10_000:
                _finished.clear()

    def _span(
        name: str,
        attributes: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None,
        **_: Any,
    ) -> _Span:
        return _Span(name, attributes() if callable(attributes) else attributes)

    def _set_attributes(attributes: Mapping[str, Any]) -> None:
        span = _current.get()
        if span is not None:
            span.attributes.update(attributes)

    def _nothing(*_: Any) -> None:
        return None

    tracing.span = _span  # type: ignore[assignment]
    tracing.set_attributes = _set_attributes
    tracing.enabled = lambda: True
    tracing.recording = lambda: True
    tracing.update_name = _nothing
    tracing.mark_error = _nothing
