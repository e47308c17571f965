"""Many users still run MLflow 2.x: a 2.x client, in its own virtualenv (made
by `make test`), logs and searches against the live forge."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

MLFLOW2_PYTHON = os.environ.get("GLML_MLFLOW2_PYTHON") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".venv-mlflow2", "bin", "python"
)


def test_mlflow2_client_smoke(forge):
    if not os.path.exists(MLFLOW2_PYTHON):
        pytest.skip(f"no MLflow 2.x virtualenv at {MLFLOW2_PYTHON} (`make test` creates it)")
    env = dict(os.environ, MLFLOW_TRACKING_URI=forge.tracking_uri(1), MLFLOW_TRACKING_TOKEN=forge.owner_token)
    script = os.path.join(os.path.dirname(__file__), "support", "mlflow2_script.py")
    out = subprocess.run([MLFLOW2_PYTHON, script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    facts = json.loads(out.stdout.strip().splitlines()[-1])
    assert facts["version"].startswith("2.")
    assert facts["status"] == "FINISHED"
    assert facts["params"] == {"lr": "0.01"} and facts["metrics"] == {"loss": 0.25}
    assert sorted(facts["history"]) == [0.25, 0.5]
    assert facts["found"] == [facts["run_id"]]
    assert facts["artifacts"] == ["notes.txt"]
