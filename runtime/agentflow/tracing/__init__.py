"""Optional OpenTelemetry tracing: free when off, one import of ``opentelemetry`` when on.

Tracing is on when the ``agentflow[otel]`` extra is installed and either
``AGENTFLOW_TRACING=1`` or the standard variables ask for an exporter (``OTEL_TRACES_EXPORTER``
other than ``none``, ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``)
and ``OTEL_SDK_DISABLED`` is not ``true``. ``AGENTFLOW_TRACING=0`` turns it off whatever the rest
says. The decision is made once, on the first span (the server makes it at startup), and costs
nothing afterwards: with tracing off :func:`span` returns one shared null context manager and
nothing from ``opentelemetry`` is imported.

When on, a process-wide ``TracerProvider`` already installed (``opentelemetry-instrument``, the
host application) is used as is; otherwise one is built from the standard variables:
``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` (service name ``agentflow`` by default),
``OTEL_TRACES_EXPORTER`` (``otlp`` -- HTTP/protobuf, configured by ``OTEL_EXPORTER_OTLP_*`` --,
``console`` or ``none``, comma separated) behind a ``BatchSpanProcessor``; the OTLP export
runs in a helper process (:mod:`agentflow.tracing.relay`; ``AGENTFLOW_TRACING_RELAY=0`` keeps
it in the server process). Incoming W3C ``traceparent`` headers are continued through the
configured propagators (``OTEL_PROPAGATORS``).
``OTEL_TRACES_SAMPLER`` is honoured; below a dropped span agentflow opens no span and builds no
attributes (:func:`recording`). With the SDK's tracer, spans are recorded by
:mod:`agentflow.tracing.light`, which hands the processors the SDK's own ``ReadableSpan``.

Exception messages are never recorded (they can carry secrets): a failed span gets status
ERROR and an ``error.type`` attribute with the exception class only.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = [
    "INHERITED",
    "Attributes",
    "enabled",
    "mark_error",
    "recording",
    "reset",
    "set_attributes",
    "span",
    "update_name",
    "use_tracer_provider",
    "wanted",
]

logger = logging.getLogger("agentflow.tracing")

Attributes = Mapping[str, Any]

_NULL: contextlib.nullcontext[None] = contextlib.nullcontext()
_tracer: Any = None  # an opentelemetry Tracer when tracing is on
_otel: Any = None  # opentelemetry.trace, once tracing is on
_light: Any = None  # agentflow.tracing.light, once tracing is on
_scoped_span: Any = None  # light.ScopedSpan when the tracer is a LightTracer
_propagator: Any = None  # the global TextMapPropagator
_W3C_FIELDS = frozenset({b"traceparent", b"tracestate", b"baggage"})
_propagated: frozenset[bytes] | None = None  # the headers it reads; None: it may read any
_resolved = False
# Run identity, copied onto every span opened below a span that carries it (a model call
# does not know its thread, the node span around it does).
INHERITED = ("agentflow.thread_id", "agentflow.run_id")
_scope: Any = None  # light.scope(): agentflow's innermost span and what its children inherit
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def enabled() -> bool:
    """Whether spans are recorded (decided once, from the environment)."""
    if not _resolved:
        _resolve()
    return _tracer is not None


def recording() -> bool:
    """Whether a span opened here would be recorded: tracing is on and agentflow's current
    span (if any) was not dropped by the sampler. Lets callers skip building attributes."""
    if _tracer is None:
        return enabled()
    current = _scope()[0]
    return current is None or bool(current.is_recording())


def wanted(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment asks for tracing (regardless of the extra being installed)."""
    env = os.environ if environ is None else environ
    switch = env.get("AGENTFLOW_TRACING", "").strip().lower()
    if switch in _TRUE:
        return True
    if switch in _FALSE:
        return False
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporters and exporters != "none":
        return True
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def span(
    name: str,
    attributes: Attributes | Callable[[], Attributes] | None = None,
    *,
    server: bool = False,
    headers: Iterable[tuple[bytes, bytes]] | None = None,
) -> contextlib.AbstractContextManager[Any]:
    """A context manager around one span, the current span inside the block.

    ``server`` makes it a SERVER span; ``headers`` (raw ASGI headers) are searched for a W3C
    ``traceparent`` to continue. ``None`` attribute values are dropped; ``attributes`` may be
    a function returning them, called only if the span is recorded (or the sampler reads
    attributes). With tracing off, or below a span the sampler dropped (its children would
    be dropped too), this returns a shared no-op context manager. The span starts here:
    enter the block at once.
    """
    if _tracer is None:
        if _resolved:
            return _NULL
        _resolve()
        if _tracer is None:
            return _NULL
    parent, inherited = _scope()
    context = None
    if headers is not None:  # only the headers the propagators read, if any came
        if _propagated is None:
            carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers}
        else:
            found = dict(headers)
            carrier = {
                k.decode("latin-1"): found[k].decode("latin-1") for k in _propagated if k in found
            }
        if carrier:
            context = _propagator.extract(carrier)
    elif parent is not None and not parent.is_recording():  # dropped by the sampler
        return _NULL
    later = None
    if callable(attributes):
        if _scoped_span is not None and _tracer.samples_blind:
            later, attributes = attributes, None
        else:
            attributes = attributes()
    merged, inherit = _merge(inherited, attributes)
    kind = _otel.SpanKind.SERVER if server else _otel.SpanKind.INTERNAL
    if _scoped_span is not None:
        started = _tracer.open(name, context, kind, merged, _scoped_span)
        if type(started) is _scoped_span:
            if later is not None:  # recorded: now the attributes are worth building
                merged, inherit = _merge(inherited, later())
                started.set_trusted(merged)
            started.inherit = inherit
            return started  # type: ignore[no-any-return]
    else:
        started = _tracer.start_span(
            name,
            context=context,
            kind=kind,
            attributes=merged,
            record_exception=False,
            set_status_on_exception=False,
        )
    return _Active(started, inherit)


def _merge(
    inherited: dict[str, Any], attributes: Attributes | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A span's own attributes (the run identity it inherits, then its own, without None
    values) and the run identity its children inherit."""
    if not attributes:
        return dict(inherited), inherited
    merged = {**inherited, **attributes}
    if None in attributes.values():
        merged = _clean(merged)
    thread, run = INHERITED
    if merged.get(thread) != inherited.get(thread) or merged.get(run) != inherited.get(run):
        return merged, {k: merged[k] for k in INHERITED if k in merged}
    return merged, inherited


def set_attributes(attributes: Attributes) -> None:
    """Set attributes on agentflow's current span (no-op when tracing is off or none is
    open). ``None`` values are dropped."""
    if _tracer is None:
        return
    current = _scope()[0]
    if current is None or not current.is_recording():
        return
    if None in attributes.values():
        attributes = _clean(attributes)
    if type(current) is _scoped_span:
        current.set_trusted(attributes)
    else:
        current.set_attributes(attributes)


def mark_error(error_type: str) -> None:
    """Give agentflow's current span status ERROR and ``error.type`` (a class name or
    status code)."""
    current = _scope()[0] if _tracer is not None else None
    if current is not None:
        _light.fail(current, error_type)


def update_name(name: str) -> None:
    """Rename agentflow's current span (the request span learns its route template late)."""
    current = _scope()[0] if _tracer is not None else None
    if current is not None:
        current.update_name(name)


class _Active:
    """Makes a span that is not one of agentflow's light spans (the sampler dropped it, or
    the provider is another vendor's) current for a block."""

    __slots__ = ("_inherit", "_span", "_token")

    def __init__(self, span: Any, inherit: dict[str, Any]) -> None:
        self._span = span
        self._inherit = inherit

    def __enter__(self) -> Any:
        self._token = _light.activate(self._span, self._inherit)
        return self._span

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, Exception):
            _light.fail(self._span, type(exc).__name__)
        _light.deactivate(self._token)
        self._span.end()


def _clean(attributes: Attributes) -> dict[str, Any]:
    return {k: v for k, v in attributes.items() if v is not None}


def _resolve() -> None:
    global _resolved, _tracer
    _resolved = True
    if not wanted():
        return
    try:
        tracer = _configure()
        _use(tracer)
    except ImportError as exc:
        logger.warning(
            "tracing requested but OpenTelemetry is not installed (%s); "
            "install agentflow-runner[otel] -- tracing stays off",
            exc.name,
        )
    except Exception as exc:
        logger.warning("tracing stays off: could not configure OpenTelemetry: %s", exc)


def _configure() -> Any:
    from opentelemetry import trace

    from agentflow import __version__

    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider):  # nobody installed one: build ours
        provider = _build_provider()
        trace.set_tracer_provider(provider)
        provider = trace.get_tracer_provider()
    return provider.get_tracer("agentflow", __version__)


def _build_provider() -> Any:
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "agentflow"}))
    provider = TracerProvider(resource=resource)
    names = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    for exporter_name in (n.strip() for n in names.split(",")):
        if exporter_name == "none":
            continue
        exporter: Any
        if exporter_name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            exporter = ConsoleSpanExporter()
        elif exporter_name == "otlp":
            try:
                from agentflow.tracing.otlp import FastOTLPSpanExporter
            except ImportError:
                logger.warning(
                    "OTEL_TRACES_EXPORTER=otlp needs opentelemetry-exporter-otlp-proto-http "
                    "(agentflow-runner[otel]); spans are recorded but not exported"
                )
                continue
            exporter = FastOTLPSpanExporter()
            if exporter.encodes and _relay_wanted():
                from agentflow.tracing.relay import RelayExporter

                exporter = RelayExporter(exporter)
        else:
            logger.warning("unsupported OTEL_TRACES_EXPORTER %r ignored", exporter_name)
            continue
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def _relay_wanted() -> bool:
    switch = os.environ.get("AGENTFLOW_TRACING_RELAY", "").strip().lower()
    return os.name == "posix" and switch not in _FALSE


def _use(tracer: Any) -> None:
    global _otel, _tracer, _light, _scope, _scoped_span, _propagator, _propagated
    from opentelemetry import propagate, trace

    from agentflow.tracing import light

    _otel, _light, _scope = trace, light, light.scope
    _propagator = propagate.get_global_textmap()
    fields = frozenset(name.lower().encode("latin-1") for name in _propagator.fields)
    _propagated = fields if fields <= _W3C_FIELDS else None  # e.g. Jaeger reads prefixes
    _tracer = light.lighten(tracer)
    _scoped_span = light.ScopedSpan if isinstance(_tracer, light.LightTracer) else None


def use_tracer_provider(provider: Any | None) -> None:
    """Test and embedding hook: trace into ``provider`` (a ``TracerProvider``), or turn
    tracing off with ``None``. Nothing else reads the environment afterwards."""
    global _resolved, _tracer
    _resolved = True
    _tracer = None
    if provider is not None:
        _use(provider.get_tracer("agentflow"))


def reset() -> None:
    """Forget the decision: the next span reads the environment again (tests)."""
    global _resolved, _tracer
    _resolved = False
    _tracer = None
