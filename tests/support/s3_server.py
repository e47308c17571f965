"""A real moto S3 server in a subprocess, for tests that talk to S3 over HTTP.

A separate process (not moto's in-process mock) so that everything a deployment does is
exercised: real HTTP, request signing, presigned URLs fetched by a plain HTTP client.

Tests use the module-scoped ``moto_endpoint`` fixture of ``tests/conftest.py``, which
starts a server with :func:`start_moto_server` and stops it with :func:`stop_moto_server`;
:func:`apply_s3_env` points boto3 at the fake credentials (undone with the MonkeyPatch).
"""
from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

# Fake credentials: moto accepts anything, boto3 just needs some to sign requests.
S3_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Never send loopback traffic through a proxy configured on the machine.
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
# Variables that would make boto3 ignore the fake credentials (an explicit profile takes
# precedence over env credentials) or use a real session.
_S3_UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
             "AWS_ENDPOINT_URL_S3")


def apply_s3_env(monkeypatch) -> None:
    """Point boto3 at fake credentials (use a pytest MonkeyPatch so it is undone)."""
    for name in _S3_UNSET:
        monkeypatch.delenv(name, raising=False)
    for name, value in S3_TEST_ENV.items():
        monkeypatch.setenv(name, value)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_answers(endpoint: str) -> bool:
    # No proxy handler: a machine-wide HTTP proxy must not intercept the loopback probe.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(endpoint + "/", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is up
    except OSError:
        return False


def start_moto_server(timeout: float = 60.0, port: int | None = None) -> tuple[str, subprocess.Popen]:
    """Start ``python -m moto.server`` on a free loopback port (or on ``port``, to bring
    a stopped server back at the same endpoint); return (endpoint_url, process).

    Waits until the server answers HTTP (polling, not a fixed sleep). The caller must call
    :func:`stop_moto_server`. Raises RuntimeError with the server's output if it fails.
    """
    # Another process can take the free port before moto binds it: then moto exits at once
    # and a new port is tried.
    for _ in range(3):
        started = _try_start(timeout, port)
        if isinstance(started, tuple):
            return started
        log_text = started
    raise RuntimeError(f"moto server did not start:\n{log_text}")


def _try_start(timeout: float, port: int | None = None) -> tuple[str, subprocess.Popen] | str:
    """(endpoint, process) once the server answers, else the server's output."""
    port = port or free_port()
    endpoint = f"http://127.0.0.1:{port}"
    # Output to a temp file, not a pipe: moto logs every request and a full pipe would block it.
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    proc._glml_log = log  # closed by stop_moto_server
    deadline = time.monotonic() + timeout
    while not _server_answers(endpoint):
        if proc.poll() is not None or time.monotonic() > deadline:
            _terminate(proc)
            log_text = _read_log(log)
            log.close()
            return log_text or f"(no output; exit code {proc.returncode})"
        time.sleep(0.05)  # poll interval between connection attempts, not a readiness guess
    return endpoint, proc


def _read_log(log) -> str:
    try:
        log.seek(0)
        return log.read().decode("utf-8", "replace")[-4000:]
    except (OSError, ValueError):
        return ""


def _terminate(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def stop_moto_server(proc: subprocess.Popen) -> None:
    """Stop a server started by :func:`start_moto_server` (terminate, then kill)."""
    _terminate(proc)
    log = getattr(proc, "_glml_log", None)
    if log is not None:
        log.close()
