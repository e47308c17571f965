"""The production artifact: a wheel builds from the repository and installs in a clean
virtualenv with the production extras (``pip install "<wheel>[postgres,s3,server]"``,
from the configured index); there it runs the shipped migrations and serves its
templates and static files, with nothing of the repository on its path."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.slow

APP = '''
import os
from flask import Flask
from gl_ml_tracking import MLTracking

app = Flask(__name__)
app.config["GL_ML_TRACKING_DATABASE_URI"] = os.environ["GLML_WHEEL_DB"]
app.config["SECRET_KEY"] = "wheel-check"
MLTracking(app)
'''

CHECK = '''
import gl_ml_tracking, psycopg, boto3, gunicorn
from app import app
print(gl_ml_tracking.__file__)
app.jinja_env.get_template("gl_ml_tracking/_layout.html")
assert app.test_client().get("/-/gl-ml-tracking/static/ui.css").status_code == 200
'''


def _run(args, cwd, env=None, timeout=900):
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_wheel_installs_and_runs_in_a_clean_virtualenv(tmp_path):
    # Nothing of the repository or of the test venv on the path: a clean machine.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["GLML_WHEEL_DB"] = f"sqlite:///{tmp_path / 'wheel.db'}"
    # Built from a copy: the build leaves an egg-info next to the sources.
    source = tmp_path / "source"
    shutil.copytree(os.path.join(ROOT, "src"), source / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in ("pyproject.toml", "setup.cfg", "README.md"):
        shutil.copy(os.path.join(ROOT, name), source / name)
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(source)],
         cwd=str(tmp_path), env=env)
    (wheel,) = glob.glob(str(tmp_path / "dist" / "gl_ml_tracking-*.whl"))
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=str(tmp_path), env=env)
    _run([str(venv / "bin" / "pip"), "install", "-q", f"{wheel}[postgres,s3,server]"], cwd=str(tmp_path), env=env)
    (tmp_path / "app.py").write_text(APP)
    _run([str(venv / "bin" / "flask"), "--app", "app", "ml-tracking", "db", "upgrade"], cwd=str(tmp_path), env=env)
    where = _run([str(venv / "bin" / "python"), "-c", CHECK], cwd=str(tmp_path), env=env)
    assert where.strip().startswith(str(venv))  # the installed wheel, not the repository
    import sqlite3

    with sqlite3.connect(tmp_path / "wheel.db") as db:
        assert db.execute("SELECT version_num FROM glml_alembic_version").fetchone()[0] >= "0003"
