"""Storage that cannot be reached, as one error: :class:`StorageUnavailable`.

An S3 endpoint that refuses connections, times out, drops a connection or answers
"slow down" / 5xx is not a bug of the request: the request pipeline answers it as
503 ``TEMPORARILY_UNAVAILABLE`` with ``Retry-After`` (the MLflow client retries), as
it does for a database that is gone. :func:`guarded_client` wraps a boto3 client so
that every call (and every page of a paginator) raises this error instead of
botocore's; nothing else of botocore leaks out of the S3 backend for outages.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator


class StorageUnavailable(OSError):
    """The file storage is unreachable or overloaded for now; retrying may succeed."""


# S3 error codes that mean "the service, not the request" (throttling, 5xx).
_RETRYABLE_CODES = frozenset({
    "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling",
    "ThrottlingException", "RequestLimitExceeded", "500", "502", "503", "504",
    # The configured bucket is missing (being restored, an S3 server restarting empty): the
    # operator's outage, not the client's mistake; nothing was stored and a retry may succeed.
    "NoSuchBucket",
})


def _outage_types() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import (
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        HTTPClientError,
        ReadTimeoutError,
    )

    return (EndpointConnectionError, ConnectionClosedError, ConnectTimeoutError, ReadTimeoutError, HTTPClientError)


def is_outage(exc: BaseException, client_error: type[BaseException]) -> bool:
    """True when ``exc`` (raised by botocore) means the storage is down, not that the
    request was wrong."""
    if isinstance(exc, client_error):
        error = getattr(exc, "response", {}) or {}
        code = str(error.get("Error", {}).get("Code", ""))
        status = error.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return code in _RETRYABLE_CODES or int(status) >= 500
    return isinstance(exc, _outage_types())


class _GuardedPaginator:
    def __init__(self, paginator: Any, guard: Callable[[BaseException], None]) -> None:
        self._paginator = paginator
        self._guard = guard

    def paginate(self, **params: Any) -> Iterator[Any]:
        try:
            yield from self._paginator.paginate(**params)
        except Exception as exc:  # noqa: BLE001 - translated or re-raised
            self._guard(exc)
            raise


class GuardedClient:
    """A boto3 S3 client whose calls raise :class:`StorageUnavailable` for outages.
    Other errors (``NoSuchKey``, ``NoSuchUpload``...) pass through untouched."""

    def __init__(self, client: Any) -> None:
        from botocore.exceptions import ClientError

        self.wrapped = client
        self._client_error = ClientError

    def _guard(self, exc: BaseException) -> None:
        if is_outage(exc, self._client_error):
            raise StorageUnavailable(f"the S3 storage is unavailable: {exc}") from exc

    def get_paginator(self, name: str) -> _GuardedPaginator:
        return _GuardedPaginator(self.wrapped.get_paginator(name), self._guard)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.wrapped, name)
        if not callable(attribute) or name == "generate_presigned_url":
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return attribute(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - translated or re-raised
                self._guard(exc)
                raise

        return call


def guarded_client(client: Any) -> Any:
    return client if isinstance(client, GuardedClient) else GuardedClient(client)
