"""Forwarded headers from trusted proxies (``GL_ML_TRACKING_TRUSTED_PROXIES``).

Behind a TLS load balancer the request a worker sees is ``http://<internal host>``;
every absolute URL the extension builds (multipart part URLs, the tracking URI shown
on the pages, the packages API's ``Link`` headers, the OpenAPI document's server)
comes from the request's scheme, host, port and script root. With ``n`` trusted
proxies in front, werkzeug's ``ProxyFix`` takes those from the last ``n`` values of
``X-Forwarded-For``, ``-Proto``, ``-Host``, ``-Port`` and ``-Prefix``, for the whole
app (the host's own URLs agree with ours). 0, the default, trusts no header: a
client could otherwise make the server hand out URLs to a host of its choosing. A
host that already wraps its app in ``ProxyFix`` leaves this at 0.
"""
from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix


def trusted_proxies(value: Any) -> int:
    """The setting as a count of proxies (a non-negative int), or ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"GL_ML_TRACKING_TRUSTED_PROXIES must be a number of proxies, not {value!r}")
    try:
        count = int(value)
    except ValueError:
        raise ValueError(f"GL_ML_TRACKING_TRUSTED_PROXIES must be a number of proxies, not {value!r}") from None
    if count < 0:
        raise ValueError("GL_ML_TRACKING_TRUSTED_PROXIES must be 0 or more")
    return count


def trust_forwarded_headers(app: Flask, setting: Any) -> None:
    """Wrap ``app.wsgi_app`` in ``ProxyFix`` for ``setting`` proxies (nothing for 0)."""
    count = trusted_proxies(setting or 0)
    if count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count, x_port=count,
                                x_prefix=count)  # type: ignore[method-assign]
