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


@routes.route("version", "GET", EXPERIMENTS_READ, prefix="/", schema=NoParameters)
def version(ctx: ApiContext):
    return Response(SERVER_VERSION, mimetype="text/plain")


@routes.route("health", "GET", EXPERIMENTS_READ, prefix="/", schema=NoParameters)
def health(ctx: ApiContext):
    return Response("OK", mimetype="text/plain")


def read_body(limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (read no further)."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"Request body of {request.content_length} bytes exceeds the limit of {limit} bytes.")
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes.")
    return body


@routes.route("v1/traces", "POST", EXPERIMENTS_WRITE, prefix="/", json_body=False, schema=NoParameters)
def otlp_traces(ctx: ApiContext):
    body = read_body(get_state().config.max_trace_body)
    spans = otlp_wire.iter_spans(body, request.content_type or "")  # parsed span by span as stored
    trace_ingest.log_spans(ctx.session, ctx.project_id, request.headers.get(EXPERIMENT_ID_HEADER), spans)
    # OTLP's ExportTraceServiceResponse with nothing rejected: an empty message.
    return Response(b"", mimetype="application/x-protobuf")
