"""A minimal CSRF guard for the forge's forms: one random token per session,
sent back in a hidden field and compared in constant time."""
from __future__ import annotations

import hmac
import secrets

from flask import abort, request, session

SESSION_KEY = "forge_csrf"
FIELD = "csrf_token"


def csrf_token() -> str:
    token = session.get(SESSION_KEY)
    if not token:
        token = secrets.token_urlsafe(32)
        session[SESSION_KEY] = token
    return token


def check_csrf() -> None:
    """Abort with 400 unless the form carries this session's token."""
    expected = session.get(SESSION_KEY)
    sent = request.form.get(FIELD, "")
    if not expected or not hmac.compare_digest(sent.encode("utf-8"), expected.encode("utf-8")):
        abort(400, description="The form expired or did not come from this site; reload the page and try again.")
