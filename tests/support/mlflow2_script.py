"""Run by an MLflow 2.x client in its own virtualenv (see tests/test_mlflow2_client.py).
Uses only the environment, as a user's training script would; prints JSON facts."""
import json
import os
import tempfile

import mlflow
from mlflow.tracking import MlflowClient

mlflow.set_experiment("mlflow2-smoke")
with mlflow.start_run(run_name="v2") as run:
    mlflow.log_param("lr", 0.01)
    mlflow.log_metrics({"loss": 0.5}, step=0)
    mlflow.log_metrics({"loss": 0.25}, step=1)
    mlflow.set_tag("client", "2.x")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "notes.txt")
        with open(path, "w") as fh:
            fh.write("hello from 2.x")
        try:
            mlflow.log_artifact(path)
            artifacts = [a.path for a in MlflowClient().list_artifacts(run.info.run_id)]
        except Exception as exc:  # reported, not hidden: the test decides
            artifacts = ["error: " + type(exc).__name__ + ": " + str(exc)[:200]]
client = MlflowClient()
fetched = client.get_run(run.info.run_id)
found = client.search_runs([fetched.info.experiment_id], "metrics.loss < 0.3")
print(json.dumps({
    "version": mlflow.__version__,
    "status": fetched.info.status,
    "params": fetched.data.params,
    "metrics": fetched.data.metrics,
    "history": [m.value for m in client.get_metric_history(run.info.run_id, "loss")],
    "found": [r.info.run_id for r in found],
    "run_id": run.info.run_id,
    "artifacts": artifacts,
}))
