"""A trace's spans wherever they are: the database (sent over OTLP) or, when none reached
it, the ``traces.json`` the client uploaded instead (``services/trace_files.py``).

The database wins when it has any span of the trace: that is also when a trace's info says
``mlflow.trace.spansLocation=TRACKING_STORE`` (``TraceData.spans_stored``), and a client that
raced its own spans uploads a ``traces.json`` as well. A ``traces.json`` is read whole, so
reading it here is capped (``MAX_CONVERTED_BYTES``); past that the file stays downloadable
as it is (the client's own reads and ``get-trace-artifact`` stream it).
"""
from __future__ import annotations

from typing import Iterator, Optional, Sequence

from sqlalchemy.orm import Session

from ..errors import BadRequest, ResourceDoesNotExist
from ..models import PackageFile
from . import packages as pkg
from . import span_payloads, trace_file_spans, trace_files, traces
from .trace_file_spans import FileSpan
from .traces import TraceData

MAX_CONVERTED_BYTES = 16 * 1024 * 1024


def data_file(session: Session, project_id: str, data: TraceData) -> Optional[PackageFile]:
    """The trace's ``traces.json`` when its spans are not in the database, else None."""
    if data.spans_stored:
        return None
    return trace_files.data_file(session, project_id, data.experiment_iid, data.trace.trace_id)


def _read(file: PackageFile, trace_id: str) -> list[FileSpan]:
    if file.size > MAX_CONVERTED_BYTES:
        raise BadRequest(
            f"The spans of trace {trace_id} are in its traces.json ({file.size} bytes), more than the "
            f"{MAX_CONVERTED_BYTES} bytes read here: download the file from the trace's artifact location.")
    return trace_file_spans.parse(b"".join(pkg.open_file(file)), trace_id)


def file_spans(session: Session, project_id: str, data: TraceData) -> list[FileSpan]:
    """The spans of the trace's ``traces.json`` ([] without one, or when the database has them)."""
    file = data_file(session, project_id, data)
    return _read(file, data.trace.trace_id) if file is not None else []


def file_payloads(session: Session, project_id: str, datas: Sequence[TraceData]) -> dict[int, list[str]]:
    """The spans (OTLP protobuf JSON text, in start order) of the traces whose spans are not in
    the database, from their ``traces.json`` ([] without one), by trace row id. Read before an
    answer starts streaming: a broken or oversized file answers an error, not a cut stream."""
    rest = [d for d in datas if not d.spans_stored]
    files = trace_files.data_files(session, project_id, [(d.experiment_iid, d.trace.trace_id) for d in rest])
    out: dict[int, list[str]] = {}
    for d in rest:
        file = files.get((d.experiment_iid, d.trace.trace_id))
        out[d.trace.id] = [s.payload for s in _read(file, d.trace.trace_id)] if file is not None else []
    return out


def trace_chunks(session: Session, trace_pk: int, info_json: str, from_file: Optional[list[str]]) -> Iterator[bytes]:
    """``{"trace_info": ..., "spans": [...]}`` as bytes: the database's spans streamed
    (``span_payloads.trace_chunks``), or ``from_file`` (:func:`file_payloads`) when given."""
    if from_file is None:
        yield from span_payloads.trace_chunks(session, trace_pk, info_json)
        return
    yield b'{"trace_info":' + info_json.encode() + b',"spans":['
    for i, payload in enumerate(from_file):
        if i:
            yield b","
        yield payload.encode()
    yield b"]}"


def span_index(session: Session, project_id: str, data: TraceData) -> list:
    """The trace's spans for its span tree (id, parent, name, type, status, times)."""
    if data.spans_stored:
        return traces.span_index(session, data.trace.id)
    return file_spans(session, project_id, data)


def get_span(session: Session, project_id: str, data: TraceData, span_id: str):
    """One span with its payload (a ``models.Span`` or a ``FileSpan``)."""
    if data.spans_stored:
        return traces.get_span(session, data.trace.id, span_id)
    found = next((s for s in file_spans(session, project_id, data) if s.span_id == span_id), None)
    if found is None:
        raise ResourceDoesNotExist(f"Span {span_id} is not found.")
    return found
