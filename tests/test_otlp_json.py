"""Our OTLP span -> protobuf JSON writer (services/otlp_json.py, the ingest's fast path)
gives exactly what protobuf's own ``MessageToDict`` gives, for spans using every field, and
for the spans the real MLflow client exports."""
from __future__ import annotations

import json
import math

import mlflow
import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from gl_ml_tracking.services.otlp_json import span_dict


def _kv(key, **value):
    kv = KeyValue(key=key)
    if value:
        kv.value.CopyFrom(AnyValue(**value))
    return kv


def _reference(span):
    return MessageToDict(span, preserving_proto_field_name=True)


def _every_field() -> Span:
    span = Span(trace_id=bytes(range(16)), span_id=b"\xff" * 8, trace_state="a=b", parent_span_id=b"\x01" * 8,
                flags=257, name="näme \u2603", kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=2**63 + 5,
                end_time_unix_nano=1, dropped_attributes_count=3, dropped_events_count=4, dropped_links_count=5)
    span.attributes.extend([
        _kv("s", string_value='{"a": 1}'), _kv("empty", string_value=""), _kv("b", bool_value=False),
        _kv("i", int_value=-(2**63)), _kv("zero", int_value=0), _kv("d", double_value=1.5),
        _kv("nan", double_value=math.nan), _kv("inf", double_value=-math.inf), _kv("by", bytes_value=b"\x00\x01"),
        _kv("none"), _kv(""), _kv("unset-any", string_value="x"),
    ])
    span.attributes[-1].value.Clear()
    arr = span.attributes.add(key="arr")
    arr.value.array_value.values.extend([AnyValue(int_value=1), AnyValue(string_value="x"), AnyValue()])
    span.attributes.add(key="empty-arr").value.array_value.SetInParent()
    kvl = span.attributes.add(key="kvl")
    kvl.value.kvlist_value.values.extend([_kv("k", double_value=0.0), _kv("n")])
    event = span.events.add(time_unix_nano=7, name="exception", dropped_attributes_count=1)
    event.attributes.extend([_kv("exception.message", string_value="boom")])
    span.events.add()
    link = span.links.add(trace_id=b"\x02" * 16, span_id=b"\x03" * 8, trace_state="x", flags=1, dropped_attributes_count=2)
    link.attributes.extend([_kv("l", int_value=3)])
    span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="bad"))
    return span


def test_every_field_as_protobuf_writes_it():
    span = _every_field()
    assert span_dict(span) == _reference(span)
    assert json.dumps(span_dict(span)) == json.dumps(_reference(span))  # same keys, same order


@pytest.mark.parametrize("status", [None, Status(), Status(code=Status.STATUS_CODE_OK)])
def test_empty_and_partial_spans(status):
    span = Span()
    if status is not None:
        span.status.CopyFrom(status)
    assert json.dumps(span_dict(span)) == json.dumps(_reference(span))


def test_spans_of_the_real_client(mlflow_client):
    """What the client sent to the live forge and reads back, converted both ways."""
    from mlflow.entities import SpanType

    mlflow.set_experiment("otlp-json")

    collected = []

    @mlflow.trace(span_type=SpanType.LLM)
    def call(prompt, n):
        with mlflow.start_span("inner", span_type=SpanType.TOOL) as s:
            s.set_inputs({"list": [1, 2.5, None, "x"], "nested": {"a": True}})
            s.set_attribute("count", n)
            s.add_event(mlflow.entities.SpanEvent("evt", attributes={"k": "v", "n": 3}))
        if n < 0:
            raise ValueError("negative")
        return {"text": prompt * n}

    with mlflow.start_span("root") as root:
        call("ab", 2)
        try:
            call("x", -1)
        except ValueError:
            pass
        collected.append(root)
    trace_id = mlflow.get_last_active_trace_id()
    mlflow.flush_trace_async_logging()
    trace = mlflow.get_trace(trace_id)
    spans = [s.to_otel_proto() for s in trace.data.spans]
    assert len(spans) == 5
    for span in spans:
        assert json.dumps(span_dict(span)) == json.dumps(_reference(span))


def test_long_strings_kept_apart_make_the_same_span():
    """A big span's long strings are cut out of the body at the wire level (never parsed,
    never a Python string whole) and written back in slices: the stored JSON is the span's."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from gl_ml_tracking.services import otlp_wire, span_payloads

    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add(trace_id=b"t" * 16, span_id=b"s" * 8, name="big")
    values = ["é☃😀" * 100_000, "small", "x" * 70_000 + "\"\\\n"]
    for i, value in enumerate(values):
        span.attributes.add(key=f"k{i}").value.string_value = value
    span.attributes.add(key="n").value.int_value = 3
    span.events.add(name="exception").attributes.add(key="m").value.string_value = "boom"
    body = bytearray(request.SerializeToString())

    ((parsed, big),) = list(otlp_wire.iter_spans(body, "application/x-protobuf", 1000))
    assert sorted(big) == [0, 2] and parsed.attributes[0].value.string_value == ""
    with_payload = json.loads(b"".join(span_payloads.stored_chunks(parsed, big)))
    assert with_payload == _reference(span)
    ((whole, none),) = list(otlp_wire.iter_spans(body, "application/x-protobuf", 10**9))
    assert none == {} and _reference(whole) == _reference(span)
