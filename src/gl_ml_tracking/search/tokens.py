"""The one codec of page tokens and cursors: a small JSON payload, signed.

Every paged listing (the MLflow searches, metric history, the packages API's keyset
``cursor``, the pages' cursors) hands out tokens from here. A token is itsdangerous'
``URLSafeSerializer`` output (URL-safe base64 JSON, a dot, an HMAC signature) made with
the Flask app's ``SECRET_KEY`` and a salt per token kind, so a client cannot forge or
edit a cursor, and a token of one listing is no token of another: all three are refused
alike, as MLflow's ``INVALID_PARAMETER_VALUE``.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Union

from flask import current_app, has_app_context
from itsdangerous import BadData, URLSafeSerializer

from ..errors import InvalidParameter

__all__ = ["FALLBACK_SECRET_KEY", "encode_token", "decode_token", "invalid_token"]

# Signs tokens when the app has no SECRET_KEY, and outside an application context
# (scripts and tests calling the services on a bare session), so paging works there
# too. The key is public (it is right here), so such tokens resist accidents, not
# forgers: a deployment sets SECRET_KEY, which multipart uploads need anyway.
FALLBACK_SECRET_KEY = "gl-ml-tracking: page tokens of an app without SECRET_KEY"
_SALT_PREFIX = "gl-ml-tracking.page-token."


def _secret_key() -> Union[str, bytes]:
    key = current_app.secret_key if has_app_context() else None
    return key or FALLBACK_SECRET_KEY


@lru_cache(maxsize=64)
def _serializer(secret_key: Union[str, bytes], kind: str) -> URLSafeSerializer:
    # Built once per key and kind: search_runs is benchmarked and signs on every page.
    return URLSafeSerializer(secret_key, salt=_SALT_PREFIX + kind)


def invalid_token(token: Any, what: str = "page token") -> InvalidParameter:
    """The error for a token that is not one of ours (str(): a token sent as a number
    or a list must be a 400, not a crash while making the message)."""
    return InvalidParameter(f"Invalid {what} {str(token)[:80]!r}.")


def encode_token(payload: Any, kind: str) -> str:
    """``payload`` (JSON-serialisable) as an opaque token of listing ``kind``."""
    return _serializer(_secret_key(), kind).dumps(payload)


def decode_token(token: Any, kind: str, what: str = "page token") -> Any:
    """The payload of a token made by :func:`encode_token` for ``kind`` under this app's key.

    Anything else (not a string, not signed, edited, signed for another kind or with
    another key) raises ``InvalidParameter("Invalid <what> '...'.")``. Surrounding
    spaces and base64 padding are ignored (our tokens carry none; some clients add it).
    """
    if not isinstance(token, str) or not token.strip():
        raise invalid_token(token, what)
    try:
        return _serializer(_secret_key(), kind).loads(token.strip().rstrip("="))
    except BadData:
        raise invalid_token(token, what) from None
