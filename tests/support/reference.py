"""The reference ``mlflow server`` of this virtualenv (the pinned MLflow), started on a free
loopback port for differential tests and stopped with its process group."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from typing import Iterator

import requests

BIN = os.path.dirname(sys.executable)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def reference_server(tmp) -> Iterator[str]:
    """Yield the base URL once ``/health`` answers; raise RuntimeError with the log's end
    if the server exits or does not come up."""
    port = free_port()
    log_path = os.path.join(str(tmp), "server.log")
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [os.path.join(BIN, "mlflow"), "server", "--backend-store-uri", f"sqlite:///{tmp}/ref.db",
         "--artifacts-destination", os.path.join(str(tmp), "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {proc.returncode}:\n{open(log_path).read()[-3000:]}")
            try:
                if requests.get(url + "/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not answer /health:\n{open(log_path).read()[-3000:]}")
            time.sleep(0.2)  # polling a child process's readiness, not synchronising tests
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait(timeout=10)
        log.close()
