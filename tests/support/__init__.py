"""What the tests run against, not tests themselves: live forges (``liveserver``: in a
thread; ``procserver``: gunicorn processes; ``forge_process``: a process of its own), fresh
databases (``livedb``), a private PostgreSQL cluster a test may crash (``private_pg``), a
moto S3 server (``s3_server``), the documented backup steps and a full read-back through the
client (``backups``), the UI tests' data (``ui_seed``) and the MLflow 2.x client run in its own
virtualenv (``mlflow2``) with the scripts it runs (``mlflow2_script``, ``mlflow2_traces_script``).

Import them as ``tests.support.<module>``. Under pytest the repository root is on
``sys.path`` (``pythonpath = .`` in setup.cfg); a child process does not inherit that, so
whatever starts one that imports ``examples`` or ``tests`` gives it :func:`child_env`.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def child_env(**overrides: str) -> dict:
    """An environment for a child Python (flask, gunicorn, a helper script): ``os.environ``
    with ``overrides``, and the repository root first on ``PYTHONPATH``, so that the child
    imports ``examples`` and ``tests.support`` as the tests do."""
    env = dict(os.environ, **overrides)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    return env


@contextmanager
def environ_set(**values: str) -> Iterator[None]:
    """``os.environ`` with ``values`` while the block runs, as it was before afterwards."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
