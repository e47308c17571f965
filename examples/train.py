"""A small training script to run in CI (or by hand) against the forge.

It reads only what GitLab CI and MLflow give it:

    MLFLOW_TRACKING_URI     the project's tracking URI
    MLFLOW_TRACKING_TOKEN   a token: in CI, the job token ($CI_JOB_TOKEN)
    GITLAB_CI, CI_JOB_ID    set by the runner in every CI job

Two ways to link the run to its CI job:

1. The job-token way (this project's extension): export
   MLFLOW_TRACKING_TOKEN=$CI_JOB_TOKEN. The server knows which job the token
   belongs to and links every run the job creates; no tag is needed.
2. The tag way (what GitLab requires, and works with any token): set the run
   tag ``gitlab.CI_JOB_ID`` to $CI_JOB_ID, as done below when GITLAB_CI is set.
   With a job token both ways agree; with a personal token only the tag links.

Try it without CI through the example forge, which plays the job:

    flask --app examples.host_app forge ci-job --project demo/mnist -- python examples/train.py

Knobs (environment): TRAIN_EPOCHS (default 10), TRAIN_LEARNING_RATE (0.01),
TRAIN_ALPHA (0.0001) and MLFLOW_EXPERIMENT_NAME (digits-sgd).
"""
from __future__ import annotations

import os

import mlflow
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, f1_score, log_loss
from sklearn.model_selection import train_test_split


def main() -> None:
    epochs = int(os.environ.get("TRAIN_EPOCHS", "10"))
    learning_rate = float(os.environ.get("TRAIN_LEARNING_RATE", "0.01"))
    alpha = float(os.environ.get("TRAIN_ALPHA", "0.0001"))
    mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", "digits-sgd"))

    digits = load_digits()  # 1,797 8x8 images, shipped with scikit-learn (no download)
    x = digits.data / 16.0
    x_train, x_test, y_train, y_test = train_test_split(x, digits.target, test_size=0.25, random_state=0)
    classes = np.unique(digits.target)
    model = SGDClassifier(loss="log_loss", learning_rate="constant", eta0=learning_rate, alpha=alpha, random_state=0)

    tags = {"model": "sgd-logistic"}
    if os.environ.get("GITLAB_CI"):
        # GitLab's way of linking a run to its CI job. Not needed with a job
        # token (MLFLOW_TRACKING_TOKEN=$CI_JOB_TOKEN), harmless with one.
        tags["gitlab.CI_JOB_ID"] = os.environ["CI_JOB_ID"]
    run_name = f"sgd-{os.environ.get('CI_COMMIT_REF_NAME', 'local')}"

    with mlflow.start_run(run_name=run_name, tags=tags) as run:
        mlflow.log_params({"epochs": epochs, "learning_rate": learning_rate, "alpha": alpha,
                           "train_size": len(x_train), "test_size": len(x_test)})
        for epoch in range(epochs):
            model.partial_fit(x_train, y_train, classes=classes)
            probabilities = model.predict_proba(x_test)
            predictions = classes[np.argmax(probabilities, axis=1)]
            mlflow.log_metrics({
                "train_loss": log_loss(y_train, model.predict_proba(x_train), labels=classes),
                "val_loss": log_loss(y_test, probabilities, labels=classes),
                "val_accuracy": accuracy_score(y_test, predictions),
                "val_f1": f1_score(y_test, predictions, average="macro"),
            }, step=epoch)
        print(f"run {run.info.run_id}: val_accuracy={accuracy_score(y_test, predictions):.4f}")


if __name__ == "__main__":
    main()
