"""The S3 backend: objects in an S3 (or S3-compatible) bucket.

boto3 is an optional dependency (the ``s3`` extra): it is imported only when an
:class:`S3Storage` is created, so importing this module never needs it.
"""
from __future__ import annotations

import tempfile
from typing import Any, Iterator

from .base import (DEFAULT_CHUNK_SIZE, S3_MIN_PART_SIZE, InvalidPart, Storage, StoredObject,
                   UploadNotFound, check_part_number, check_prefix, check_range, content_disposition,
                   normalize_etag, ordered_parts, validate_key)
from .hashing import Hasher, HashingReader
from .unavailable import guarded_client


_S3_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
_S3_BAD_PART = frozenset({"InvalidPart", "InvalidPartOrder", "EntityTooSmall"})


class S3Storage(Storage):
    """Objects in an S3 (or S3-compatible) bucket, under an optional key prefix.

    A storage that cannot be reached raises ``StorageUnavailable`` (an ``OSError``) from
    any method: the request pipeline answers 503 with ``Retry-After``.

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
        # Outages (no connection, timeouts, 5xx, throttling) raise StorageUnavailable.
        self.client = guarded_client(client if client is not None else self._make_client(endpoint_url, region))

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
        reader = HashingReader(stream, max_size, chunk_size, with_md5)
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
        check_range(start, end)
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
        check_prefix(prefix)
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
        check_part_number(part_number)
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
        check_part_number(part_number)
        s3_key = self._key(key)
        reader = HashingReader(stream, max_size, DEFAULT_CHUNK_SIZE)
        # S3 needs a part's length up front and a request stream has none we can trust, so
        # spool it: in memory up to 8 MiB, then to a temp file (memory stays bounded).
        with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
            for chunk in reader.chunks():
                spool.write(chunk)
            spool.seek(0)
            resp = self._multipart_call(upload_id, "upload_part", Key=s3_key,
                                        PartNumber=part_number, Body=spool,
                                        ContentLength=reader.hasher.size)
        return normalize_etag(resp["ETag"])

    def complete_multipart(self, key: str, upload_id: str,
                           parts: list[tuple[int, str]]) -> StoredObject:
        s3_key = self._key(key)
        ordered = ordered_parts(parts)
        self._multipart_call(upload_id, "complete_multipart_upload", Key=s3_key, MultipartUpload={
            "Parts": [{"PartNumber": n, "ETag": f'"{etag}"'} for n, etag in ordered]})
        # S3 knows neither sha256 nor the whole-file md5 of a multipart object (its etag is an
        # md5 of md5s), so they are computed by streaming the assembled object back once.
        hasher = Hasher()
        for chunk in self.open_range(key):
            hasher.update(chunk)
        return hasher.result()

    def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            self._multipart_call(upload_id, "abort_multipart_upload", Key=self._key(key))
        except UploadNotFound:
            pass
