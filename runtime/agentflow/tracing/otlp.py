"""OTLP/HTTP span export with a direct protobuf encoder.

The SDK's OTLP exporter builds one Python protobuf object per span, attribute and value
before serialising them; for short agent steps that costs more than recording the spans,
and the export thread holds the GIL for the whole batch (request latency spikes). This module
writes the same ``ExportTraceServiceRequest`` bytes directly (the wire format of
opentelemetry-proto's trace.proto, field by field as the SDK's encoder fills them) and hands
them to the exporter's own HTTP client, so endpoint, headers, compression, TLS, timeouts and
retries still come from the standard ``OTEL_EXPORTER_OTLP_*`` variables.

Encoding goes in two steps: :func:`group` turns finished spans into plain rows of str, int,
dict and list -- what :mod:`marshal` carries to another process -- grouped under the bytes of
their resource and scope (encoded once and cached); :func:`encode_groups` writes the request
from those rows. Agentflow's own ``LightSpan`` becomes its row as it ends
(:func:`light_sink`): the batch processor's queue then holds flat tuples the garbage collector
soon stops tracking, rather than span objects, and the export thread reads no span objects.
An attribute value the wire format has no place for (an int beyond int64, an unknown type)
is dropped with a warning, as the SDK's encoder does.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanKind
from opentelemetry.trace.span import DEFAULT_TRACE_STATE

from agentflow.tracing.light import UNSET, LightSpan

logger = logging.getLogger("agentflow.tracing")

_DOUBLE = struct.Struct("<d").pack
_FIXED64 = struct.Struct("<Q").pack
_FIXED32 = struct.Struct("<I").pack
# SpanKind -> its OTLP number, by identity (an Enum member hashes in Python code)
_KINDS = {id(kind): kind.value + 1 for kind in SpanKind}
_HAS_IS_REMOTE = 0x100  # SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
_IS_REMOTE = 0x200  # SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
_INT64 = (-(1 << 63), (1 << 63) - 1)

# A span as a row: (trace_id, span_id, trace_state, parent_span_id | None, parent_is_remote,
# name, kind, start, end, attributes, dropped_attributes, events, dropped_events, links,
# dropped_links, status_code, status_description). An event is (name, timestamp, attributes,
# dropped_attributes), a link (trace_id, span_id, attributes, dropped_attributes, is_remote).
Row = tuple[Any, ...]
# Spans under one resource: (resource bytes, resource schema bytes, [(scope bytes, scope
# schema bytes, [rows])]); both scope parts are b"" for spans without a scope.
Group = tuple[bytes, bytes, list[tuple[bytes, bytes, list[Row]]]]
# What a light sink queues: ((resource bytes, resource schema, scope bytes, scope schema), row)
Heads = tuple[bytes, bytes, bytes, bytes]


class EncodingError(ValueError):
    """A value the OTLP wire format has no place for."""


_SMALL = [bytes((n,)) for n in range(0x80)]  # one-byte varints


def _varint(n: int) -> bytes:
    if n < 0x80:
        return _SMALL[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _tag(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _message(tag: bytes, payload: bytes) -> bytes:
    n = len(payload)
    return tag + (_SMALL[n] if n < 0x80 else _varint(n)) + payload


def _string(tag: bytes, text: str) -> bytes:
    return _message(tag, text.encode("utf-8"))


# Tags: (field number << 3) | wire type (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32).
_T1, _T2, _T3, _T4, _T5 = (_tag(n, 2) for n in range(1, 6))
_T6 = _tag(6, 2)
_T7 = _tag(7, 2)
_T9, _T11, _T13, _T15 = _tag(9, 2), _tag(11, 2), _tag(13, 2), _tag(15, 2)
_BOOL, _INT, _DOUBLE_TAG = _tag(2, 0), _tag(3, 0), _tag(4, 1)
_KIND, _START, _END, _FLAGS = _tag(6, 0), _tag(7, 1), _tag(8, 1), _tag(16, 5)
_EVENT_TIME, _LINK_FLAGS, _STATUS_CODE = _tag(1, 1), _tag(6, 5), _tag(3, 0)
_DROPPED = {field: _tag(field, 0) for field in (2, 4, 5, 10, 12, 14)}
_TRACE_ID, _SPAN_ID, _PARENT_ID = _T1 + b"\x10", _T2 + b"\x08", _T4 + b"\x08"
_LOCAL = _FIXED32(_HAS_IS_REMOTE)
_REMOTE = _FIXED32(_HAS_IS_REMOTE | _IS_REMOTE)


def _value(value: Any) -> bytes:
    """An AnyValue (oneof: set fields are written even when they hold the default)."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return _BOOL + (b"\x01" if value else b"\x00")
    if isinstance(value, str):
        return _string(_T1, value)
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise EncodingError(f"integer {value} does not fit int64")
        return _INT + _varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return _DOUBLE_TAG + _DOUBLE(value)
    if isinstance(value, bytes):
        return _message(_T7, value)
    if isinstance(value, Sequence):
        return _message(_T5, b"".join(_message(_T1, _value(v)) for v in value))
    if isinstance(value, Mapping):
        pairs = b"".join(_message(_T1, _key_value(str(k), v)) for k, v in value.items())
        return _message(_T6, pairs)
    raise EncodingError(f"cannot encode a {type(value).__name__} attribute value")


_keys: dict[str, bytes] = {}  # attribute key -> its encoded KeyValue.key field


def _key_value(key: str, value: Any) -> bytes:
    encoded = _keys.get(key)
    if encoded is None:
        encoded = _string(_T1, key)
        if len(_keys) < 4096:
            _keys[key] = encoded
    if type(value) is str:  # the common case, inline
        text = value.encode("utf-8")
        n = len(text)
        any_value = _T1 + (_SMALL[n] if n < 0x80 else _varint(n)) + text
    else:
        any_value = _value(value)
    return encoded + _message(_T2, any_value)


# (tag, key, value) -> the encoded attribute, for str values: most repeat from span to span
# (methods, routes, node and model names); emptied when full, so ids cannot crowd it out.
_pairs: dict[tuple[bytes, str, str], bytes] = {}


def _attributes(tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
    if not attributes:
        return b""
    out = []
    pairs = _pairs
    for key, value in attributes.items():
        if type(value) is str:
            encoded = pairs.get((tag, key, value))
            if encoded is None:
                encoded = _message(tag, _key_value(key, value))
                if len(pairs) >= 8192:
                    pairs.clear()
                pairs[tag, key, value] = encoded
            out.append(encoded)
            continue
        try:
            out.append(_message(tag, _key_value(key, value)))
        except EncodingError as exc:  # the SDK's encoder drops the key too
            logger.warning("span attribute %r not exported: %s", key, exc)
    return b"".join(out)


def _dropped(field: int, count: int) -> bytes:
    return _DROPPED[field] + _varint(count) if count else b""


def _trace_state(state: Any) -> str:
    return ",".join(f"{k}={v}" for k, v in state.items()) if state else ""


def row(span: Any) -> Row:
    """A finished ``ReadableSpan`` as a plain row."""
    context = span.context
    parent = span.parent
    status = span.status
    attributes = span.attributes
    return (
        context.trace_id,
        context.span_id,
        _trace_state(context.trace_state),
        parent.span_id if parent else None,
        bool(parent and parent.is_remote),
        span.name,
        _KINDS[id(span.kind)],
        span.start_time or 0,
        span.end_time or 0,
        attributes if type(attributes) is dict else dict(attributes or {}),
        span.dropped_attributes,
        [
            (e.name, e.timestamp or 0, dict(e.attributes or {}), e.dropped_attributes)
            for e in span.events
        ],
        span.dropped_events,
        [
            (
                link.context.trace_id,
                link.context.span_id,
                dict(link.attributes or {}),
                link.dropped_attributes,
                link.context.is_remote,
            )
            for link in span.links
        ],
        span.dropped_links,
        status.status_code.value,
        status.description or "",
    )


def _light_row(span: LightSpan) -> Row:
    """:func:`row` for agentflow's own spans, read straight from their fields as they end
    (most have no trace state, events, links or status)."""
    context = span._context  # a tuple: trace_id, span_id, is_remote, flags, state, is_valid
    parent = span._parent
    state = context[4]
    status = span._status
    events, links = span._events, span._links
    return (
        context[0],
        context[1],
        "" if state is DEFAULT_TRACE_STATE else _trace_state(state),
        parent[1] if parent is not None else None,
        parent is not None and parent[2],
        span._name,
        _KINDS[id(span._kind)],
        span._start,
        span._end or 0,
        span._attributes if span._checked is None else span.attributes,
        span.dropped_attributes,
        [(e.name, e.timestamp or 0, dict(e.attributes or {}), e.dropped_attributes) for e in events]
        if events
        else (),
        0,
        [
            (
                link.context.trace_id,
                link.context.span_id,
                dict(link.attributes or {}),
                link.dropped_attributes,
                link.context.is_remote,
            )
            for link in links
        ]
        if links
        else (),
        0,
        0 if status is UNSET else status.status_code.value,
        "" if status is UNSET else status.description or "",
    )


def _encode_row(r: Row) -> bytes:
    (trace_id, span_id, state, parent_id, parent_remote, name, kind, start, end, attributes,
     dropped_attributes, events, dropped_events, links, dropped_links, code, description) = (
        r
    )  # fmt: skip
    parts = [_TRACE_ID + trace_id.to_bytes(16, "big"), _SPAN_ID + span_id.to_bytes(8, "big")]
    if state:
        parts.append(_string(_T3, state))
    if parent_id is not None:
        parts.append(_PARENT_ID + parent_id.to_bytes(8, "big"))
    if name:
        parts.append(_string(_T5, name))
    parts.append(_KIND + _SMALL[kind])
    if start:
        parts.append(_START + _FIXED64(start))
    if end:
        parts.append(_END + _FIXED64(end))
    parts.append(_attributes(_T9, attributes))
    parts.append(_dropped(10, dropped_attributes))
    for event_name, timestamp, event_attributes, event_dropped in events:
        body = _EVENT_TIME + _FIXED64(timestamp) if timestamp else b""
        if event_name:
            body += _string(_T2, event_name)
        body += _attributes(_T3, event_attributes) + _dropped(4, event_dropped)
        parts.append(_message(_T11, body))
    parts.append(_dropped(12, dropped_events))
    for link_trace, link_span, link_attributes, link_dropped, remote in links:
        body = _TRACE_ID + link_trace.to_bytes(16, "big") + _SPAN_ID + link_span.to_bytes(8, "big")
        body += _attributes(_T4, link_attributes) + _dropped(5, link_dropped)
        parts.append(_message(_T13, body + _LINK_FLAGS + (_REMOTE if remote else _LOCAL)))
    parts.append(_dropped(14, dropped_links))
    body = _string(_T2, description) if description else b""
    if code:
        body += _STATUS_CODE + _varint(code)
    parts.append(_message(_T15, body))
    parts.append(_FLAGS + (_REMOTE if parent_remote else _LOCAL))
    return b"".join(parts)


# Encoded resources and scopes, by identity (hashing a Resource dumps JSON); the object is
# kept so its id is not reused. Both are few and live as long as their provider.
_encoded: dict[int, tuple[Any, tuple[bytes, bytes]]] = {}


def _heads(resource: Any, scope: Any) -> Heads:
    return _resource_head(resource) + _scope_head(scope)


def _resource_head(resource: Any) -> tuple[bytes, bytes]:
    cached = _encoded.get(id(resource))
    if cached is None:
        encoded = _message(_T1, _attributes(_T1, resource.attributes))
        schema = _string(_T3, resource.schema_url) if resource.schema_url else b""
        cached = _encoded[id(resource)] = (resource, (encoded, schema))
    return cached[1]


def _scope_head(scope: Any) -> tuple[bytes, bytes]:
    if scope is None:
        return b"", b""
    cached = _encoded.get(id(scope))
    if cached is None:
        head = (_string(_T1, scope.name) if scope.name else b"") + (
            _string(_T2, scope.version) if scope.version else b""
        )
        head += _attributes(_T3, scope.attributes)
        schema = _string(_T3, scope.schema_url) if scope.schema_url else b""
        cached = _encoded[id(scope)] = (scope, (head, schema))
    return cached[1]


def group(items: Iterable[Any]) -> list[Group]:
    """Rows of finished spans (``ReadableSpan`` or what a light sink queued), grouped by
    resource, then by instrumentation scope, in the order they first appear (as the SDK's
    encoder groups them; equal resources and scopes share a group)."""
    groups: dict[tuple[bytes, bytes], dict[tuple[bytes, bytes], list[Row]]] = {}
    for item in items:
        if type(item) is tuple:
            heads, span_row = item
        else:
            heads = _heads(item.resource, item.instrumentation_scope or None)
            span_row = row(item)
        scopes = groups.get(heads[:2])
        if scopes is None:
            scopes = groups[heads[:2]] = {}
        rows = scopes.get(heads[2:])
        if rows is None:
            rows = scopes[heads[2:]] = []
        rows.append(span_row)
    return [
        (*resource, [(*scope, rows) for scope, rows in scopes.items()])
        for resource, scopes in groups.items()
    ]


def light_sink(batch: Any, tracer: Any) -> Callable[[LightSpan], None] | None:
    """What a ``LightTracer`` calls as a span ends, for a ``BatchSpanProcessor`` in front of
    an exporter that encodes rows: the sampled span's row goes straight into the processor's
    queue (its batching, limits and flushing unchanged). None with an SDK whose processor
    has no such queue."""
    emit = getattr(getattr(batch, "_batch_processor", None), "emit", None)
    if emit is None:
        return None
    heads = _heads(tracer.resource, tracer.scope)

    def sink(span: LightSpan) -> None:
        if span._context[3] & 1:  # sampled: what BatchSpanProcessor.on_end checks
            emit((heads, _light_row(span)))

    return sink


def encode_groups(groups: Sequence[Group]) -> bytes:
    """A serialised ``ExportTraceServiceRequest`` from :func:`group`'s rows."""
    out = []
    for resource, resource_schema, scopes in groups:
        body = [resource]
        for scope, scope_schema, rows in scopes:
            scope_spans = [_message(_T1, scope)]
            scope_spans.extend(_message(_T2, _encode_row(r)) for r in rows)
            scope_spans.append(scope_schema)
            body.append(_message(_T2, b"".join(scope_spans)))
        body.append(resource_schema)
        out.append(_message(_T1, b"".join(body)))
    return b"".join(out)


def encode_spans(spans: Iterable[Any]) -> bytes:
    """A serialised ``ExportTraceServiceRequest`` for finished spans."""
    return encode_groups(group(spans))


class FastOTLPSpanExporter(OTLPSpanExporter):
    """The SDK's OTLP/HTTP span exporter with :func:`encode_spans` in front of its client.

    ``encodes``: the SDK's client is there to send the bytes; otherwise, with an SDK older
    than that client, the SDK's own export runs (and no light sink is offered).
    """

    @property
    def encodes(self) -> bool:
        return callable(getattr(getattr(self, "_client", None), "export", None))

    def light_sink(self, batch: Any, tracer: Any) -> Callable[[LightSpan], None] | None:
        return light_sink(batch, tracer) if self.encodes else None

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        if not self.encodes or self._shutdown:
            return super().export(spans)
        return self.send(encode_spans(spans))

    def shutdown(self) -> None:
        super().shutdown()  # type: ignore[no-untyped-call]  # the SDK's is untyped

    def send(self, data: bytes) -> SpanExportResult:
        """Post one encoded request (dropped, as the SDK does, when over its size limit)."""
        limit = getattr(self, "_max_request_size", None)
        if isinstance(limit, int) and len(data) > limit:
            logger.warning(
                "span batch dropped: %d bytes is over the exporter's limit of %d", len(data), limit
            )
            return SpanExportResult.FAILURE
        result = self._client.export(data)
        return SpanExportResult.SUCCESS if result.success else SpanExportResult.FAILURE
