"""The spans of an OTLP trace export, one at a time.

``ExportTraceServiceRequest`` nests ``resource_spans`` (field 1) > ``scope_spans`` (field 2) >
``spans`` (field 2). Parsing the whole request builds every span at once (a 50 MB body
became ~250 MB of server memory); walking the protobuf wire format down those three levels
finds each span's bytes in the body without copying them, and each span is parsed on its
own, when it is stored. A leaf of the trace services.
"""
from __future__ import annotations

import json
from typing import Any, Iterator, Optional

from google.protobuf.json_format import ParseDict
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan

from ..errors import InvalidParameter

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
LONG_STRING = 64 * 1024  # bytes: an attribute string this long, in a big span, is kept apart


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise DecodeError("truncated or overlong varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf: memoryview, start: int, end: int, wanted: int) -> Iterator[tuple[int, int]]:
    """(start, end) of every length-delimited field number ``wanted`` of the message in
    ``buf[start:end]``; other fields are skipped (and checked to be well formed)."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire_type = key >> 3, key & 7
        if wire_type == _VARINT:
            _, pos = _varint(buf, pos, end)
        elif wire_type == _I64:
            pos += 8
        elif wire_type == _I32:
            pos += 4
        elif wire_type == _LEN:
            length, pos = _varint(buf, pos, end)
            if pos + length > end:
                raise DecodeError("a field runs past the end of its message")
            if number == wanted:
                yield pos, pos + length
            pos += length
        else:
            raise DecodeError(f"unsupported wire type {wire_type}")
    if pos != end:
        raise DecodeError("a field runs past the end of its message")


_EMPTY_STRING_VALUE = b"\x12\x02\x0a\x00"  # KeyValue.value = AnyValue(string_value="")


def _long_string(buf: memoryview, start: int, end: int, longer_than: int) -> Optional[tuple[int, int]]:
    """Where the UTF-8 of a KeyValue's string value is, if it is longer than ``longer_than``
    bytes (and the value holds nothing else)."""
    for value_start, value_end in _fields(buf, start, end, 2):
        fields = list(_fields(buf, value_start, value_end, 1))
        if len(fields) == 1 and fields[0][1] - fields[0][0] > longer_than:
            key, pos = _varint(buf, value_start, value_end)
            _, pos = _varint(buf, pos, value_end)
            if key == 0x0A and pos == fields[0][0] and fields[0][1] == value_end:  # field 1 alone
                return fields[0]
    return None


def _cut_long_strings(buf: memoryview, longer_than: int) -> tuple[Any, dict[int, memoryview]]:
    """The span's bytes with each attribute string longer than ``longer_than`` bytes emptied,
    and those strings' UTF-8 (views into the body, not copies) by attribute position."""
    out, big, index, pos, end = bytearray(), {}, 0, 0, len(buf)
    while pos < end:
        field_start = pos
        key, pos = _varint(buf, pos, end)
        wire_type = key & 7
        if wire_type == _VARINT:
            _, pos = _varint(buf, pos, end)
        elif wire_type in (_I64, _I32):
            pos += 8 if wire_type == _I64 else 4
        elif wire_type == _LEN:
            length, pos = _varint(buf, pos, end)
            if key == 0x4A:  # attributes (field 9): a KeyValue
                found = _long_string(buf, pos, pos + length, longer_than)
                if found is not None:
                    big[index] = buf[found[0]:found[1]]
                    kv = b"".join(bytes(buf[a:b]) for a, b in _raw_fields_but_value(buf, pos, pos + length))
                    kv += _EMPTY_STRING_VALUE
                    out += b"\x4a" + _encode_varint(len(kv)) + kv
                    pos += length
                    index += 1
                    continue
                index += 1
            pos += length
        else:
            raise DecodeError(f"unsupported wire type {wire_type}")
        if pos > end:
            raise DecodeError("a field runs past the end of its message")
        out += buf[field_start:pos]
    return (bytes(out) if big else buf), big


def _raw_fields_but_value(buf: memoryview, start: int, end: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each field of a KeyValue but its value (field 2), tag included."""
    pos = start
    while pos < end:
        field_start = pos
        key, pos = _varint(buf, pos, end)
        if key & 7 == _LEN:
            length, pos = _varint(buf, pos, end)
            pos += length
        elif key & 7 == _VARINT:
            _, pos = _varint(buf, pos, end)
        else:
            pos += 8 if key & 7 == _I64 else 4
        if key >> 3 != 2:
            yield field_start, pos


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _protobuf_spans(body: Any, big_over: int) -> Iterator[tuple[OtlpSpan, dict]]:
    buf = memoryview(body)
    for rs_start, rs_end in _fields(buf, 0, len(buf), 1):  # resource_spans
        for ss_start, ss_end in _fields(buf, rs_start, rs_end, 2):  # scope_spans
            for start, end in _fields(buf, ss_start, ss_end, 2):  # spans
                span, big = buf[start:end], {}
                if end - start > big_over:
                    # Parsed whole, a 50 MB string cost upb twice its size and Python once more.
                    span, big = _cut_long_strings(span, LONG_STRING)
                yield OtlpSpan.FromString(span), big


def _json_spans(body: Any, big_over: int) -> Iterator[tuple[OtlpSpan, dict]]:
    # OTLP/JSON is for hand-made exports: parsed whole, long strings taken out afterwards.
    request = ExportTraceServiceRequest()
    ParseDict(json.loads(body), request)
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                big = {}
                if span.ByteSize() > big_over:
                    for i, kv in enumerate(span.attributes):
                        if kv.value.WhichOneof("value") == "string_value" and kv.value.ByteSize() > LONG_STRING:
                            big[i] = kv.value.string_value.encode()
                            kv.value.string_value = ""
                yield span, big


def iter_spans(body: Any, content_type: str, big_over: int) -> Iterator[tuple[OtlpSpan, dict]]:
    """Each span of the export, with its long attribute strings taken out when the span is
    bigger than ``big_over`` bytes: ``(span, {attribute position: UTF-8 bytes})``, the span's
    attribute there holding an empty string. InvalidParameter (400) for a body that is not
    an OTLP trace export."""
    spans = _json_spans(body, big_over) if "json" in (content_type or "") else _protobuf_spans(body, big_over)
    try:
        yield from spans
    except (DecodeError, ValueError, TypeError, RecursionError) as exc:
        raise InvalidParameter(f"Invalid OTLP trace export request: {str(exc)[:200]}")
