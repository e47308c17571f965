"""Byte storage under the package registry: a local directory or an S3 bucket.

Both backends keep one contract (see :class:`Storage`):

* uploads are streamed with bounded memory and hashed (size, sha256, md5) on the way in, so
  the registry never reads a file twice and never holds a whole body;
* uploads are atomic: a reader sees the old object or the complete new one, never a partial
  one, and a failed upload (client gone, size limit hit) leaves nothing behind;
* keys are '/'-separated relative paths validated the same way by every backend, so a key
  that works locally works on S3 and the other way round.

boto3 is an optional dependency (the ``s3`` extra): it is imported only by :class:`S3Storage`.
"""
from __future__ import annotations

import abc
import hashlib
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterable, Iterator, Mapping, Optional
from urllib.parse import quote

DEFAULT_CHUNK_SIZE = 1024 * 1024
# S3's limits; the local backend enforces the part-number one too so that both backends
# accept exactly the same multipart uploads.
MAX_PART_NUMBER = 10_000
S3_MIN_PART_SIZE = 5 * 1024 * 1024
MAX_KEY_BYTES = 1024
# Top-level directories of LocalStorage's root that are not objects. Keys may not start with
# them (on any backend, to keep keys portable).
_TMP_DIR = ".tmp"
_MULTIPART_DIR = ".multipart"
_RESERVED_TOP = frozenset({_TMP_DIR, _MULTIPART_DIR})


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
    if segments[0] in _RESERVED_TOP:
        raise ValueError(f"storage key uses a reserved name: {key!r}")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError(f"storage key is longer than {MAX_KEY_BYTES} bytes")
    return key


def _check_prefix(prefix: str) -> str:
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


def _check_range(start: int, end: int | None) -> None:
    if start < 0:
        raise ValueError("range start must be >= 0")
    if end is not None and end < start:
        raise ValueError("range end must be >= start")


def _check_part_number(part_number: int) -> None:
    if not isinstance(part_number, int) or not 1 <= part_number <= MAX_PART_NUMBER:
        raise ValueError(f"part_number must be an integer in 1..{MAX_PART_NUMBER}")


def _normalize_etag(etag: str) -> str:
    # S3 quotes etags ('"abc"'); clients may echo them with or without quotes.
    return etag.strip().strip('"').lower()


def _ordered_parts(parts: Iterable[tuple[int, str]]) -> list[tuple[int, str]]:
    """Parts sorted by number, etags normalized; rejects an empty list and duplicates."""
    ordered = sorted((int(n), _normalize_etag(e)) for n, e in parts)
    if not ordered:
        raise InvalidPart("a multipart upload needs at least one part")
    numbers = [n for n, _ in ordered]
    if len(set(numbers)) != len(numbers):
        raise InvalidPart("duplicate part numbers")
    for n in numbers:
        _check_part_number(n)
    return ordered


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """A Content-Disposition value for ``filename`` (RFC 6266, with a UTF-8 form if needed)."""
    filename = filename.replace("\\", "/").rsplit("/", 1)[-1]
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename)
    value = f'{disposition}; filename="{fallback}"'
    if fallback != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


# Chunks at least this big are hashed on a pool thread while the request thread reads
# and writes the next one (hashlib releases the GIL for such buffers): hashing was ~40% of
# an upload's time in one thread. Smaller chunks are hashed inline, where a thread hop
# would cost more than it saves.
_BACKGROUND_HASH_MIN = 256 * 1024
_hash_pool: Any = None
_hash_pool_lock = threading.Lock()


def _hash_executor() -> ThreadPoolExecutor:
    global _hash_pool
    if _hash_pool is None:
        with _hash_pool_lock:
            if _hash_pool is None:
                _hash_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="glml-hash")
    return _hash_pool


def _forget_hash_pool() -> None:
    global _hash_pool
    _hash_pool = None  # a forked child has the pool object but none of its threads


os.register_at_fork(after_in_child=_forget_hash_pool)


class _Hasher:
    """Size, sha256 and (unless ``with_md5`` is false) md5 of the bytes fed to it, in order.

    Each digest has at most one chunk in flight on the pool: ``update`` waits for the
    previous chunk's hashing before handing over the next one, so the order of
    updates is kept and at most one extra chunk is held in memory."""

    def __init__(self, with_md5: bool = True) -> None:
        self.size = 0
        self._sha256 = hashlib.sha256()
        # usedforsecurity=False: md5 is only a checksum here, and FIPS builds refuse it otherwise.
        self._md5 = hashlib.md5(usedforsecurity=False) if with_md5 else None
        self._pending: list[Future] = []

    def _wait(self) -> None:
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def update(self, data: bytes) -> None:
        self.size += len(data)
        self._wait()
        if len(data) >= _BACKGROUND_HASH_MIN:
            pool = _hash_executor()
            self._pending = [pool.submit(self._sha256.update, data)]
            if self._md5 is not None:
                self._pending.append(pool.submit(self._md5.update, data))
        else:
            self._sha256.update(data)
            if self._md5 is not None:
                self._md5.update(data)

    def result(self) -> StoredObject:
        self._wait()
        return StoredObject(self.size, self._sha256.hexdigest(), self._md5.hexdigest() if self._md5 is not None else None)


class _HashingReader:
    """Reads a client stream in bounded chunks, hashing what passes and enforcing max_size."""

    def __init__(self, stream: Any, max_size: int | None, chunk_size: int, with_md5: bool = True):
        if chunk_size <= 0:
            raise ValueError("chunk_size must be > 0")
        self._stream = stream
        self._max_size = max_size
        self._chunk_size = chunk_size
        self.hasher = _Hasher(with_md5)

    def read(self, n: int | None = None) -> bytes:
        want = self._chunk_size if n is None else min(n, self._chunk_size)
        data = self._stream.read(want)
        if not data:
            return b""
        # Checked before the bytes are written anywhere, so the limit is never exceeded on disk.
        if self._max_size is not None and self.hasher.size + len(data) > self._max_size:
            raise FileTooLarge(self._max_size)
        self.hasher.update(data)
        return data

    def chunks(self) -> Iterator[bytes]:
        while data := self.read():
            yield data

    def read_into(self, buf: bytearray, limit: int) -> bytearray:
        """Append to ``buf`` until it holds ``limit`` bytes or the stream ends."""
        while len(buf) < limit:
            data = self.read(limit - len(buf))
            if not data:
                break
            buf += data
        return buf


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_dir(path: str) -> None:
    # Makes a rename durable across a crash on POSIX; not possible (nor needed) on Windows.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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


# --------------------------------------------------------------------------- local


_UPLOAD_ID_RE = re.compile(r"^[0-9a-f]{32}$")


class LocalStorage(Storage):
    """Objects as files under ``root``.

    A save writes to a temp file in ``root/.tmp`` (same filesystem, so the final step is a
    rename), fsyncs it, then ``os.replace``s it onto the key: readers see the old file or the
    new one, never a partial one. Multipart parts live in ``root/.multipart/<upload_id>/``.
    Temp files left by a crash (not by an exception) can be removed from ``root/.tmp``.
    """

    assembles_parts_cheaply = False

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self._tmp = os.path.join(self.root, _TMP_DIR)
        self._multipart = os.path.join(self.root, _MULTIPART_DIR)
        os.makedirs(self._tmp, exist_ok=True)
        os.makedirs(self._multipart, exist_ok=True)

    def _path(self, key: str) -> str:
        return os.path.join(self.root, *validate_key(key).split("/"))

    # -- writing

    @staticmethod
    def _write_temp(chunks: Iterable[bytes], directory: str) -> str:
        """Write chunks to a new temp file in ``directory``, durably; return its path."""
        fd, tmp = tempfile.mkstemp(dir=directory, prefix="upload-")
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            _unlink_quietly(tmp)
            raise
        return tmp

    def _publish(self, tmp: str, path: str) -> None:
        """Move a complete temp file onto ``path`` in one rename."""
        parent = os.path.dirname(path)
        try:
            # A concurrent delete() may prune the parent between makedirs and replace: retry.
            for attempt in range(3):
                os.makedirs(parent, exist_ok=True)
                try:
                    os.replace(tmp, path)
                    break
                except FileNotFoundError:
                    if attempt == 2 or not os.path.exists(tmp):
                        raise
        except BaseException:
            _unlink_quietly(tmp)
            raise
        _fsync_dir(parent)

    def save(self, key: str, stream: Any, max_size: int | None = None,
             chunk_size: int = DEFAULT_CHUNK_SIZE, *, with_md5: bool = True) -> StoredObject:
        path = self._path(key)
        reader = _HashingReader(stream, max_size, chunk_size, with_md5)
        tmp = self._write_temp(reader.chunks(), self._tmp)
        self._publish(tmp, path)
        return reader.hasher.result()

    # -- reading

    def open_range(self, key: str, start: int = 0, end: int | None = None,
                   chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        _check_range(start, end)
        f = self.open_file(key)  # opened now so a missing key raises here, not mid-response
        return self._iter_file(f, start, end, chunk_size)

    def open_file(self, key: str) -> BinaryIO | None:
        try:
            return open(self._path(key), "rb")
        except IsADirectoryError:
            raise FileNotFoundError(f"no such object: {key}") from None

    @staticmethod
    def _iter_file(f: Any, start: int, end: int | None, chunk_size: int) -> Iterator[bytes]:
        with f:
            f.seek(start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                data = f.read(chunk_size if remaining is None else min(chunk_size, remaining))
                if not data:
                    return
                if remaining is not None:
                    remaining -= len(data)
                yield data

    def size(self, key: str) -> int:
        path = self._path(key)
        if not os.path.isfile(path):  # a directory ('a' when 'a/b' exists) is not an object
            raise FileNotFoundError(f"no such object: {key}")
        return os.path.getsize(path)

    def exists(self, key: str) -> bool:
        return os.path.isfile(self._path(key))

    # -- deleting and listing

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            os.unlink(path)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return
        self._prune_empty_dirs(os.path.dirname(path))

    def _prune_empty_dirs(self, directory: str) -> None:
        # Keeps the tree from filling with empty package directories after garbage collection.
        while directory != self.root and directory.startswith(self.root + os.sep):
            try:
                os.rmdir(directory)
            except OSError:  # not empty (or already gone / recreated): stop here
                return
            directory = os.path.dirname(directory)

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        dirpart = _check_prefix(prefix)
        top = os.path.join(self.root, *dirpart.split("/")) if dirpart else self.root
        for dirpath, dirnames, filenames in os.walk(top):
            rel = os.path.relpath(dirpath, self.root)
            base = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            # Skip the private areas, and subtrees that cannot hold a matching key.
            dirnames[:] = sorted(
                d for d in dirnames
                if not (base == "" and d in _RESERVED_TOP)
                and ((base + d + "/").startswith(prefix) or prefix.startswith(base + d + "/"))
            )
            for name in sorted(filenames):
                key = base + name
                if key.startswith(prefix):
                    yield key

    # -- multipart

    def create_multipart(self, key: str) -> str:
        validate_key(key)
        upload_id = uuid.uuid4().hex
        directory = os.path.join(self._multipart, upload_id)
        os.mkdir(directory)
        # Remember the key so a part or completion for another key is refused, as S3 does.
        with open(os.path.join(directory, "key"), "w", encoding="utf-8") as f:
            f.write(key)
        return upload_id

    def _upload_dir(self, key: str, upload_id: str) -> str:
        validate_key(key)
        # The id becomes a path: accept only the shape create_multipart makes.
        if not isinstance(upload_id, str) or not _UPLOAD_ID_RE.match(upload_id):
            raise UploadNotFound(f"no such upload: {upload_id!r}")
        directory = os.path.join(self._multipart, upload_id)
        try:
            with open(os.path.join(directory, "key"), encoding="utf-8") as f:
                owner = f.read()
        except FileNotFoundError:
            raise UploadNotFound(f"no such upload: {upload_id}") from None
        if owner != key:
            raise UploadNotFound(f"upload {upload_id} is not for key {key!r}")
        return directory

    @staticmethod
    def _part_path(directory: str, part_number: int) -> str:
        return os.path.join(directory, f"part-{part_number:05d}")

    def upload_part(self, key: str, upload_id: str, part_number: int, stream: Any,
                    max_size: int | None = None) -> str:
        _check_part_number(part_number)
        directory = self._upload_dir(key, upload_id)
        reader = _HashingReader(stream, max_size, DEFAULT_CHUNK_SIZE)
        # Temp file inside the upload directory, so an abort also removes a half-written part.
        tmp = self._write_temp(reader.chunks(), directory)
        try:
            os.replace(tmp, self._part_path(directory, part_number))
        except FileNotFoundError:  # aborted while this part was uploading
            _unlink_quietly(tmp)
            raise UploadNotFound(f"no such upload: {upload_id}") from None
        return reader.hasher.result().md5  # the etag is the part's md5, as on S3

    def complete_multipart(self, key: str, upload_id: str,
                           parts: list[tuple[int, str]]) -> StoredObject:
        directory = self._upload_dir(key, upload_id)
        ordered = _ordered_parts(parts)
        hasher = _Hasher()

        def assembled() -> Iterator[bytes]:
            for number, etag in ordered:
                part_md5 = hashlib.md5(usedforsecurity=False)
                try:
                    f = open(self._part_path(directory, number), "rb")
                except FileNotFoundError:
                    raise InvalidPart(f"part {number} was not uploaded") from None
                with f:
                    while data := f.read(DEFAULT_CHUNK_SIZE):
                        part_md5.update(data)
                        hasher.update(data)
                        yield data
                if part_md5.hexdigest() != etag:
                    raise InvalidPart(f"etag of part {number} does not match")

        tmp = self._write_temp(assembled(), self._tmp)
        self._publish(tmp, self._path(key))
        shutil.rmtree(directory, ignore_errors=True)
        return hasher.result()

    def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            directory = self._upload_dir(key, upload_id)
        except UploadNotFound:
            return
        shutil.rmtree(directory, ignore_errors=True)

    # -- leftovers

    @staticmethod
    def _last_touched(path: str) -> float:
        """Newest mtime of ``path`` and, for a directory, of what it holds (a multipart
        upload in progress touches its folder each time a part lands)."""
        newest = os.lstat(path).st_mtime
        if os.path.isdir(path):
            for entry in os.scandir(path):
                newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
        return newest

    def stale_uploads(self, older_than_s: float) -> list[str]:
        """Temp files of interrupted saves (``.tmp/``) and multipart upload folders
        (``.multipart/``) nobody has written to for ``older_than_s`` seconds."""
        cutoff = time.time() - older_than_s
        found = []
        for area in (_TMP_DIR, _MULTIPART_DIR):
            directory = os.path.join(self.root, area)
            try:
                entries = sorted(os.listdir(directory))
            except FileNotFoundError:
                continue
            for name in entries:
                try:
                    if self._last_touched(os.path.join(directory, name)) < cutoff:
                        found.append(f"{area}/{name}")
                except FileNotFoundError:
                    continue  # finished or removed meanwhile
        return found

    def remove_stale_upload(self, name: str) -> None:
        area, _, entry = name.partition("/")
        if area not in _RESERVED_TOP or not entry or "/" in entry or entry in (".", ".."):
            raise ValueError(f"not a leftover upload: {name!r}")
        path = os.path.join(self.root, area, entry)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            _unlink_quietly(path)


# --------------------------------------------------------------------------- S3


_S3_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
_S3_BAD_PART = frozenset({"InvalidPart", "InvalidPartOrder", "EntityTooSmall"})


class S3Storage(Storage):
    """Objects in an S3 (or S3-compatible) bucket, under an optional key prefix.

    Atomicity comes from S3 itself: an object appears only when put_object or
    complete_multipart_upload succeeds, so a failed save aborts its multipart upload and
    nothing is visible. ``save`` buffers at most one part (``part_size``) in memory.
    """

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None,
                 region: str | None = None, client: Any = None,
                 part_size: int = 16 * 1024 * 1024):
        if not bucket:
            raise ValueError("S3 storage needs a bucket name")
        if part_size < S3_MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {S3_MIN_PART_SIZE} bytes (S3's minimum)")
        try:
            from botocore.exceptions import ClientError
        except ImportError as exc:  # boto3 is the optional "s3" extra
            raise RuntimeError("S3 storage needs boto3: pip install 'gl-ml-tracking[s3]'") from exc
        self._ClientError = ClientError
        self.bucket = bucket
        prefix = prefix.strip("/")
        self.prefix = prefix + "/" if prefix else ""
        self.part_size = part_size
        self.client = client if client is not None else self._make_client(endpoint_url, region)

    @staticmethod
    def _make_client(endpoint_url: str | None, region: str | None) -> Any:
        import boto3
        from botocore.config import Config

        options: dict[str, Any] = {"signature_version": "s3v4"}  # v4: required by newer regions
        if endpoint_url:
            # S3-compatible servers (MinIO, Ceph, moto) want path-style addressing, and many
            # reject the CRC checksums boto3 >= 1.36 adds to every upload by default.
            options["s3"] = {"addressing_style": "path"}
            options["request_checksum_calculation"] = "when_required"
            options["response_checksum_validation"] = "when_required"
        try:
            config = Config(**options)
        except TypeError:  # botocore older than 1.36 has no checksum options (nor the issue)
            options.pop("request_checksum_calculation", None)
            options.pop("response_checksum_validation", None)
            config = Config(**options)
        return boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)

    def _key(self, key: str) -> str:
        return self.prefix + validate_key(key)

    @staticmethod
    def _code(exc: Exception) -> str:
        return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))

    # -- writing

    def save(self, key: str, stream: Any, max_size: int | None = None,
             chunk_size: int = DEFAULT_CHUNK_SIZE, *, with_md5: bool = True) -> StoredObject:
        s3_key = self._key(key)
        reader = _HashingReader(stream, max_size, chunk_size, with_md5)
        buf = reader.read_into(bytearray(), self.part_size)
        # One byte of look-ahead tells "exactly one part" (single put) from "more to come".
        more = reader.read_into(bytearray(), 1) if len(buf) == self.part_size else b""
        if not more:
            self.client.put_object(Bucket=self.bucket, Key=s3_key, Body=buf)
            return reader.hasher.result()

        upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=s3_key)["UploadId"]
        try:
            parts = []
            while buf:
                number = len(parts) + 1
                resp = self.client.upload_part(Bucket=self.bucket, Key=s3_key, UploadId=upload_id,
                                               PartNumber=number, Body=buf)
                parts.append({"PartNumber": number, "ETag": resp["ETag"]})
                buf = None  # release the sent part before buffering the next: one part in memory
                buf = reader.read_into(bytearray(more), self.part_size)
                more = b""
            self.client.complete_multipart_upload(Bucket=self.bucket, Key=s3_key, UploadId=upload_id,
                                                  MultipartUpload={"Parts": parts})
        except BaseException:
            self._abort_quietly(s3_key, upload_id)
            raise
        return reader.hasher.result()

    def _abort_quietly(self, s3_key: str, upload_id: str) -> None:
        # Best effort: the original error matters more than a failed cleanup (a bucket
        # lifecycle rule for incomplete multipart uploads is the safety net).
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=s3_key, UploadId=upload_id)
        except Exception:
            pass

    # -- reading

    def open_range(self, key: str, start: int = 0, end: int | None = None,
                   chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        _check_range(start, end)
        params = {"Bucket": self.bucket, "Key": self._key(key)}
        if start or end is not None:
            params["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            body = self.client.get_object(**params)["Body"]
        except self._ClientError as exc:
            code = self._code(exc)
            if code in _S3_NOT_FOUND:
                raise FileNotFoundError(f"no such object: {key}") from None
            if code == "InvalidRange":  # start past the end: an empty read, like LocalStorage
                return iter(())
            raise
        return self._iter_body(body, chunk_size)

    @staticmethod
    def _iter_body(body: Any, chunk_size: int) -> Iterator[bytes]:
        try:
            while data := body.read(chunk_size):
                yield data
        finally:
            body.close()  # return the connection to the pool even if the client went away

    def size(self, key: str) -> int:
        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"])
        except self._ClientError as exc:
            if self._code(exc) in _S3_NOT_FOUND:
                raise FileNotFoundError(f"no such object: {key}") from None
            raise

    # -- deleting and listing

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def _iter_s3_keys(self, prefix: str) -> Iterator[str]:
        _check_prefix(prefix)
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            for obj in page.get("Contents", ()):
                yield obj["Key"]

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        for s3_key in self._iter_s3_keys(prefix):
            yield s3_key[len(self.prefix):]

    def delete_prefix(self, prefix: str) -> int:
        if not prefix:
            raise ValueError("delete_prefix needs a non-empty prefix")
        count = 0
        batch: list[str] = []

        def flush() -> None:
            resp = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
            if resp.get("Errors"):
                first = resp["Errors"][0]
                raise OSError(f"S3 refused to delete {first.get('Key')}: {first.get('Message')}")

        for s3_key in list(self._iter_s3_keys(prefix)):
            batch.append(s3_key)
            if len(batch) == 1000:  # delete_objects' limit per request
                flush()
                count += len(batch)
                batch = []
        if batch:
            flush()
            count += len(batch)
        return count

    def presigned_url(self, key: str, expires: int = 3600, filename: str | None = None) -> str | None:
        params = {"Bucket": self.bucket, "Key": self._key(key)}
        if filename:
            params["ResponseContentDisposition"] = content_disposition(filename)
        return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires)

    def presigned_part_url(self, key: str, upload_id: str, part_number: int,
                           expires: int = 3600) -> str | None:
        _check_part_number(part_number)
        params = {"Bucket": self.bucket, "Key": self._key(key), "UploadId": upload_id,
                  "PartNumber": part_number}
        return self.client.generate_presigned_url("upload_part", Params=params, ExpiresIn=expires)

    # -- multipart

    def create_multipart(self, key: str) -> str:
        return self.client.create_multipart_upload(Bucket=self.bucket, Key=self._key(key))["UploadId"]

    def _multipart_call(self, upload_id: str, method: str, **params: Any) -> Any:
        try:
            return getattr(self.client, method)(Bucket=self.bucket, UploadId=upload_id, **params)
        except self._ClientError as exc:
            code = self._code(exc)
            if code == "NoSuchUpload":
                raise UploadNotFound(f"no such upload: {upload_id}") from None
            if code in _S3_BAD_PART:
                raise InvalidPart(str(exc)) from None
            raise

    def upload_part(self, key: str, upload_id: str, part_number: int, stream: Any,
                    max_size: int | None = None) -> str:
        _check_part_number(part_number)
        s3_key = self._key(key)
        reader = _HashingReader(stream, max_size, DEFAULT_CHUNK_SIZE)
        # S3 needs a part's length up front and a request stream has none we can trust, so
        # spool it: in memory up to 8 MiB, then to a temp file (memory stays bounded).
        with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
            for chunk in reader.chunks():
                spool.write(chunk)
            spool.seek(0)
            resp = self._multipart_call(upload_id, "upload_part", Key=s3_key,
                                        PartNumber=part_number, Body=spool,
                                        ContentLength=reader.hasher.size)
        return _normalize_etag(resp["ETag"])

    def complete_multipart(self, key: str, upload_id: str,
                           parts: list[tuple[int, str]]) -> StoredObject:
        s3_key = self._key(key)
        ordered = _ordered_parts(parts)
        self._multipart_call(upload_id, "complete_multipart_upload", Key=s3_key, MultipartUpload={
            "Parts": [{"PartNumber": n, "ETag": f'"{etag}"'} for n, etag in ordered]})
        # S3 knows neither sha256 nor the whole-file md5 of a multipart object (its etag is an
        # md5 of md5s), so they are computed by streaming the assembled object back once.
        hasher = _Hasher()
        for chunk in self.open_range(key):
            hasher.update(chunk)
        return hasher.result()

    def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            self._multipart_call(upload_id, "abort_multipart_upload", Key=self._key(key))
        except UploadNotFound:
            pass


# --------------------------------------------------------------------------- config


def storage_from_config(config: Mapping[str, Any], instance_path: str) -> Storage:
    """Build the storage selected by the ``GL_ML_TRACKING_STORAGE*`` / ``*_S3_*`` settings."""
    kind = str(config.get("GL_ML_TRACKING_STORAGE") or "local").strip().lower()
    if kind == "local":
        path = config.get("GL_ML_TRACKING_STORAGE_PATH") or os.path.join(instance_path, "ml_tracking_storage")
        return LocalStorage(path)
    if kind == "s3":
        bucket = config.get("GL_ML_TRACKING_S3_BUCKET")
        if not bucket:
            raise ValueError("GL_ML_TRACKING_S3_BUCKET must be set when GL_ML_TRACKING_STORAGE is 's3'")
        return S3Storage(
            bucket,
            prefix=config.get("GL_ML_TRACKING_S3_PREFIX") or "",
            endpoint_url=config.get("GL_ML_TRACKING_S3_ENDPOINT_URL") or None,
            region=config.get("GL_ML_TRACKING_S3_REGION") or None,
        )
    raise ValueError(
        f"GL_ML_TRACKING_STORAGE must be 'local' or 's3', not {config.get('GL_ML_TRACKING_STORAGE')!r}")
