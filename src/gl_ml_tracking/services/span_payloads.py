"""Where a span's payload lives, and reading it back a span at a time.

A span's payload is the OTLP span in protobuf's JSON mapping, what ``traces/get`` answers.
Most spans are small: the text sits in the row (``glml_trace_spans.payload``). A span whose
OTLP bytes exceed ``GL_ML_TRACKING_TRACE_SPAN_INLINE_MAX`` (a 50 MB output) goes to the
configured file storage instead (``payload_key``): its long strings (``otlp_wire`` leaves them
as UTF-8 in the request body) are written in slices, so that the server never holds a second
copy of them; the row keeps a *skeleton* (the same JSON with every long
string cut to ``SKELETON_CHARS``), which the pages show and the span search matches.

Reads never build a trace's spans as one value: :func:`iter_payloads` yields span after span
(rows fetched in chunks, stored ones streamed from the storage), and :func:`trace_chunks` turns
them into the bytes of a streamed answer.
"""
from __future__ import annotations

import json
import uuid
from typing import Any, Iterable, Iterator, Optional, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import InvalidParameter
from ..models import Span
from .otlp_json import span_dict
from .package_storage import delete_after_commit, delete_if_rolled_back, new_storage_key, storage_or_default

SKELETON_CHARS = 20_000  # a long string's characters kept in the row's skeleton
SLICE_BYTES = 256 * 1024  # UTF-8 bytes decoded and JSON-encoded at a time
READ_CHUNK = 500  # rows fetched per query when reading a trace's spans
SEND_BYTES = 64 * 1024  # the streamed answer's pieces: one socket write each


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def inline_text(span: Any) -> str:
    """The payload of a small span."""
    return _dumps(span_dict(span))


class _Reader:
    """``read(n)`` over an iterator of bytes (what ``Storage.save`` streams from)."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._buffer = b""

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buffer) < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if n < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out


def head_text(utf8: Any, chars: int) -> str:
    """The first ``chars`` characters of a long string kept as UTF-8 (a character cut in
    half at the end is dropped)."""
    return bytes(utf8[:chars * 4]).decode("utf-8", "ignore")[:chars]


def _utf8_slices(utf8: Any) -> Iterator[str]:
    """The string, decoded SLICE_BYTES at a time, never splitting a character."""
    start, size = 0, len(utf8)
    while start < size:
        end = min(start + SLICE_BYTES, size)
        while end < size and utf8[end] & 0xC0 == 0x80:  # a continuation byte: back to its start
            end -= 1
        yield bytes(utf8[start:end]).decode("utf-8")
        start = end


def _split(span: Any, big: dict[int, Any]) -> tuple[list[str], list[Any]]:
    """The span's JSON cut around its long attribute strings (taken out by
    ``otlp_wire.iter_spans``): ``len(values) + 1`` pieces of text, the JSON of ``values[i]``
    (UTF-8) belonging between piece i and i + 1."""
    marker = uuid.uuid4().hex
    values = []
    for i, kv in enumerate(span.attributes):
        if i in big:
            kv.value.string_value = f"\x00{marker}\x00"
            values.append(big[i])
    text = inline_text(span)
    pieces = text.split(_dumps(f"\x00{marker}\x00"))
    if len(pieces) != len(values) + 1:  # cannot happen: the marker is random and unique
        raise AssertionError("span marker count mismatch")
    return pieces, values


def _full_chunks(pieces: list[str], values: list[Any]) -> Iterator[bytes]:
    for i, piece in enumerate(pieces):
        yield piece.encode()
        if i < len(values):
            yield b'"'
            for text in _utf8_slices(values[i]):
                yield _dumps(text)[1:-1].encode()
            yield b'"'


def _skeleton(pieces: list[str], values: list[Any]) -> str:
    out = [pieces[0]]
    for value, piece in zip(values, pieces[1:]):
        out.append(_dumps(head_text(value, SKELETON_CHARS) + f"… ({len(value):,} bytes)"))
        out.append(piece)
    return "".join(out)


def stored_chunks(span: Any, big: dict[int, Any]) -> Iterator[bytes]:
    """The whole JSON text of a big span (what goes to the storage), in pieces."""
    return _full_chunks(*_split(span, big))


def store(session: Session, project_id: str, span: Any, big: dict[int, Any], trace_pk: int) -> tuple[str, Optional[str]]:
    """The span's ``(payload, payload_key)``: ``(text, None)`` for a small span (``big``
    empty); for a big one the skeleton and the key of the whole text, saved in the storage
    (removed again if the transaction does not commit). A retried export of a big span
    replaces its row: the copy the first export stored goes once this one commits."""
    if not big:
        return inline_text(span), None
    pieces, values = _split(span, big)
    storage = storage_or_default(None)
    earlier = session.scalar(select(Span.payload_key).where(Span.trace_pk == trace_pk,
                                                            Span.span_id == span.span_id.hex()))
    if earlier:
        delete_after_commit(session, storage, [earlier])
    key = new_storage_key(project_id)
    delete_if_rolled_back(session, storage, [key])
    try:
        storage.save(key, _Reader(_full_chunks(pieces, values)), with_md5=False)
    except UnicodeDecodeError:  # nothing is left at the key: a failed save stores nothing
        raise InvalidParameter("Invalid OTLP trace export request: a span attribute is not valid UTF-8.") from None
    return _skeleton(pieces, values), key


def delete_stored(session: Session, trace_pks: Sequence[int]) -> None:
    """Remove the stored payloads of these traces once the transaction commits."""
    keys = list(session.scalars(select(Span.payload_key).where(Span.trace_pk.in_(list(trace_pks)),
                                                               Span.payload_key.is_not(None))))
    if keys:
        delete_after_commit(session, storage_or_default(None), keys)


# -- reading --------------------------------------------------------------------------
def iter_payloads(session: Session, trace_pk: int) -> Iterator[Iterable[bytes]]:
    """Each span of the trace, in start order, as the bytes of its JSON text (one piece for
    a span in the row; the storage's chunks for a stored one). One query, its rows fetched
    READ_CHUNK at a time (a server-side cursor on PostgreSQL)."""
    rows = session.execute(
        select(Span.payload, Span.payload_key).where(Span.trace_pk == trace_pk)
        .order_by(Span.start_ns, Span.span_id).execution_options(yield_per=READ_CHUNK)
    )
    storage = None
    for payload, key in rows:
        if key is None:
            yield (payload.encode(),)
        else:
            storage = storage or storage_or_default(None)
            yield storage.open_range(key)


def full_text(chunks: Iterable[bytes]) -> str:
    return b"".join(chunks).decode()


def buffered(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """``pieces`` regrouped into writes of about SEND_BYTES (a thousand small spans are
    not a thousand socket writes)."""
    buffer: list[bytes] = []
    size = 0
    for piece in pieces:
        buffer.append(piece)
        size += len(piece)
        if size >= SEND_BYTES:
            yield b"".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield b"".join(buffer)


def trace_chunks(session: Session, trace_pk: int, info_json: str) -> Iterator[bytes]:
    """``{"trace_info": ..., "spans": [...]}`` as bytes, span by span."""
    yield b'{"trace_info":' + info_json.encode() + b',"spans":['
    for i, chunks in enumerate(iter_payloads(session, trace_pk)):
        if i:
            yield b","
        yield from chunks
    yield b"]}"
