"""Data for the charts panel and the logged-model / model-version pages, logged
with the real MLflow client: a sweep of runs with per-step ``loss`` and
``accuracy`` curves (one with NaN and infinite points), and a pyfunc model
logged with a signature and registered as a version."""
from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.support.ui_seed import mlflow_env, run_iid


@dataclass
class SweepSeed:
    experiment_iid: int = 0
    runs: list = field(default_factory=list)  # (iid, run_id, name, lr, final loss, final accuracy) in creation order
    nan_run_iid: int = 0
    model_id: str = ""
    model_run_iid: int = 0
    model_name: str = ""


try:  # the model class must be importable where the model is loaded
    import mlflow.pyfunc

    class EchoModel(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input
except ImportError:  # pragma: no cover - mlflow is a test dependency
    EchoModel = None  # type: ignore[assignment,misc]


def seed_sweep(forge: Any, runs: int = 8, steps: int = 50, project_ref: Any = 1) -> SweepSeed:
    from mlflow.entities import Metric, Param

    seed = SweepSeed()
    suffix = uuid.uuid4().hex[:6]
    with mlflow_env(forge, project_ref) as client:
        exp = client.create_experiment(f"sweep-{suffix}")
        seed.experiment_iid = int(exp)
        for i in range(runs):
            lr = round(0.001 * (i + 1), 4)
            final_loss = round(0.9 - 0.1 * i, 3)  # the last run has the lowest loss
            final_acc = round(0.5 + 0.05 * ((i * 3) % runs), 3)  # a different run has the best accuracy
            run = client.create_run(exp, run_name=f"trial-{i}")
            rid, ts = run.info.run_id, run.info.start_time
            metrics = []
            for s in range(steps):
                frac = s / (steps - 1)
                metrics.append(Metric("loss", final_loss + (1 - frac) * 1.5, ts + s, s))
                metrics.append(Metric("accuracy", final_acc * (0.5 + 0.5 * frac), ts + s, s))
            client.log_batch(rid, metrics=metrics, params=[Param("lr", str(lr)), Param("layers", str(2 + i % 3)),
                                                           Param("optimizer", "adam" if i % 2 else "sgd")])
            client.set_terminated(rid)
            seed.runs.append((run_iid(forge, rid), rid, f"trial-{i}", lr, final_loss, final_acc))
        # NaN and infinities inside a curve: drawn around, never a broken page.
        odd = client.create_run(exp, run_name="odd-values")
        oid, ts = odd.info.run_id, odd.info.start_time
        values = [1.0, 0.8, math.nan, 0.6, math.inf, 0.5, -math.inf, 0.4]
        client.log_batch(oid, metrics=[Metric("loss", v, ts + s, s) for s, v in enumerate(values)]
                         + [Metric("accuracy", math.inf, ts, 0), Metric("accuracy", 0.3, ts + 1, 1),
                            Metric("zz_latest_inf", math.inf, ts, 0)])
        client.set_terminated(oid)
        seed.nan_run_iid = run_iid(forge, oid)
    return seed


def log_signature_model(forge: Any, experiment_iid: int, project_ref: Any = 1) -> tuple[str, int]:
    """A pyfunc model with a column signature, logged from a new run: (model_id, run iid)."""
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    signature = ModelSignature(
        inputs=Schema([ColSpec("double", "sepal_length"), ColSpec("double", "sepal_width"),
                       ColSpec("string", "<b>colour</b>", required=False)]),
        outputs=Schema([ColSpec("long", "label")]),
    )
    with mlflow_env(forge, project_ref):
        with mlflow.start_run(experiment_id=str(experiment_iid), run_name="with-model") as run:
            info = mlflow.pyfunc.log_model(name="iris-model", python_model=EchoModel(), signature=signature,
                                           pip_requirements=["scikit-learn==1.5.0"], params={"alpha": "0.5"})
            mlflow.log_metric("val_loss", 0.25, model_id=info.model_id)
        return info.model_id, run_iid(forge, run.info.run_id)
