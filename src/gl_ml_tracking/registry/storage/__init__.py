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

import os
from typing import Any, Mapping

from .base import (
    DEFAULT_CHUNK_SIZE,
    MAX_KEY_BYTES,
    MAX_PART_NUMBER,
    S3_MIN_PART_SIZE,
    FileTooLarge,
    InvalidPart,
    Storage,
    StoredObject,
    UploadNotFound,
    content_disposition,
    validate_key,
)
from .local import LocalStorage
from .s3 import S3Storage
from .unavailable import StorageUnavailable

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MAX_KEY_BYTES",
    "MAX_PART_NUMBER",
    "S3_MIN_PART_SIZE",
    "FileTooLarge",
    "InvalidPart",
    "LocalStorage",
    "S3Storage",
    "Storage",
    "StorageUnavailable",
    "StoredObject",
    "UploadNotFound",
    "content_disposition",
    "storage_from_config",
    "validate_key",
]


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
