"""Start and stop the servers under test, give each a fresh database, and watch
their memory.

* the reference: ``mlflow server`` from this virtualenv (uvicorn), once with
  ``--workers 1`` and once with its default worker count;
* ours: the example forge under gunicorn, as the README deploys it.

Every server runs in its own process group (``start_new_session``) so that
stopping it reaches its workers too, and nothing else.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import psutil
import requests

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG_ADMIN_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
OUR_TOKEN = "glpat-bench-owner-token-00000000000001"
OUR_PROJECT = "demo/mnist"  # seeded, public, id 1
OUR_PROJECT_ID = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- databases
def _pg_dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def postgres_available() -> Optional[str]:
    """None when the PostgreSQL server answers, else why not."""
    try:
        import psycopg

        with psycopg.connect(_pg_dsn(PG_ADMIN_URL), connect_timeout=3) as conn:
            conn.execute("select 1")
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "no server"
        return str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)


@contextmanager
def fresh_database(kind: str, tmp_dir: Path, label: str) -> Iterator[str]:
    """A SQLAlchemy URL (psycopg 3 driver for PostgreSQL) of an empty database."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_dir / (label + '.db')}"
        return
    import psycopg

    name = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_pg_dsn(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = _pg_dsn(PG_ADMIN_URL).rsplit("/", 1)[0].split("://", 1)[1]
    try:
        yield f"postgresql+psycopg://{base}/{name}"
    finally:
        with psycopg.connect(_pg_dsn(PG_ADMIN_URL), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --------------------------------------------------------------------------- servers
@dataclass
class Server:
    name: str  # "ref-w1", "ref-default", "ours"
    kind: str  # "ref" | "ours"
    base_url: str
    tracking_uri: str
    db_url: str
    artifacts_dir: Path
    log_path: Path
    proc: Optional[subprocess.Popen] = None
    _tree: list = field(default_factory=list)
    _tree_at: float = 0.0

    @property
    def is_ref(self) -> bool:
        return self.kind == "ref"

    def _serving_root(self) -> psutil.Process:
        """The process that answers HTTP: uvicorn under ``mlflow server``; the
        gunicorn master for ours (the parent CLI of mlflow only waits)."""
        root = psutil.Process(self.proc.pid)
        if self.is_ref:
            for child in root.children():
                if "uvicorn" in " ".join(child.cmdline()):
                    return child
        return root

    def rss(self) -> int:
        """Resident memory (bytes) summed over the serving process and its workers."""
        now = time.monotonic()
        if now - self._tree_at > 2.0 or not self._tree:
            try:
                root = self._serving_root()
                self._tree = [root] + root.children(recursive=True)
            except psutil.Error:
                self._tree = []
            self._tree_at = now
        total = 0
        for proc in self._tree:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                self._tree_at = 0.0  # a worker went away: rebuild next time
        return total

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        # Workers may outlive the parent by a moment; make sure the group is gone.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _spawn(argv: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "ab")
    return subprocess.Popen(argv, cwd=str(ROOT), env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)


def _base_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), str(ROOT / "src"), env.get("PYTHONPATH")]))
    return env


def start_reference(name: str, db_url: str, work: Path, workers: Optional[int]) -> Server:
    """``mlflow server`` with proxied artifacts; ``workers=None`` keeps its default."""
    port = free_port()
    artifacts = work / f"{name}-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    log_path = work / f"{name}.log"
    argv = [str(BIN / "mlflow"), "server", "--backend-store-uri", db_url,
            "--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", str(port)]
    if workers is not None:
        argv += ["--workers", str(workers)]
    env = _base_env()
    # The GenAI job runner (huey consumers) has nothing to do with tracking; off,
    # it neither takes CPU from the workloads nor counts in memory.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    base = f"http://127.0.0.1:{port}"
    server = Server(name, "ref", base, base, db_url, artifacts, log_path)
    server.proc = _spawn(argv, env, log_path)
    return server


def _forge_env(db_url: str, storage: Path) -> dict:
    env = _base_env()
    env.update(
        DATABASE_URL=db_url,
        DEMO_TOKEN=OUR_TOKEN,
        DEMO_OUTSIDER_TOKEN="glpat-bench-outsider-token-000000000002",
        DEMO_PASSWORD="bench-password",
        SECRET_KEY="bench-secret-key",
        GL_ML_TRACKING_STORAGE_PATH=str(storage),
    )
    return env


def start_ours(name: str, db_url: str, work: Path, workers: int = 4, threads: int = 4) -> Server:
    """The example forge in its production setup: migrate, seed, then gunicorn."""
    port = free_port()
    storage = work / f"{name}-storage"
    storage.mkdir(parents=True, exist_ok=True)
    log_path = work / f"{name}.log"
    env = _forge_env(db_url, storage)
    flask = [str(BIN / "flask"), "--app", "examples.host_app"]
    with open(log_path, "ab") as log:
        for args in (["forge", "init-db"], ["ml-tracking", "db", "upgrade"], ["forge", "seed"]):
            subprocess.run(flask + args, cwd=str(ROOT), env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
    # examples/gunicorn_conf.py: the README's production settings (gthread, keep-alive,
    # a longer request line, and whole-buffer body reads for uploads).
    argv = [str(BIN / "gunicorn"), "-c", str(ROOT / "examples" / "gunicorn_conf.py"), "-w", str(workers),
            "--threads", str(threads), "-b", f"127.0.0.1:{port}", "examples.host_app:app"]
    base = f"http://127.0.0.1:{port}"
    server = Server(name, "ours", base, f"{base}/api/v4/projects/{OUR_PROJECT_ID}/ml/mlflow", db_url, storage, log_path)
    server.proc = _spawn(argv, env, log_path)
    return server


def wait_ready(server: Server, timeout: float = 240.0) -> None:
    """Poll until the server answers a real API call (not just its socket)."""
    url = server.tracking_uri + "/api/2.0/mlflow/experiments/search"
    headers = {"Authorization": f"Bearer {OUR_TOKEN}"}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode}; see {server.log_path}")
        try:
            resp = requests.get(url, params={"max_results": 1}, headers=headers, timeout=5)
            if resp.status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{server.name} did not become ready in {timeout:.0f}s; see {server.log_path}")


# --------------------------------------------------------------------------- memory
class MemorySampler(threading.Thread):
    """Samples the servers' RSS every ``interval`` seconds; ``mark()`` starts a
    new window, ``window(name)`` gives (RSS at mark, peak since mark) in bytes."""

    def __init__(self, servers: list[Server], interval: float = 0.05):
        super().__init__(name="rss-sampler", daemon=True)
        self.servers = servers
        self.interval = interval
        self._lock = threading.Lock()
        self._base: dict[str, int] = {}
        self._peak: dict[str, int] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self._sample()
            self._halt.wait(self.interval)

    def _sample(self) -> dict[str, int]:
        values = {s.name: s.rss() for s in self.servers}
        with self._lock:
            for name, value in values.items():
                self._peak[name] = max(self._peak.get(name, 0), value)
        return values

    def mark(self) -> None:
        values = {s.name: s.rss() for s in self.servers}
        with self._lock:
            self._base = dict(values)
            self._peak = dict(values)

    def window(self, name: str) -> tuple[int, int]:
        self._sample()
        with self._lock:
            return self._base.get(name, 0), self._peak.get(name, 0)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)
