"""OTLP/HTTP span export with a direct protobuf encoder.

The SDK's OTLP exporter builds one Python protobuf object per span, attribute and value
before serialising them; for short agent steps that costs more than recording the spans,
and the export thread holds the GIL for the whole batch (request latency spikes). This module
writes the same ``ExportTraceServiceRequest`` bytes directly (the wire format of
opentelemetry-proto's trace.proto, field by field as the SDK's encoder fills them) and hands
them to the exporter's own HTTP client, so endpoint, headers, compression, TLS, timeouts and
retries still come from the standard ``OTEL_EXPORTER_OTLP_*`` variables. Whatever this
encoder does not expect (an exporter without that client, a value it cannot encode) goes
through the SDK's exporter unchanged.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanKind

_DOUBLE = struct.Struct("<d").pack
_FIXED64 = struct.Struct("<Q").pack
_FIXED32 = struct.Struct("<I").pack
_KINDS = {
    SpanKind.INTERNAL: 1,
    SpanKind.SERVER: 2,
    SpanKind.CLIENT: 3,
    SpanKind.PRODUCER: 4,
    SpanKind.CONSUMER: 5,
}
_HAS_IS_REMOTE = 0x100  # SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
_IS_REMOTE = 0x200  # SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
_INT64 = (-(1 << 63), (1 << 63) - 1)


class EncodingError(ValueError):
    """A value this encoder does not write (the SDK's exporter then handles the batch)."""


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


def _attributes(tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
    if not attributes:
        return b""
    return b"".join([_message(tag, _key_value(k, v)) for k, v in attributes.items()])


def _dropped(field: int, count: int) -> bytes:
    return _DROPPED[field] + _varint(count) if count else b""


def _flags(remote: bool) -> bytes:
    return _FIXED32(_HAS_IS_REMOTE | _IS_REMOTE if remote else _HAS_IS_REMOTE)


def _span(span: ReadableSpan) -> bytes:
    context = span.get_span_context()
    assert context is not None
    parts = [
        _message(_T1, context.trace_id.to_bytes(16, "big")),
        _message(_T2, context.span_id.to_bytes(8, "big")),
    ]
    state = ",".join(f"{k}={v}" for k, v in context.trace_state.items())
    if state:
        parts.append(_string(_T3, state))
    parent = span.parent
    if parent:
        parts.append(_message(_T4, parent.span_id.to_bytes(8, "big")))
    if span.name:
        parts.append(_string(_T5, span.name))
    parts.append(_KIND + _varint(_KINDS[span.kind]))
    if span.start_time:
        parts.append(_START + _FIXED64(span.start_time))
    if span.end_time:
        parts.append(_END + _FIXED64(span.end_time))
    parts.append(_attributes(_T9, span.attributes))
    parts.append(_dropped(10, span.dropped_attributes))
    for event in span.events:
        body = _EVENT_TIME + _FIXED64(event.timestamp) if event.timestamp else b""
        if event.name:
            body += _string(_T2, event.name)
        body += _attributes(_T3, event.attributes) + _dropped(4, event.dropped_attributes)
        parts.append(_message(_T11, body))
    parts.append(_dropped(12, span.dropped_events))
    for link in span.links:
        body = _message(_T1, link.context.trace_id.to_bytes(16, "big"))
        body += _message(_T2, link.context.span_id.to_bytes(8, "big"))
        body += _attributes(_T4, link.attributes) + _dropped(5, link.dropped_attributes)
        parts.append(_message(_T13, body + _LINK_FLAGS + _flags(link.context.is_remote)))
    parts.append(_dropped(14, span.dropped_links))
    status = span.status
    body = _string(_T2, status.description) if status.description else b""
    code = status.status_code.value
    if code:
        body += _STATUS_CODE + _varint(code)
    parts.append(_message(_T15, body))
    parts.append(_FLAGS + _flags(bool(parent and parent.is_remote)))
    return b"".join(parts)


def encode_spans(spans: Sequence[ReadableSpan]) -> bytes:
    """A serialised ``ExportTraceServiceRequest``: spans grouped by resource, then by
    instrumentation scope, in the order they first appear (as the SDK's encoder does)."""
    groups: dict[Any, dict[Any, list[bytes]]] = {}
    same: dict[int, Any] = {}  # id(resource) -> its group (hashing a Resource dumps JSON)
    for span in spans:
        resource = span.resource
        group = same.get(id(resource))
        if group is None:
            group = same[id(resource)] = groups.setdefault(resource, {})
        group.setdefault(span.instrumentation_scope or None, []).append(_span(span))
    out = []
    for resource, scopes in groups.items():
        body = [_message(_T1, _attributes(_T1, resource.attributes))]
        for scope, encoded in scopes.items():
            head = b""
            if scope is not None:
                head = (_string(_T1, scope.name) if scope.name else b"") + (
                    _string(_T2, scope.version) if scope.version else b""
                )
                head += _attributes(_T3, scope.attributes)
            scope_spans = [_message(_T1, head), *(_message(_T2, s) for s in encoded)]
            if scope is not None and scope.schema_url:
                scope_spans.append(_string(_T3, scope.schema_url))
            body.append(_message(_T2, b"".join(scope_spans)))
        if resource.schema_url:
            body.append(_string(_T3, resource.schema_url))
        out.append(_message(_T1, b"".join(body)))
    return b"".join(out)


class FastOTLPSpanExporter(OTLPSpanExporter):
    """The SDK's OTLP/HTTP span exporter with :func:`encode_spans` in front of its client."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        client = getattr(self, "_client", None)
        send = getattr(client, "export", None)
        if send is None or getattr(self, "_shutdown", True):
            return super().export(spans)
        try:
            data = encode_spans(spans)
        except (EncodingError, AttributeError, KeyError, AssertionError):
            return super().export(spans)
        limit = getattr(self, "_max_request_size", None)
        if isinstance(limit, int) and len(data) > limit:
            return super().export(spans)  # logs and drops the batch as the SDK does
        result = send(data)
        return SpanExportResult.SUCCESS if result.success else SpanExportResult.FAILURE
