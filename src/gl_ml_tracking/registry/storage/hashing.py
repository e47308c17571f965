"""Size, sha256 and md5 of an upload, computed while it streams through.

Shared by every backend's ``save`` and multipart paths so that the registry never reads
a file twice to learn its hashes.
"""
from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Iterator

from .base import FileTooLarge, StoredObject


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


class Hasher:
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


class HashingReader:
    """Reads a client stream in bounded chunks, hashing what passes and enforcing max_size."""

    def __init__(self, stream: Any, max_size: int | None, chunk_size: int, with_md5: bool = True):
        if chunk_size <= 0:
            raise ValueError("chunk_size must be > 0")
        self._stream = stream
        self._max_size = max_size
        self._chunk_size = chunk_size
        self.hasher = Hasher(with_md5)

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
