"""MLflow's fluent API keeps the tracking URI and the active experiment in process globals
(and the environment) for the rest of the process; so does the registry URI. Tests run many live servers in one
process, so a stopped server's URI or another project's experiment must not outlive it."""
from __future__ import annotations

import os


def forget_fluent_state(base_url: str | None = None) -> None:
    """End any active run and forget the fluent tracking URI and experiment; with
    ``base_url``, only when the tracking URI points at that server (it is stopping)."""
    import mlflow
    import mlflow.tracking.fluent as fluent

    if base_url is not None:
        if str(mlflow.get_registry_uri() or "").startswith(base_url):
            _forget_registry_uri()
        if not str(mlflow.get_tracking_uri() or "").startswith(base_url):
            return
    else:
        _forget_registry_uri()
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)  # also unsets MLFLOW_TRACKING_URI
    # MLflow has no public way to forget the active experiment; its own tests reset this global.
    fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    os.environ.pop("MLFLOW_EXPERIMENT_NAME", None)


def _forget_registry_uri() -> None:
    """A registry URI set with ``mlflow.set_registry_uri`` outlives the server too (every
    later ``MlflowClient()`` sends its registry calls there)."""
    import mlflow

    mlflow.set_registry_uri(None)
    os.environ.pop("MLFLOW_REGISTRY_URI", None)


def logged_on_both(sides: dict, log_all):
    """A generator for a module fixture of the differential tests: with the client's
    synchronous trace export (each span stored when it ends; the reference's async ingest
    sometimes lost a child span to its own start-trace race), ``log_all(uri)`` on every
    ``{side: tracking URI}``; yields ``{side: (uri, what log_all returned)}``, then puts
    the environment back."""
    from mlflow.tracing.provider import reset

    os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"
    reset()
    logged = {}
    try:
        for side, uri in sides.items():
            os.environ["MLFLOW_TRACKING_URI"] = uri
            logged[side] = (uri, log_all(uri))
        yield logged
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        os.environ.pop("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", None)
        reset()
