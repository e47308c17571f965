"""Running a script with the MLflow 2.x client of its own virtualenv against a live forge.

Which Python: ``GLML_MLFLOW2_PYTHON`` (``make test`` sets it to the venv ``make mlflow2``
builds), else ``.venv-mlflow2/bin/python`` in the repository. A test skips only when neither
is given; a ``GLML_MLFLOW2_PYTHON`` that names no file fails, so CI cannot skip by mistake.
The scripts (``tests/support/mlflow2_*script.py``) use only the environment, as a user's
training script would, and print their facts as JSON on their last line of output.
"""
from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from . import ROOT

ENV_VAR = "GLML_MLFLOW2_PYTHON"
DEFAULT_PYTHON = os.path.join(ROOT, ".venv-mlflow2", "bin", "python")


def mlflow2_python() -> str:
    """The 2.x client's interpreter; skips the test when there is none to use."""
    named = os.environ.get(ENV_VAR)
    if named:
        if not os.path.exists(named):
            pytest.fail(f"{ENV_VAR}={named} names no file (`make mlflow2` builds the venv)")
        return named
    if not os.path.exists(DEFAULT_PYTHON):
        pytest.skip(f"{ENV_VAR} is not set and there is no {DEFAULT_PYTHON} (`make test` builds and sets it)")
    return DEFAULT_PYTHON


def run_script(forge: Any, script: str, *args: str, project_ref: Any = 1) -> dict:
    """Run ``tests/support/<script>`` with the 2.x client against ``forge``; its facts."""
    env = dict(os.environ, MLFLOW_TRACKING_URI=forge.tracking_uri(project_ref), MLFLOW_TRACKING_TOKEN=forge.owner_token)
    path = os.path.join(ROOT, "tests", "support", script)
    out = subprocess.run([mlflow2_python(), path, *args], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])
