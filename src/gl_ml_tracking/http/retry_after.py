"""``Retry-After`` on every 503 the extension answers (a database or a storage that
is busy or gone): the MLflow client, like most HTTP clients, waits that long before
it retries. Seconds from ``GL_ML_TRACKING_RETRY_AFTER``."""
from __future__ import annotations

from typing import Any

from flask import make_response

from ..errors import MlflowError
from ..state import get_state


def with_retry_after(answer: Any, error: MlflowError) -> Any:
    """``answer`` (what a surface rendered for ``error``) with ``Retry-After`` when it
    says 503; other answers untouched."""
    if error.status != 503:
        return answer
    response = make_response(answer)
    if response.status_code == 503:
        response.headers.setdefault("Retry-After", str(int(get_state().config.retry_after)))
    return response
