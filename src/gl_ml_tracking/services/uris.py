"""Where artifacts of runs and experiments live, as ``mlflow-artifacts:/`` URIs.

The client resolves ``mlflow-artifacts:/<X>`` to
``<tracking URI>/api/2.0/mlflow-artifacts/artifacts/<X>``; our artifacts proxy
maps ``<X> = ml_experiment_<experiment iid>/<run iid>/<path>`` straight onto
the generic package ``ml_experiment_<experiment iid>``, version ``<run iid>``.
"""
from __future__ import annotations


def experiment_package_name(experiment_iid: int) -> str:
    return f"ml_experiment_{experiment_iid}"


def experiment_artifact_location(experiment_iid: int) -> str:
    return f"mlflow-artifacts:/{experiment_package_name(experiment_iid)}"


def run_artifact_uri(experiment_iid: int, run_iid: int) -> str:
    return f"{experiment_artifact_location(experiment_iid)}/{run_iid}"
