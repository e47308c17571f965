"""What the MLflow 3 client probes and sends outside ``/api``: ``GET <tracking URI>/version``
(only when it answers does the client send spans over OTLP), ``/health``, and the spans
themselves, ``POST <tracking URI>/v1/traces`` (OTLP over HTTP, protobuf or JSON body)."""
from __future__ import annotations

from flask import Response, request

from ...errors import PayloadTooLarge
from ...schemas.common import NoParameters
from ...services import otlp_wire, trace_ingest
from ...state import get_state
from .framework import EXPERIMENTS_READ, EXPERIMENTS_WRITE, ApiContext, Routes

routes = Routes()  # gathered by blueprints/api/__init__.py

# The MLflow server version we answer as: the client compares it (span logging needs >= 3.4).
SERVER_VERSION = "3.17.2"
EXPERIMENT_ID_HEADER = "X-MLflow-Experiment-Id"
READ_CHUNK = 1024 * 1024


@routes.route("version", "GET", EXPERIMENTS_READ, prefix="/", schema=NoParameters)
def version(ctx: ApiContext):
    return Response(SERVER_VERSION, mimetype="text/plain")


@routes.route("health", "GET", EXPERIMENTS_READ, prefix="/", schema=NoParameters)
def health(ctx: ApiContext):
    return Response("OK", mimetype="text/plain")


def read_body(limit: int) -> bytearray:
    """The request body, refused with 413 past ``limit`` bytes (read no further). Read into
    one buffer of its size: ``stream.read(limit + 1)`` allocated the whole limit and then
    copied the body twice (164 MB of memory for a 50 MB body)."""
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"Request body of {length} bytes exceeds the limit of {limit} bytes.")
    stream = request.stream
    if length is not None:
        # read() in chunks, not readinto(): gunicorn's input has no readinto.
        body, got = bytearray(length), 0
        while got < length:
            chunk = stream.read(min(READ_CHUNK, length - got))
            if not chunk:
                break
            body[got:got + len(chunk)] = chunk
            got += len(chunk)
        del body[got:]
        return body
    body = bytearray()
    while chunk := stream.read(READ_CHUNK):
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes.")
    return body


@routes.route("v1/traces", "POST", EXPERIMENTS_WRITE, prefix="/", json_body=False, schema=NoParameters)
def otlp_traces(ctx: ApiContext):
    body = read_body(get_state().config.max_trace_body)
    # Parsed span by span as stored; a big span's long strings stay in the body meanwhile.
    spans = otlp_wire.iter_spans(body, request.content_type or "", get_state().config.trace_span_inline_max)
    trace_ingest.log_spans(ctx.session, ctx.project_id, request.headers.get(EXPERIMENT_ID_HEADER), spans)
    # OTLP's ExportTraceServiceResponse with nothing rejected: an empty message.
    return Response(b"", mimetype="application/x-protobuf")
