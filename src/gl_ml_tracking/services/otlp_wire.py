"""The spans of an OTLP trace export, one at a time.

``ExportTraceServiceRequest`` nests ``resource_spans`` (field 1) > ``scope_spans`` (field 2) >
``spans`` (field 2). Parsing the whole request builds every span at once (a 50 MB body
became ~250 MB of server memory); walking the protobuf wire format down those three levels
finds each span's bytes in the body without copying them, and each span is parsed on its
own, when it is stored. A leaf of the trace services.
"""
from __future__ import annotations

import json
from typing import Iterator

from google.protobuf.json_format import ParseDict
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan

from ..errors import InvalidParameter

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


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


def _protobuf_spans(body: bytes) -> Iterator[OtlpSpan]:
    buf = memoryview(body)
    for rs_start, rs_end in _fields(buf, 0, len(buf), 1):  # resource_spans
        for ss_start, ss_end in _fields(buf, rs_start, rs_end, 2):  # scope_spans
            for start, end in _fields(buf, ss_start, ss_end, 2):  # spans
                yield OtlpSpan.FromString(buf[start:end])


def _json_spans(body: bytes) -> Iterator[OtlpSpan]:
    # OTLP/JSON is for hand-made exports: small; parsed whole.
    request = ExportTraceServiceRequest()
    ParseDict(json.loads(body), request)
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield span


def iter_spans(body: bytes, content_type: str) -> Iterator[OtlpSpan]:
    """Each span of the export; InvalidParameter (400) for a body that is not an OTLP trace
    export."""
    spans = _json_spans(body) if "json" in (content_type or "") else _protobuf_spans(body)
    try:
        yield from spans
    except (DecodeError, ValueError, TypeError, RecursionError) as exc:
        raise InvalidParameter(f"Invalid OTLP trace export request: {str(exc)[:200]}")
