"""The local-directory backend: objects as files, made atomic by rename."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
import uuid
from typing import Any, BinaryIO, Iterable, Iterator

from .base import (DEFAULT_CHUNK_SIZE, MULTIPART_DIR, RESERVED_TOP, TMP_DIR, InvalidPart, Storage,
                   StoredObject, UploadNotFound, check_part_number, check_prefix, check_range,
                   ordered_parts, validate_key)
from .hashing import Hasher, HashingReader


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
        self._tmp = os.path.join(self.root, TMP_DIR)
        self._multipart = os.path.join(self.root, MULTIPART_DIR)
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
        reader = HashingReader(stream, max_size, chunk_size, with_md5)
        tmp = self._write_temp(reader.chunks(), self._tmp)
        self._publish(tmp, path)
        return reader.hasher.result()

    # -- reading

    def open_range(self, key: str, start: int = 0, end: int | None = None,
                   chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
        check_range(start, end)
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
        dirpart = check_prefix(prefix)
        top = os.path.join(self.root, *dirpart.split("/")) if dirpart else self.root
        for dirpath, dirnames, filenames in os.walk(top):
            rel = os.path.relpath(dirpath, self.root)
            base = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            # Skip the private areas, and subtrees that cannot hold a matching key.
            dirnames[:] = sorted(
                d for d in dirnames
                if not (base == "" and d in RESERVED_TOP)
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
        check_part_number(part_number)
        directory = self._upload_dir(key, upload_id)
        reader = HashingReader(stream, max_size, DEFAULT_CHUNK_SIZE)
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
        ordered = ordered_parts(parts)
        hasher = Hasher()

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
        for area in (TMP_DIR, MULTIPART_DIR):
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
        if area not in RESERVED_TOP or not entry or "/" in entry or entry in (".", ".."):
            raise ValueError(f"not a leftover upload: {name!r}")
        path = os.path.join(self.root, area, entry)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            _unlink_quietly(path)
