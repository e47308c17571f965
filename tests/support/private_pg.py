"""A throwaway PostgreSQL cluster of a test's own: ``initdb`` into a temporary directory,
the postmaster on a free loopback port, and a crash on demand (SIGKILL of the postmaster),
so a test can take PostgreSQL away and bring it back without touching the machine's shared
server, which other tests use.

PostgreSQL refuses to run as root: under root the cluster belongs to the ``postgres`` OS
user (its directory is chowned to it and the binaries run with ``Popen(user=...)``, so the
process we hold *is* the postmaster). The binaries are found in ``GLML_PG_BIN``, else in
``pg_config --bindir``, else in the newest ``/usr/lib/postgresql/<n>/bin``.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Optional

import psutil

from tests.support.procserver import free_port


def find_pg_bin() -> Optional[str]:
    """The directory holding ``initdb`` and ``postgres``, or None."""
    candidates = [os.environ.get("GLML_PG_BIN", "")]
    if shutil.which("pg_config"):
        done = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates.append(done.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
    for directory in filter(None, candidates):
        if all(os.access(os.path.join(directory, name), os.X_OK) for name in ("initdb", "postgres")):
            return directory
    return None


def why_unavailable() -> Optional[str]:
    """Why no private cluster can be made here (a skip reason), or None."""
    if find_pg_bin() is None:
        return "PostgreSQL server binaries (initdb, postgres) not found: set GLML_PG_BIN"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' OS user to run PostgreSQL as"
    return None


class PrivateCluster:
    """``initdb`` on construction; :meth:`start`, :meth:`crash` (the postmaster),
    :meth:`kill_backend` (PostgreSQL restarts itself), :meth:`stop`, :meth:`remove`."""

    def __init__(self) -> None:
        self.bin = find_pg_bin()
        self.root = tempfile.mkdtemp(prefix="glml-pg-")
        self.data = os.path.join(self.root, "data")
        self.log_path = os.path.join(self.root, "postgres.log")
        self.port = free_port()
        self.process: Optional[subprocess.Popen] = None
        self.run_as: dict = {}
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self.run_as = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
        done = subprocess.run(
            [os.path.join(self.bin, "initdb"), "-D", self.data, "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--locale=C", "--no-sync"],
            cwd=self.root, capture_output=True, text=True, timeout=120, **self.run_as)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{done.stdout}\n{done.stderr}")

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` on this cluster."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def start(self, timeout: float = 60) -> "PrivateCluster":
        """Start the postmaster (on the same port and data after a crash: WAL recovery runs)
        and return once it accepts connections."""
        log = open(self.log_path, "ab")
        # fsync off: only processes die in these tests, never the machine, so the OS still
        # holds every write; synchronous_commit stays on, so an acknowledged commit is in WAL.
        self.process = subprocess.Popen(
            [os.path.join(self.bin, "postgres"), "-D", self.data, "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}",
             "-c", "fsync=off", "-c", "max_connections=60", "-c", "shared_buffers=32MB"],
            cwd=self.root, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, **self.run_as)
        log.close()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Poll until a connection succeeds (a condition, not a guess)."""
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with psycopg.connect(self.dsn(), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"postgres not ready after {timeout}s:\n{self.log_tail()}") from None
                time.sleep(0.05)  # poll interval between connection attempts

    def crash(self, timeout: float = 30) -> dict:
        """SIGKILL the postmaster, as the OOM killer would. Its backends notice the
        postmaster's death and exit on their own; any still there after ``timeout`` are
        killed too (a new postmaster refuses to start while they hold shared memory).
        Returns how many backends there were and how many had to be killed."""
        postmaster = psutil.Process(self.process.pid)
        children = postmaster.children()
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=timeout)
        _gone, alive = psutil.wait_procs(children, timeout=timeout)
        for child in alive:
            child.kill()
        psutil.wait_procs(alive, timeout=timeout)
        return {"backends": len(children), "killed after the postmaster": len(alive)}

    def kill_backend(self, database: str) -> int:
        """SIGKILL one backend serving ``database``: PostgreSQL's own crash-restart follows
        (the postmaster ends every other backend, recovers from WAL and accepts connections
        again by itself). Returns the backend's pid."""
        backends = [p for p in psutil.Process(self.process.pid).children()
                    if f" {database} " in " ".join(p.cmdline()) + " "]
        assert backends, "no backend of the database to kill"
        backends[0].kill()
        return backends[0].pid

    def log_size(self) -> int:
        return os.path.getsize(self.log_path)

    def wait_log(self, text: str, offset: int, timeout: float = 60) -> None:
        """Wait until the server's log says ``text`` past ``offset``."""
        deadline = time.monotonic() + timeout
        while True:
            with open(self.log_path, "rb") as handle:
                handle.seek(offset)
                if text.encode() in handle.read():
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"postgres never logged {text!r}:\n{self.log_tail()}")
            time.sleep(0.05)  # poll interval of a condition

    def stop(self) -> None:
        """A fast shutdown (SIGINT), then SIGKILL if it hangs."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.crash()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_path, "rb") as handle:
                return b"\n".join(handle.read().splitlines()[-lines:]).decode("utf-8", "replace")
        except OSError:
            return ""
