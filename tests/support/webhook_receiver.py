"""A real HTTP server on loopback that receives webhook deliveries, for the tests.

Every POST is recorded (path, headers, raw body). What a path answers is chosen by
its first segment: ``/ok/...`` 200; ``/fail<N>/...`` 500 for the first N requests
of that path, then 200; ``/redirect/...`` 302 to ``/ok/redirected``; ``/silent/...``
holds the connection without answering until the server stops. Tests wait for
deliveries with :meth:`Receiver.wait_for` (a condition, not a sleep).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def event(self) -> str:
        data = self.json
        return f"{data['entity']}.{data['action']}"

    def signature_ok(self, secret: str) -> bool:
        signed = f"{self.headers['X-MLflow-Delivery-Id']}.{self.headers['X-MLflow-Timestamp']}.{self.body.decode()}"
        digest = hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest()
        return self.headers.get("X-MLflow-Signature") == "v1," + base64.b64encode(digest).decode()


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.cond = threading.Condition()
        self.hits: Counter = Counter()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.cond:
                    receiver.hits[self.path] += 1
                    hit = receiver.hits[self.path]
                    receiver.received.append(Received(self.path, dict(self.headers.items()), body))
                    receiver.cond.notify_all()
                head = self.path.strip("/").split("/", 1)[0]
                if head == "silent":
                    receiver.release.wait(60)
                    return
                if head == "redirect":
                    self._answer(302, b"", {"Location": "/ok/redirected"})
                elif head.startswith("fail") and hit <= int(head[4:] or 1):
                    self._answer(500, b"not yet")
                else:
                    self._answer(200, b"thanks")

            def _answer(self, status: int, body: bytes, headers: Optional[dict] = None):
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="webhook-receiver", daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def on(self, path: str) -> list[Received]:
        with self.cond:
            return [r for r in self.received if r.path == path]

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 30) -> list[Received]:
        with self.cond:
            if not self.cond.wait_for(lambda: predicate(list(self.received)), timeout):
                raise AssertionError(f"timed out; received {[(r.path, r.body[:80]) for r in self.received]}")
            return list(self.received)

    def wait_count(self, path: str, count: int, timeout: float = 30) -> list[Received]:
        self.wait_for(lambda got: sum(1 for r in got if r.path == path) >= count, timeout)
        return self.on(path)

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
