"""Opaque page tokens: URL-safe base64 of a small JSON document."""
from __future__ import annotations

import base64
import json
from typing import Any

from ..errors import InvalidParameter


def encode_token(payload: Any) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None, kind: str = "page") -> Any:
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except Exception:
        raise InvalidParameter(f"Invalid {kind} token: {token[:64]!r}")
