"""The example forge as a real server process (gunicorn, several workers), set
up through its CLI exactly as an operator would: ``forge init-db``,
``ml-tracking db upgrade``, ``forge seed``. Used by the concurrency and crash
tests, which need processes to share a database and to be killed."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Optional

import requests

from tests.support import ROOT, child_env

BIN = os.path.dirname(sys.executable)
OWNER_TOKEN = "glpat-proc-owner-token-00000000000001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(database_url: str, storage_path: str, extra: Optional[dict] = None) -> dict:
    env = child_env(
        DATABASE_URL=database_url,
        SECRET_KEY="proc-test-secret",
        GL_ML_TRACKING_STORAGE_PATH=storage_path,
        DEMO_TOKEN=OWNER_TOKEN,
        DEMO_PASSWORD="demo-password",
        DEMO_OUTSIDER_TOKEN="glpat-proc-outsider-token-000000000002",
    )
    env.update(extra or {})
    return env


def prepare_database(env: dict) -> None:
    """The operator's three commands, on the database named by DATABASE_URL."""
    flask = [os.path.join(BIN, "flask"), "--app", "examples.host_app"]
    for args in (["forge", "init-db"], ["ml-tracking", "db", "upgrade"], ["forge", "seed"]):
        done = subprocess.run(flask + args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


@dataclass
class ServerProcess:
    env: dict
    workers: int = 4
    threads: int = 4
    port: int = field(default_factory=free_port)
    log_path: str = ""
    process: Optional[subprocess.Popen] = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tracking_uri(self, project: int = 1) -> str:
        return f"{self.base_url}/api/v4/projects/{project}/ml/mlflow"

    def start(self) -> "ServerProcess":
        log = open(self.log_path or os.devnull, "ab")
        # The README's production command: examples/gunicorn_conf.py, workers and threads.
        cmd = [os.path.join(BIN, "gunicorn"), "-c", os.path.join(ROOT, "examples", "gunicorn_conf.py"),
               "-w", str(self.workers), "--threads", str(self.threads),
               "-b", f"127.0.0.1:{self.port}", "--timeout", "120", "--graceful-timeout", "5",
               "examples.host_app:app"]
        # Its own process group, so that a SIGKILL reaches the master and every worker at once.
        self.process = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log.close()
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        """Poll until the server answers (a condition, not a fixed sleep)."""
        deadline = time.monotonic() + timeout
        url = self.tracking_uri() + "/api/2.0/mlflow/experiments/search"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(url, headers={"Authorization": f"Bearer {OWNER_TOKEN}"}, timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the whole server (master and workers): no cleanup of any kind runs."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as handle:
            return b"\n".join(handle.read().splitlines()[-lines:]).decode("utf-8", "replace")
