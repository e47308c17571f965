"""Sending one webhook request: MLflow's headers and HMAC signature, no redirects,
and the guard against requests into the local network (SSRF).

A URL is checked twice: its host must resolve only to public addresses when a
webhook is saved (``check_url``), and the address the socket actually connected to
must be public when it is sent (a host that resolved elsewhere at save time, or
DNS rebinding, is caught there). ``allow_local`` (the host's
``GL_ML_TRACKING_WEBHOOKS_ALLOW_LOCAL_NETWORK``) lifts both checks.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Iterable, Optional, Union
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ..errors import InvalidParameter

SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_ID_HEADER = "X-MLflow-Delivery-Id"
RESPONSE_BODY_KEPT = 1024  # characters of a receiver's answer kept in the history


class LocalNetworkRefused(Exception):
    """The connection reached an address in the local network, which is not allowed."""


def is_public(ip: Union[ipaddress.IPv4Address, ipaddress.IPv6Address]) -> bool:
    """Globally routable, looking through IPv4-mapped, 6to4 and NAT64 IPv6 forms."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour
        if inner is None and ip in ipaddress.IPv6Network("64:ff9b::/96"):
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None:
            ip = inner
    return ip.is_global


def check_url(url: str, *, schemes: Iterable[str], allow_local: bool) -> None:
    """Refuse a URL MLflow refuses, and one into the local network unless allowed."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidParameter(f"Webhook URL cannot be empty or just whitespace: {url!r}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise InvalidParameter(f"Invalid webhook URL {url!r}: {exc!r}") from None
    allowed = tuple(schemes)
    if parts.scheme not in allowed:
        raise InvalidParameter(f"Invalid webhook URL scheme: {parts.scheme!r}. Allowed schemes are: {', '.join(allowed)}.")
    host = parts.hostname
    if not host:
        raise InvalidParameter(f"Webhook URL must include a hostname: {url!r}")
    if allow_local:
        return
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise InvalidParameter(f"Cannot resolve Webhook URL hostname {host!r}: {exc}") from None
    for info in infos:
        ip = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if not is_public(ip):
            raise InvalidParameter(
                f"Webhook URL must not resolve to a non-public IP address. {host!r} resolves to {ip}.")


# -- the connection-time check ---------------------------------------------------------
def _checked(sock: socket.socket) -> socket.socket:
    try:
        ip = ipaddress.ip_address(sock.getpeername()[0].split("%", 1)[0])
    except (OSError, ValueError) as exc:
        sock.close()
        raise LocalNetworkRefused(f"cannot tell which address the webhook connection reached: {exc}") from None
    if not is_public(ip):
        sock.close()
        raise LocalNetworkRefused(f"the webhook connection reached {ip}, an address in the local network")
    return sock


class _GuardedHTTP(HTTPConnection):
    def _new_conn(self):
        return _checked(super()._new_conn())


class _GuardedHTTPS(HTTPSConnection):
    def _new_conn(self):  # the raw TCP socket, before any TLS byte
        return _checked(super()._new_conn())


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTP


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPS


class _GuardedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


def new_session(allow_local: bool) -> requests.Session:
    """A session for webhook requests: no proxies from the environment (the proxy
    would be the checked peer), no retries of its own, the connection-time guard
    unless the local network is allowed."""
    session = requests.Session()
    session.trust_env = False
    adapter = HTTPAdapter(max_retries=0) if allow_local else _GuardedAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


# -- one request -----------------------------------------------------------------------------
def signature(secret: str, delivery_id: str, timestamp: str, body: str) -> str:
    """``v1,<base64 HMAC-SHA256 of "<delivery id>.<timestamp>.<body>">``, as MLflow signs."""
    digest = hmac.new(secret.encode("utf-8"), f"{delivery_id}.{timestamp}.{body}".encode("utf-8"), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers_for(delivery_id: str, body: str, secret: Optional[str], timestamp: Optional[str] = None) -> dict:
    stamp = timestamp or str(int(time.time()))
    headers = {"Content-Type": "application/json", DELIVERY_ID_HEADER: delivery_id, TIMESTAMP_HEADER: stamp}
    if secret:
        headers[SIGNATURE_HEADER] = signature(secret, delivery_id, stamp, body)
    return headers


@dataclass
class Outcome:
    status_code: Optional[int]
    response_body: Optional[str]
    error: Optional[str]
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def retryable(self) -> bool:
        """Worth another try: no answer, a timeout, 429 or a server error. Any other
        answer (4xx, a redirect, which is never followed, a refused address) is final."""
        if self.status_code is None:
            return not (self.error or "").startswith("refused:")
        return self.status_code == 429 or self.status_code >= 500


def _start_of_body(response: requests.Response) -> bytes:
    """The first bytes of the answer (a receiver's huge body is never read whole); the
    status is what counts, so a body cut short or too slow reads as empty."""
    try:
        return response.raw.read(RESPONSE_BODY_KEPT * 4, decode_content=True) or b""
    except Exception:  # noqa: BLE001 - urllib3's read errors, timeouts, resets
        return b""
    finally:
        response.close()


def send(session: requests.Session, url: str, delivery_id: str, body: str, secret: Optional[str],
         timeout: float) -> Outcome:
    """POST ``body`` once; never raises for what the receiver or the network did."""
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        response = session.post(url, data=body.encode("utf-8"), headers=headers_for(delivery_id, body, secret),
                                timeout=timeout, allow_redirects=False, stream=True)
        head = _start_of_body(response)
    except requests.ConnectionError as exc:
        cause = exc.__context__
        while cause is not None and not isinstance(cause, LocalNetworkRefused):
            cause = cause.__context__
        if isinstance(cause, LocalNetworkRefused) or "LocalNetworkRefused" in repr(exc):
            return Outcome(None, None, f"refused: {cause or exc}", took())
        return Outcome(None, None, f"connection failed: {exc}"[:1000], took())
    except requests.Timeout:
        return Outcome(None, None, f"timed out after {timeout} s", took())
    except requests.RequestException as exc:
        return Outcome(None, None, f"request failed: {exc}"[:1000], took())
    except LocalNetworkRefused as exc:
        return Outcome(None, None, f"refused: {exc}", took())
    text = head.decode(response.encoding or "utf-8", errors="replace")[:RESPONSE_BODY_KEPT]
    return Outcome(response.status_code, text, None, took())
