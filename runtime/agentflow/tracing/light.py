"""Spans for the OpenTelemetry SDK at a fraction of the SDK span's cost.

The SDK's own span validates every attribute through a locked bounded mapping, takes a lock
per update and copies itself into a ``ReadableSpan`` when it ends; on an agent run whose nodes
are fast that bookkeeping costs more than the run. :class:`LightTracer` keeps what an
exporter sees identical -- the tracer's sampler, id generator, resource, instrumentation scope
and span processors, and a ``ReadableSpan`` handed to ``on_end`` -- and records the span in a
plain object meanwhile. Attributes agentflow sets are trusted (built from str/int/float/bool);
attributes set by other code through the API go through the SDK's own validating
``BoundedAttributes`` (with the tracer's span limits).

Two shortcuts, where nothing else could observe the difference: when the provider's only
processor is a ``BatchSpanProcessor`` in front of one of agentflow's OTLP exporters, an ended
span goes into its queue as the exporter's plain row (:meth:`LightTracer.direct`), with no
``ReadableSpan`` made; and :class:`ScopedSpan`, what :func:`agentflow.tracing.span` returns,
is its own ``with`` block, making itself the current span (one object per span).

Used only for the SDK's ``Tracer`` with its internal metrics off; anything else (another
vendor's provider, a disabled tracer) goes through the provider's own ``start_span``.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Mapping
from time import time_ns
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

logger = logging.getLogger("agentflow.tracing")

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
UNSET = Status(StatusCode.UNSET)  # the status of a span until one is set
_RANDOM = int(getattr(TraceFlags, "RANDOM_TRACE_ID", 0))  # W3C trace context level 2 (SDK 1.3x)
_SPAN_KEY: str = getattr(trace_api, "_SPAN_KEY", "current-span")
_PARENT_BASED_RULES = (
    "_root", "_remote_parent_sampled", "_remote_parent_not_sampled", "_local_parent_sampled",
    "_local_parent_not_sampled",
)  # fmt: skip
# The OpenTelemetry context lives in one ContextVar with the default runtime context: read
# and set it directly (the API's attach/detach/get_current add three calls each).
_runtime = getattr(context_api, "_RUNTIME_CONTEXT", None)
_context_var = (
    getattr(_runtime, "_current_context", None)
    if type(_runtime) is ContextVarsRuntimeContext
    else None
)


# agentflow's innermost span here (what tracing.set_attributes & co. write to; None: none)
# and the run identity its children inherit. It lives in the OpenTelemetry context next to
# the current span: one context set per span, and it follows that context wherever it goes.
_SCOPE_KEY = context_api.create_key("agentflow-scope")
_NO_SCOPE: tuple[Any, dict[str, Any]] = (None, {})


def scope() -> tuple[Any, dict[str, Any]]:
    """(agentflow's innermost span, the attributes its children inherit)."""
    context = _context_var.get() if _context_var is not None else context_api.get_current()
    return context.get(_SCOPE_KEY, _NO_SCOPE)  # type: ignore[return-value]


def current_context() -> Context:
    """The current OpenTelemetry context."""
    if _context_var is not None:
        context: Context = _context_var.get()
        return context
    return context_api.get_current()


def activate(span: trace_api.Span, inherit: dict[str, Any]) -> Any:
    """Make ``span`` the current span and agentflow's innermost one, whose children inherit
    ``inherit``; returns the token for :func:`deactivate`."""
    if _context_var is not None:
        current = _context_var.get()
        return _context_var.set(Context({**current, _SPAN_KEY: span, _SCOPE_KEY: (span, inherit)}))
    context = context_api.set_value(_SCOPE_KEY, (span, inherit))
    return context_api.attach(trace_api.set_span_in_context(span, context))


def fail(span: trace_api.Span, error_type: str) -> None:
    """Status ERROR and ``error.type`` (a class name or status code; never a message)."""
    span.set_attributes({"error.type": error_type})
    span.set_status(Status(StatusCode.ERROR, error_type))


def deactivate(token: Any) -> None:
    if _context_var is None:
        context_api.detach(token)
        return
    try:
        _context_var.reset(token)
    except ValueError:  # set in another context (a generator resumed elsewhere)
        logger.debug("span context not restored: it was entered in another context")


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
        self._pipeline: Any = None  # the processors the last direct() looked at
        self._sink: Callable[[LightSpan], None] | None = None
        # AlwaysOn, or ParentBased with its default local-parent rule: below a sampled span of
        # this process every span is recorded and sampled, with the parent's trace state -- no
        # need to ask the sampler.
        description = self.sampler.get_description()
        self.children_follow = description == "AlwaysOnSampler" or (
            description.startswith("ParentBased{")
            and "localParentSampled:AlwaysOnSampler" in description
        )
        # The SDK's own root rules decide on the trace id alone: sampled when
        # trace_id & mask < bound, without a trace state (AlwaysOn, AlwaysOff, TraceIdRatio).
        root = getattr(self.sampler, "_root", None) if type(self.sampler) is ParentBased else None
        root = root or self.sampler
        self.root_rule: tuple[int, int] | None = None
        if root is ALWAYS_ON:
            self.root_rule = (0, 1)
        elif root is ALWAYS_OFF:
            self.root_rule = (0, 0)
        elif type(root) is TraceIdRatioBased:
            self.root_rule = (root.TRACE_ID_LIMIT, root.bound)
        # Whether the sampler decides without looking at a span's attributes (the SDK's own
        # rules, alone or under ParentBased): then they need not exist before the decision.
        rules = [self.sampler]
        if type(self.sampler) is ParentBased:
            rules = [getattr(self.sampler, name, None) for name in _PARENT_BASED_RULES]
        self.samples_blind = all(
            rule is ALWAYS_ON or rule is ALWAYS_OFF or type(rule) is TraceIdRatioBased
            for rule in rules
        )

    def direct(self) -> Callable[[LightSpan], None] | None:
        """Where an ended ``LightSpan`` goes without becoming a ``ReadableSpan``: when the
        provider's only processor is a ``BatchSpanProcessor`` whose exporter offers a
        ``light_sink`` (agentflow's OTLP exporters queue a plain row), or nowhere when the
        provider has no processor. Otherwise None, and the processors get a
        ``ReadableSpan``."""
        pipeline = getattr(self.processor, "_span_processors", None)
        if pipeline is not self._pipeline:  # a processor was added: look again
            self._pipeline = pipeline
            only = pipeline[0] if pipeline and len(pipeline) == 1 else None
            make = getattr(only.span_exporter, "light_sink", None) if only else None
            sink = make(only, self) if type(only) is BatchSpanProcessor and make else None
            self._sink = _nowhere if pipeline == () else sink
        return self._sink

    def start_span(
        self,
        name: str,
        context: Any = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, Any] | None = None,
        **_: Any,
    ) -> trace_api.Span:
        return self.open(name, context, kind, dict(attributes) if attributes else {}, LightSpan)

    def open(
        self,
        name: str,
        context: Context | None,
        kind: SpanKind,
        attributes: dict[str, Any],
        cls: type[LightSpan],
    ) -> trace_api.Span:
        """``start_span`` for agentflow: positional, ``attributes`` is the span's own, and a
        recorded span is a ``cls``."""
        if self.is_enabled is not None and not self.is_enabled():
            span: trace_api.Span = self.tracer.start_span(name, context, kind, attributes)
            return span
        if context is None:
            context = current_context()
        current: Any = context.get(_SPAN_KEY)
        if type(current) in _LIGHT_TYPES and self.children_follow:  # (an ABC: no isinstance)
            above = current._context
            if above[3] & 1:  # sampled: the child is too, same flags and state
                span_id = self.ids.generate_span_id()
                span_context = SpanContext(above[0], span_id, False, above[3], above[4])
                light = cls(self, name, span_context, above, kind, attributes)
                if self.direct() is None:  # a plain BatchSpanProcessor does nothing on start
                    self.processor.on_start(light, parent_context=context)
                return light
        return self._open(name, context, kind, attributes, current, cls)

    def _open(
        self,
        name: str,
        context: Context,
        kind: SpanKind,
        merged: dict[str, Any],
        current: Any,
        cls: type[LightSpan],
    ) -> trace_api.Span:
        parent = trace_api.INVALID_SPAN_CONTEXT if current is None else current.get_span_context()
        if parent.is_valid:
            trace_id = parent.trace_id
            random_id = bool(parent.trace_flags & _RANDOM)
            parent_context: SpanContext | None = parent
        else:
            trace_id = self.ids.generate_trace_id()
            random_id = self.random_trace_ids
            parent_context = None
        recording = True
        if (
            self.children_follow
            and parent_context is not None
            and parent.trace_flags.sampled
            and not parent.is_remote
        ):
            flags, trace_state = parent.trace_flags, parent.trace_state  # sampled, same id kind
            random_id = False  # already in the parent's flags
        elif parent_context is None and self.root_rule is not None:
            mask, bound = self.root_rule
            recording = trace_id & mask < bound
            flags, trace_state = _SAMPLED if recording else _NOT_SAMPLED, None
        else:
            sampled = self.sampler.should_sample(context, trace_id, name, kind, merged, ())
            flags = _SAMPLED if sampled.decision.is_sampled() else _NOT_SAMPLED
            trace_state = sampled.trace_state
            recording = sampled.decision.is_recording()
            if sampled.attributes:
                merged.update(sampled.attributes)
        if random_id and _RANDOM:
            flags = TraceFlags(flags | _RANDOM)
        span_context = SpanContext(trace_id, self.ids.generate_span_id(), False, flags, trace_state)
        if not recording:
            return trace_api.NonRecordingSpan(span_context)
        light = cls(self, name, span_context, parent_context, kind, merged)
        if self.direct() is None:
            self.processor.on_start(light, parent_context=context)
        return light


def _nowhere(span: LightSpan) -> None:
    """The sink of a provider without processors."""


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
        self._status = UNSET
        self._end: int | None = None
        self._start = time_ns()

    # -- what the ReadableSpan (or an exporter's row) is made of ------------------------------

    @property
    def attributes(self) -> dict[str, Any]:
        if self._checked is None:
            return self._attributes
        return {**self._attributes, **self._checked}

    @property
    def dropped_attributes(self) -> int:
        return self._checked.dropped if self._checked is not None else 0

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
        sink = tracer.direct()
        if sink is not None:  # a plain batch processor, or none: nothing to do on ending
            sink(self)
            return
        if tracer.on_ending is not None:
            tracer.on_ending(self)
        readable = ReadableSpan(
            name=self._name,
            context=self._context,
            parent=self._parent,
            resource=tracer.resource,
            attributes=self.attributes,
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


class ScopedSpan(LightSpan):
    """A light span that is also the ``with`` block making it agentflow's current span
    (:func:`agentflow.tracing.span`): one object per span on the hot path."""

    __slots__ = ("_token", "inherit")

    inherit: dict[str, Any]  # the run identity its children inherit

    def __enter__(self) -> ScopedSpan:
        self._token = activate(self, self.inherit)
        return self

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, Exception):
            fail(self, type(exc).__name__)
        deactivate(self._token)
        self.end()


_LIGHT_TYPES = frozenset({LightSpan, ScopedSpan})
