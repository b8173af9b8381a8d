"""Optional OpenTelemetry tracing on the stock SDK; nothing is imported when it is off.

On or off is decided once, on the first span (the server decides at startup), by
:func:`tracing_wanted`: ``AGENTFLOW_TRACING=1`` turns it on and ``=0`` off whatever the rest
says; otherwise it is on when ``OTEL_SDK_DISABLED`` is not ``true`` and an exporter is asked
for (``OTEL_TRACES_EXPORTER`` other than ``none``, ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``). It needs the ``otel`` extra. Off, :func:`span`
returns one shared no-op context manager and ``opentelemetry`` is never imported.

On, a ``TracerProvider`` the host installed globally (``opentelemetry-instrument``, an
application embedding agentflow) is used as it is. Otherwise one is built and installed: the
SDK's ``TracerProvider`` (it reads ``OTEL_TRACES_SAMPLER``, ``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``; service name ``agentflow`` when none is set) with a
``BatchSpanProcessor`` (``OTEL_BSP_*``) per exporter in ``OTEL_TRACES_EXPORTER`` (default
``otlp``: ``OTLPSpanExporter`` over HTTP/protobuf, configured by ``OTEL_EXPORTER_OTLP_*``;
``console``; ``none``). A request continues the caller's trace (W3C ``traceparent`` by
default) through the global propagator (``OTEL_PROPAGATORS``).

Spans: the request (SERVER) > ``agentflow.run`` > ``agentflow.model`` and ``agentflow.tool``,
with ``agentflow.node`` spans between the run and them when :func:`node_spans_wanted`
(``AGENTFLOW_TRACE_NODES=1``). Every span below a run carries its ``agentflow.thread_id`` and
``agentflow.run_id``. Exception messages are never recorded (they can carry secrets): a failed
span gets status ERROR and an ``error.type`` attribute naming the exception class only.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Mapping
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from agentflow.utils.config import read as _read

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

__all__ = [
    "Attributes",
    "enabled",
    "mark_error",
    "node_spans_wanted",
    "recording",
    "recording_nodes",
    "reset",
    "set_attributes",
    "span",
    "tracing_wanted",
    "update_name",
    "use_tracer_provider",
]

_logger = logging.getLogger("agentflow.tracing")

Attributes = Mapping[str, Any]
_INHERITED = ("agentflow.thread_id", "agentflow.run_id")  # copied onto every span below
_NULL: contextlib.nullcontext[None] = contextlib.nullcontext()

_resolved = False  # whether the environment was read
_tracer: Tracer | None = None  # None: tracing is off
_nodes = False  # whether node spans are opened
_otel: Any = None  # opentelemetry's context, propagate and trace modules, once on
_ids_key = ""  # the context key of the run identity spans inherit


def tracing_wanted(environ: Mapping[str, str]) -> bool:
    """Whether ``environ`` asks for tracing (whether or not the extra is installed)."""
    switch = _read("AGENTFLOW_TRACING", environ)
    if switch is not None:
        return bool(switch)
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters and exporters != "none":
        return True
    endpoint = "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    return any(environ.get(name) for name in endpoint)


def node_spans_wanted(environ: Mapping[str, str]) -> bool:
    """Whether ``environ`` asks for a span per graph node (``AGENTFLOW_TRACE_NODES=1``)."""
    return bool(_read("AGENTFLOW_TRACE_NODES", environ))


def enabled() -> bool:
    """Whether spans are recorded (decided once, from the environment)."""
    if not _resolved:
        _resolve()
    return _tracer is not None


def recording() -> bool:
    """Whether a span opened here would be recorded: tracing is on and the current span, if
    any, was not dropped by the sampler. Lets callers skip building attributes."""
    if _tracer is None:
        return not _resolved and _resolve()
    current = _otel.trace.get_current_span()
    return bool(current.is_recording() or not current.get_span_context().is_valid)


def recording_nodes() -> bool:
    """:func:`recording`, and node spans are on."""
    return recording() and _nodes


def span(
    name: str,
    attributes: Attributes | None = None,
    *,
    server: bool = False,
    headers: Iterable[tuple[bytes, bytes]] | None = None,
) -> contextlib.AbstractContextManager[Span | None]:
    """A context manager around a new span, the current span inside the block.

    ``server`` makes it a SERVER span; ``headers`` (raw ASGI headers) carry the caller's
    trace context, continued unless a span is already current (the host traces requests).
    ``None`` attribute values are dropped. An exception leaving the block marks the span
    failed (:func:`mark_error` with its class name). Off, a shared no-op context manager.
    """
    if _tracer is None and (_resolved or not _resolve()):
        return _NULL
    assert _tracer is not None
    context, trace = _otel.context, _otel.trace
    parent = context.get_current()
    if headers is not None and not trace.get_current_span(parent).get_span_context().is_valid:
        carrier = {key.decode("latin-1"): value.decode("latin-1") for key, value in headers}
        parent = _otel.propagate.extract(carrier, parent)
    own = dict(context.get_value(_ids_key, parent) or {})
    if attributes:
        own.update((k, v) for k, v in attributes.items() if v is not None)
    kind = trace.SpanKind.SERVER if server else trace.SpanKind.INTERNAL
    started = _tracer.start_span(name, parent, kind, own)
    ids = {key: own[key] for key in _INHERITED if key in own}
    return _Current(
        started, trace.set_span_in_context(started, context.set_value(_ids_key, ids, parent))
    )


class _Current:
    """Makes a span current for a ``with`` block and ends it at the end of the block."""

    __slots__ = ("context", "span", "token")

    def __init__(self, span: Span, context: Context) -> None:
        self.span = span
        self.context = context

    def __enter__(self) -> Span:
        self.token = _otel.context.attach(self.context)
        return self.span

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, Exception):
            _fail(self.span, type(exc).__name__)
        _otel.context.detach(self.token)
        self.span.end()


def set_attributes(attributes: Attributes) -> None:
    """Set attributes on the current span (nothing when tracing is off or none is
    recording); ``None`` values are dropped."""
    if _tracer is not None:
        current = _otel.trace.get_current_span()
        if current.is_recording():
            current.set_attributes({k: v for k, v in attributes.items() if v is not None})


def mark_error(error_type: str) -> None:
    """Give the current span status ERROR and ``error.type`` (a class name or status code;
    never a message)."""
    if _tracer is not None:
        _fail(_otel.trace.get_current_span(), error_type)


def update_name(name: str) -> None:
    """Rename the current span (the request span learns its route template late)."""
    if _tracer is not None:
        _otel.trace.get_current_span().update_name(name)


def _fail(span: Span, error_type: str) -> None:
    span.set_attribute("error.type", error_type)
    span.set_status(_otel.trace.Status(_otel.trace.StatusCode.ERROR, error_type))


def _resolve() -> bool:
    """Read the environment once: turn tracing on if it is wanted and can be."""
    global _resolved
    _resolved = True
    if not tracing_wanted(os.environ):
        return False
    try:
        from opentelemetry import trace

        if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            trace.set_tracer_provider(_build_provider(os.environ))  # nobody installed one
        use_tracer_provider(trace.get_tracer_provider(), nodes=node_spans_wanted(os.environ))
    except ImportError as exc:
        _logger.warning(
            "tracing requested but OpenTelemetry is not installed (%s); install "
            "agentflow-runner[otel] -- tracing stays off",
            exc.name,
        )
    except Exception as exc:
        _logger.warning("tracing stays off: could not configure OpenTelemetry: %s", exc)
    return _tracer is not None


def _build_provider(environ: Mapping[str, str]) -> TracerProvider:
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "agentflow"}))
    provider = TracerProvider(resource=resource)
    for name in environ.get("OTEL_TRACES_EXPORTER", "otlp").lower().split(","):
        if name.strip() == "otlp":
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter,
                )
            except ImportError:
                _logger.warning(
                    "OTEL_TRACES_EXPORTER=otlp needs opentelemetry-exporter-otlp-proto-http "
                    "(agentflow-runner[otel]): spans are recorded, not exported"
                )
                continue
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        elif name.strip() == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        elif name.strip() not in ("", "none"):
            _logger.warning("unsupported OTEL_TRACES_EXPORTER %r ignored", name.strip())
    return provider


def use_tracer_provider(provider: Any | None, *, nodes: bool = False) -> None:
    """Trace into ``provider`` (any ``TracerProvider``; ``nodes``: with node spans), or turn
    tracing off with ``None``. The environment is not read afterwards (tests, embedding)."""
    global _resolved, _tracer, _nodes, _otel, _ids_key
    _resolved, _tracer, _nodes = True, None, nodes
    if provider is not None:
        from opentelemetry import context, propagate, trace

        from agentflow import __version__

        _otel = SimpleNamespace(context=context, propagate=propagate, trace=trace)
        _ids_key = _ids_key or context.create_key("agentflow-run-identity")
        _tracer = provider.get_tracer("agentflow", __version__)


def reset() -> None:
    """Forget the decision: the next span reads the environment again (tests)."""
    global _resolved, _tracer
    _resolved, _tracer = False, None
