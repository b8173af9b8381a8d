"""Spans for the OpenTelemetry SDK at a fraction of the SDK span's cost.

The SDK's own span validates every attribute through a locked bounded mapping, takes a lock
per update and copies itself into a ``ReadableSpan`` when it ends; on an agent run whose nodes
are fast that bookkeeping costs more than the run. :class:`LightTracer` keeps what an
exporter sees identical -- the tracer's sampler, id generator, resource, instrumentation scope
and span processors, and a ``ReadableSpan`` handed to ``on_end`` -- and records the span in a
plain object meanwhile. Attributes agentflow sets are trusted (built from str/int/float/bool);
attributes set by other code through the API go through the SDK's own validating
``BoundedAttributes`` (with the tracer's span limits).

Used only for the SDK's ``Tracer`` with its internal metrics off; anything else (another
vendor's provider, a disabled tracer) goes through the provider's own ``start_span``.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from time import time_ns
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

logger = logging.getLogger("agentflow.tracing")

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_UNSET = Status(StatusCode.UNSET)
_RANDOM = int(getattr(TraceFlags, "RANDOM_TRACE_ID", 0))  # W3C trace context level 2 (SDK 1.3x)


def lighten(tracer: Any) -> Any:
    """A LightTracer in front of an SDK tracer; the tracer itself when it is anything else."""
    if type(tracer) is not SdkTracer:
        return tracer
    needed = ("sampler", "span_processor", "id_generator", "resource", "_span_limits")
    if not all(hasattr(tracer, name) for name in needed):
        return tracer
    metrics = getattr(tracer, "_tracer_metrics", None)  # the SDK's span metrics (1.4x)
    if metrics is not None and type(metrics).__name__ != "NoOpTracerMetrics":
        return tracer  # they are on: they count the SDK's own spans
    return LightTracer(tracer)


class LightTracer:
    """``start_span`` with the SDK's decisions (sampler, ids, processors), lighter spans."""

    def __init__(self, tracer: Any) -> None:
        self.tracer = tracer
        self.sampler = tracer.sampler
        self.processor = tracer.span_processor
        self.ids = tracer.id_generator
        self.random_trace_ids = bool(getattr(self.ids, "is_trace_id_random", lambda: False)())
        self.resource = tracer.resource
        self.scope = getattr(tracer, "_instrumentation_scope", None)
        self.info = getattr(tracer, "instrumentation_info", None)
        self.limits = tracer._span_limits
        self.is_enabled = getattr(tracer, "_is_enabled", None)
        self.on_ending = getattr(self.processor, "_on_ending", None)
        # ParentBased with its default local-parent rule: below a sampled span of this process
        # every span is recorded and sampled, with the parent's trace state -- no need to ask.
        description = self.sampler.get_description()
        self.children_follow = description.startswith("ParentBased{") and (
            "localParentSampled:AlwaysOnSampler" in description
        )

    def start_span(
        self,
        name: str,
        context: Any = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, Any] | None = None,
        **_: Any,
    ) -> trace_api.Span:
        if self.is_enabled is not None and not self.is_enabled():
            span: trace_api.Span = self.tracer.start_span(name, context, kind, attributes)
            return span
        parent = trace_api.get_current_span(context).get_span_context()
        if parent.is_valid:
            trace_id = parent.trace_id
            random_id = bool(parent.trace_flags & _RANDOM)
            parent_context: SpanContext | None = parent
        else:
            trace_id = self.ids.generate_trace_id()
            random_id = self.random_trace_ids
            parent_context = None
        merged = dict(attributes) if attributes else {}
        recording = True
        if (
            self.children_follow
            and parent_context is not None
            and parent.trace_flags.sampled
            and not parent.is_remote
        ):
            flags, trace_state = parent.trace_flags, parent.trace_state  # sampled, same id kind
            random_id = False  # already in the parent's flags
        else:
            sampled = self.sampler.should_sample(context, trace_id, name, kind, attributes, ())
            flags = _SAMPLED if sampled.decision.is_sampled() else _NOT_SAMPLED
            trace_state = sampled.trace_state
            recording = sampled.decision.is_recording()
            if sampled.attributes:
                merged.update(sampled.attributes)
        if random_id and _RANDOM:
            flags = TraceFlags(flags | _RANDOM)
        span_context = SpanContext(
            trace_id,
            self.ids.generate_span_id(),
            is_remote=False,
            trace_flags=flags,
            trace_state=trace_state,
        )
        if not recording:
            return trace_api.NonRecordingSpan(span_context)
        span = LightSpan(self, name, span_context, parent_context, kind, merged)
        self.processor.on_start(span, parent_context=context)
        return span


class LightSpan(trace_api.Span):
    """A recording span; becomes an SDK ``ReadableSpan`` for the processors when it ends."""

    __slots__ = (
        "_attributes", "_checked", "_context", "_end", "_events", "_kind", "_links", "_name",
        "_parent", "_start", "_status", "_tracer",
    )  # fmt: skip

    def __init__(
        self,
        tracer: LightTracer,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, Any],
    ) -> None:
        self._tracer = tracer
        self._name = name
        self._context = context
        self._parent = parent
        self._kind = kind
        self._attributes = attributes
        self._checked: BoundedAttributes | None = None  # attributes set by other code
        self._events: list[Event] | None = None  # made on first use: most spans have none
        self._links: list[trace_api.Link] | None = None
        self._status = _UNSET
        self._end: int | None = None
        self._start = time_ns()

    # -- what agentflow calls (trusted values) -----------------------------------------------

    def set_trusted(self, attributes: Mapping[str, Any]) -> None:
        if self._end is None:
            self._attributes.update(attributes)

    # -- the OpenTelemetry Span API ---------------------------------------------------------

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return self._end is None

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def set_attribute(self, key: str, value: Any) -> None:
        if self._end is not None:
            return
        if self._checked is None:
            limits = self._tracer.limits
            self._checked = BoundedAttributes(
                limits.max_span_attributes,
                immutable=False,
                max_value_len=limits.max_attribute_length,
            )
        self._checked[key] = value

    def add_event(
        self, name: str, attributes: Mapping[str, Any] | None = None, timestamp: int | None = None
    ) -> None:
        if self._end is None:
            event = Event(name, dict(attributes or {}), timestamp or time_ns())
            if self._events is None:
                self._events = []
            self._events.append(event)

    def add_link(self, context: SpanContext, attributes: Mapping[str, Any] | None = None) -> None:
        if self._end is None and context.is_valid:
            if self._links is None:
                self._links = []
            self._links.append(trace_api.Link(context, dict(attributes or {})))

    def update_name(self, name: str) -> None:
        if self._end is None:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self._end is not None or self._status.status_code is StatusCode.OK:
            return
        if isinstance(status, StatusCode):
            status = Status(status, description)
        if status.status_code is not StatusCode.UNSET:
            self._status = status

    def record_exception(
        self,
        exception: BaseException,
        attributes: Mapping[str, Any] | None = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        stack = "".join(traceback.format_exception(exception))
        details = {
            "exception.type": type(exception).__qualname__,
            "exception.message": str(exception),
            "exception.stacktrace": stack,
            "exception.escaped": str(escaped),
            **(attributes or {}),
        }
        self.add_event("exception", details, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._end is not None:
            logger.debug("span %s ended twice", self._name)
            return
        self._end = end_time or time_ns()
        tracer = self._tracer
        if tracer.on_ending is not None:
            tracer.on_ending(self)
        attributes = self._attributes
        if self._checked is not None:
            attributes = {**attributes, **self._checked}
        readable = ReadableSpan(
            name=self._name,
            context=self._context,
            parent=self._parent,
            resource=tracer.resource,
            attributes=attributes,
            events=self._events or (),
            links=self._links or (),
            kind=self._kind,
            instrumentation_info=tracer.info,
            status=self._status,
            start_time=self._start,
            end_time=self._end,
            instrumentation_scope=tracer.scope,
        )
        tracer.processor.on_end(readable)

    def __repr__(self) -> str:
        return f"LightSpan(name={self._name!r}, context={self._context!r})"
