"""gunicorn settings for the example forge in production:

    gunicorn -c examples/gunicorn_conf.py examples.host_app:app

Workers, threads and the bind address come from the command line or the usual
``GUNICORN_CMD_ARGS``; this file sets what a forge serving MLflow clients needs
beyond gunicorn's defaults, and tunes one slow path of gunicorn for artifact uploads.
"""
from __future__ import annotations

import gc
import io
import os

worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# The MLflow client keeps its connection open between calls: keep it long enough to
# be reused between consecutive log_metric calls.
keepalive = 5
# MLflow's UI asks get-history-bulk-interval for 100 run ids in one GET (~4.3 kB of
# query string), past gunicorn's default 4094-byte request-line limit.
limit_request_line = 8190

# gunicorn >= 25 opens a control socket at one path per user ($XDG_RUNTIME_DIR/gunicorn.ctl
# or ~/.gunicorn/gunicorn.ctl): several instances on one host would take it from each
# other. Off, unless GLML_GUNICORN_CONTROL_SOCKET gives this instance a path of its own
# (older gunicorns ignore both settings).
if os.environ.get("GLML_GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GLML_GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True

# gunicorn reads a request body for ``wsgi.input.read(n)`` 1 KiB at a time
# (``Body.read`` calls ``reader.read(1024)`` in a loop, each copying what is left of an
# 8 KiB socket read back into a buffer): a large artifact upload spent more time there
# than in hashing and writing the file (profiled: 44% of the worker's time, uploads at
# 140 MB/s). The two settings below let one ``read(n)`` take up to n bytes from the
# body reader at once, from socket reads of 64 KiB. Set GLML_GUNICORN_FAST_BODY=0 to
# keep gunicorn's own reader.
SOCKET_READ_SIZE = 64 * 1024


def _fast_body_read(self, size=None):
    """``gunicorn.http.body.Body.read`` without the 1 KiB steps: same contract
    (at most ``size`` bytes, fewer only at the end of the body)."""
    size = self.getsize(size)
    if size == 0:
        return b""
    held = self.buf.getvalue()
    if size <= len(held):
        self.buf = io.BytesIO()
        self.buf.write(held[size:])
        return held[:size]
    self.buf = io.BytesIO()
    parts, have = [held], len(held)
    while have < size:
        data = self.reader.read(min(size - have, 4 * 1024 * 1024))
        if not data:
            break
        parts.append(data)
        have += len(data)
    return b"".join(parts)


def _freeze_startup_objects(worker) -> None:
    """Move everything the app made while loading out of the garbage collector's
    reach. Otherwise every full collection walks those objects again, and a large
    response (100 runs of chart points, a 1,000-run search page) allocates enough
    to trigger several: a third of the time of such a request here."""
    gc.freeze()
    worker.log.debug("%d startup objects frozen out of garbage collection", gc.get_freeze_count())


def _speed_up_body_reads(worker) -> None:
    from gunicorn.http import body, unreader

    body.Body.read = _fast_body_read
    unreader.SocketUnreader.__init__.__defaults__ = (SOCKET_READ_SIZE,)
    worker.log.debug("request bodies read in steps of up to %d bytes", SOCKET_READ_SIZE)


def post_worker_init(worker) -> None:
    # Runs in each worker once the app is loaded.
    if os.environ.get("GLML_GUNICORN_GC_FREEZE", "1") != "0":
        _freeze_startup_objects(worker)
    if os.environ.get("GLML_GUNICORN_FAST_BODY", "1") != "0":
        _speed_up_body_reads(worker)
