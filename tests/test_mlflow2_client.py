"""Many users still run MLflow 2.x: a 2.x client, in its own virtualenv (made
by `make test`), logs and searches against the live forge."""
from __future__ import annotations

from tests.support.mlflow2 import run_script


def test_mlflow2_client_smoke(forge):
    facts = run_script(forge, "mlflow2_script.py")
    assert facts["version"].startswith("2.")
    assert facts["status"] == "FINISHED"
    assert facts["params"] == {"lr": "0.01"} and facts["metrics"] == {"loss": 0.25}
    assert sorted(facts["history"]) == [0.25, 0.5]
    assert facts["found"] == [facts["run_id"]]
    assert facts["artifacts"] == ["notes.txt"]
