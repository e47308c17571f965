"""The loopback ceiling for artifact transfers: ``curl`` against the simplest
server that does the same disk work as an artifact store (``sendfile`` a file
out; write an upload to a file), so "80% of curl" means 80% of what this
machine's loopback and disk allow."""
from __future__ import annotations

import os
import socket
import threading
from pathlib import Path


class BaselineServer:
    """``GET /file`` sends ``source``; ``PUT /upload`` writes the body to ``sink``."""

    def __init__(self, source: Path, sink: Path):
        self.source = source
        self.sink = sink
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, name="curl-baseline", daemon=True)
        self._closing = False

    def __enter__(self) -> "BaselineServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._closing = True
        self.sock.close()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        while not self._closing:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    self._handle(conn)
                except OSError:
                    pass

    def _handle(self, conn: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(65536)
            if not chunk:
                return
            head += chunk
        header, _, rest = head.partition(b"\r\n\r\n")
        lines = header.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if method == "GET" and path == "/file":
            size = self.source.stat().st_size
            conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n".encode())
            with open(self.source, "rb") as fh:
                offset = 0
                while offset < size:
                    sent = os.sendfile(conn.fileno(), fh.fileno(), offset, size - offset)
                    if sent == 0:
                        break
                    offset += sent
            return
        if method == "PUT":
            remaining = int(headers.get("content-length", "0")) - len(rest)
            buf = bytearray(1024 * 1024)
            view = memoryview(buf)
            with open(self.sink, "wb") as out:
                out.write(rest)
                while remaining > 0:
                    got = conn.recv_into(view, min(len(buf), remaining))
                    if not got:
                        break
                    out.write(view[:got])
                    remaining -= got
            conn.sendall(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
