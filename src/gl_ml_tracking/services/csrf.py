"""CSRF protection for the pages' forms, independent of any CSRF the host has.

One random secret per browser session, kept in the Flask session under our own
key; every form the pages render carries it in a hidden field, and every POST
to the pages must send it back (form field or header). A request whose
``Origin`` header names another site is refused as well, whatever it carries.

A host that already has CSRF (Flask-WTF, its own) keeps it: the two never read
each other's keys.
"""
from __future__ import annotations

import hmac
import secrets
from typing import Optional
from urllib.parse import urlsplit

from flask import request, session

from ..state import get_state

SESSION_KEY = "_glml_csrf"
FORM_FIELD = "_glml_csrf"
HEADER = "X-GLML-CSRF-Token"


class CsrfError(Exception):
    """The request did not prove it came from one of our pages."""


def csrf_token() -> str:
    """This session's token, made on first use (only pages with forms call it,
    so anonymous readers get no session cookie from us)."""
    token = session.get(SESSION_KEY)
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session[SESSION_KEY] = token
    return token


def _same_host(origin: str) -> bool:
    # Host and port only: behind a TLS-terminating proxy the app may see http
    # while the browser says https.
    return urlsplit(origin).netloc.lower() == request.host.lower()


def check_csrf(sent: Optional[str] = None) -> None:
    """Raise ``CsrfError`` unless the request carries this session's token and,
    when the browser says where it comes from, comes from this site (a host
    whose proxy hides the public host name can turn that second check off with
    ``GL_ML_TRACKING_UI_CHECK_ORIGIN = False``; the token check stays)."""
    origin = request.headers.get("Origin")
    check_origin = get_state().config.ui_check_origin
    if check_origin and origin and origin != "null" and not _same_host(origin):
        raise CsrfError("The request came from another site.")
    if sent is None:
        sent = request.form.get(FORM_FIELD) or request.headers.get(HEADER) or ""
    expected = session.get(SESSION_KEY)
    if not isinstance(expected, str) or not expected or not sent:
        raise CsrfError("The form is missing its security token.")
    if not hmac.compare_digest(sent.encode("utf-8"), expected.encode("utf-8")):
        raise CsrfError("The form's security token does not match this session.")
