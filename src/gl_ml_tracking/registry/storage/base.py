"""The contract every storage backend keeps, and the checks they share.

:class:`Storage` is the interface; keys, listing prefixes, byte ranges and multipart part
lists are validated here, once, so that a key or an upload that works on one backend works
on the other. Nothing in this module touches a disk or the network.
"""
from __future__ import annotations

import abc
import hashlib
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterable, Iterator, Optional
from urllib.parse import quote

DEFAULT_CHUNK_SIZE = 1024 * 1024
# S3's limits; the local backend enforces the part-number one too so that both backends
# accept exactly the same multipart uploads.
MAX_PART_NUMBER = 10_000
S3_MIN_PART_SIZE = 5 * 1024 * 1024
MAX_KEY_BYTES = 1024
# Top-level directories of LocalStorage's root that are not objects. Keys may not start with
# them (on any backend, to keep keys portable).
TMP_DIR = ".tmp"
MULTIPART_DIR = ".multipart"
RESERVED_TOP = frozenset({TMP_DIR, MULTIPART_DIR})


@dataclass(frozen=True)
class StoredObject:
    """What a completed save wrote."""

    size: int
    sha256: str  # hex
    md5: Optional[str]  # hex; None when the save was asked not to compute it (see ``md5_of``)


class FileTooLarge(Exception):
    """More than ``max_size`` bytes arrived; nothing was stored."""

    def __init__(self, max_size: int):
        super().__init__(f"file is larger than the limit of {max_size} bytes")
        self.max_size = max_size


class UploadNotFound(FileNotFoundError):
    """Unknown, finished or aborted multipart upload id (or one created for another key).

    A FileNotFoundError so that callers mapping "missing" to 404 need no special case.
    """


class InvalidPart(ValueError):
    """complete_multipart was given a part that was not uploaded, or whose etag differs."""


# --------------------------------------------------------------------------- helpers


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative '/'-separated path, else raise ValueError.

    Rejected: empty keys, absolute paths, empty/'.'/'..' segments (path traversal and
    ambiguous spellings of one object), backslashes (a separator on Windows), NUL, keys
    longer than S3 allows, and keys inside LocalStorage's private areas.
    """
    if not isinstance(key, str) or not key:
        raise ValueError("storage key must be a non-empty string")
    if "\x00" in key:
        raise ValueError("storage key must not contain NUL")
    if "\\" in key:
        raise ValueError(f"storage key must not contain backslashes: {key!r}")
    if key.startswith("/"):
        raise ValueError(f"storage key must be relative: {key!r}")
    segments = key.split("/")
    if any(seg in ("", ".", "..") for seg in segments):
        raise ValueError(f"storage key has an empty, '.' or '..' segment: {key!r}")
    if segments[0] in RESERVED_TOP:
        raise ValueError(f"storage key uses a reserved name: {key!r}")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError(f"storage key is longer than {MAX_KEY_BYTES} bytes")
    return key


def check_prefix(prefix: str) -> str:
    """Validate a listing prefix; return its directory part ('' for the root).

    A prefix is a plain string prefix of keys ('a/b' matches 'a/b/c' and 'a/bc'), so only its
    complete segments (before the last '/') must be a valid key.
    """
    if not isinstance(prefix, str):
        raise ValueError("prefix must be a string")
    if "\x00" in prefix or "\\" in prefix or prefix.startswith("/"):
        raise ValueError(f"invalid storage prefix: {prefix!r}")
    dirpart = prefix.rpartition("/")[0]
    if dirpart:
        validate_key(dirpart)
    return dirpart


def check_range(start: int, end: int | None) -> None:
    if start < 0:
        raise ValueError("range start must be >= 0")
    if end is not None and end < start:
        raise ValueError("range end must be >= start")


def check_part_number(part_number: int) -> None:
    if not isinstance(part_number, int) or not 1 <= part_number <= MAX_PART_NUMBER:
        raise ValueError(f"part_number must be an integer in 1..{MAX_PART_NUMBER}")


def normalize_etag(etag: str) -> str:
    # S3 quotes etags ('"abc"'); clients may echo them with or without quotes.
    return etag.strip().strip('"').lower()


def ordered_parts(parts: Iterable[tuple[int, str]]) -> list[tuple[int, str]]:
    """Parts sorted by number, etags normalized; rejects an empty list and duplicates."""
    ordered = sorted((int(n), normalize_etag(e)) for n, e in parts)
    if not ordered:
        raise InvalidPart("a multipart upload needs at least one part")
    numbers = [n for n, _ in ordered]
    if len(set(numbers)) != len(numbers):
        raise InvalidPart("duplicate part numbers")
    for n in numbers:
        check_part_number(n)
    return ordered


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """A Content-Disposition value for ``filename`` (RFC 6266, with a UTF-8 form if needed)."""
    filename = filename.replace("\\", "/").rsplit("/", 1)[-1]
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename)
    value = f'{disposition}; filename="{fallback}"'
    if fallback != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


# --------------------------------------------------------------------------- interface


class Storage(abc.ABC):
    """Where package files live. Keys are validated by :func:`validate_key`."""

    @abc.abstractmethod
    def save(self, key: str, stream: Any, max_size: int | None = None,
             chunk_size: int = DEFAULT_CHUNK_SIZE, *, with_md5: bool = True) -> StoredObject:
        """Stream ``stream`` (anything with ``.read(n)``) to ``key``, atomically.

        Memory stays bounded; size and hashes are computed while writing (md5 only
        ``with_md5``: it is the slowest of them). On any exception (FileTooLarge past
        ``max_size``, a client disconnect raised by ``stream.read``) nothing is left at ``key``
        and an existing object there stays untouched; on success the old object is replaced
        in one step.
        """

    def md5_of(self, key: str) -> str:
        """The md5 (hex) of the object at ``key``, read back in chunks."""
        digest = hashlib.md5(usedforsecurity=False)
        for chunk in self.open_range(key):
            digest.update(chunk)
        return digest.hexdigest()

    @abc.abstractmethod
    def open_range(self, key: str, start: int = 0, end: int | None = None,
                   chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        """Iterate over bytes ``start..end`` (inclusive; ``None`` = to the end) in chunks.

        Raises FileNotFoundError at call time (not at first iteration) if ``key`` is missing.
        A range past the end yields nothing; an end past the end is clamped.
        """

    def open_file(self, key: str) -> BinaryIO | None:
        """The whole object as an open file on the local disk, which a WSGI server can
        send with ``sendfile`` (no copy through Python); ``None`` where objects are not
        local files. FileNotFoundError if missing."""
        return None

    @abc.abstractmethod
    def size(self, key: str) -> int:
        """Size in bytes; FileNotFoundError if missing."""

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except FileNotFoundError:
            return False
        return True

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Delete ``key``; no error if it is missing."""

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key starting with ``prefix`` (a string prefix); return how many.

        An empty prefix is refused: wiping the whole store is never what a caller means.
        """
        if not prefix:
            raise ValueError("delete_prefix needs a non-empty prefix")
        keys = list(self.iter_keys(prefix))  # listed first: do not delete under a live walk
        for key in keys:
            self.delete(key)
        return len(keys)

    @abc.abstractmethod
    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        """Every stored key starting with ``prefix`` (for garbage collection)."""

    def presigned_url(self, key: str, expires: int = 3600, filename: str | None = None) -> str | None:
        """A URL that downloads ``key`` without this server, or None if the backend has none."""
        return None

    def presigned_part_url(self, key: str, upload_id: str, part_number: int,
                           expires: int = 3600) -> str | None:
        """A URL a client can PUT one multipart part to directly, or None (then use upload_part)."""
        return None

    # Whether a multipart upload costs no more than one streamed upload. On S3 the
    # parts are the object; a local file must be assembled by reading, hashing and
    # writing every byte again (a 1 GB upload through the MLflow client: ~120 MB/s
    # in parts, ~300 MB/s as one PUT).
    assembles_parts_cheaply = True

    @abc.abstractmethod
    def create_multipart(self, key: str) -> str:
        """Start a multipart upload to ``key``; return its upload id."""

    @abc.abstractmethod
    def upload_part(self, key: str, upload_id: str, part_number: int, stream: Any,
                    max_size: int | None = None) -> str:
        """Stream one part (1..10000); return its etag. Re-uploading a number replaces it."""

    @abc.abstractmethod
    def complete_multipart(self, key: str, upload_id: str,
                           parts: list[tuple[int, str]]) -> StoredObject:
        """Assemble ``parts`` ((number, etag) pairs) in number order into ``key``, atomically."""

    @abc.abstractmethod
    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Drop an upload and its parts; no error if it is already gone."""

    def stale_uploads(self, older_than_s: float) -> list[str]:
        """Leftovers of uploads that never finished (a killed server, an abandoned
        multipart upload) untouched for ``older_than_s`` seconds, as names for a report.
        None here: S3 keeps no partial object, and an incomplete multipart upload is
        expired by the bucket's lifecycle rule (see the README)."""
        return []

    def remove_stale_upload(self, name: str) -> None:
        """Remove one leftover named by :meth:`stale_uploads`."""
