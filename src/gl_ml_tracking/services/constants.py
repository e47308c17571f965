"""Names MLflow's client and GitLab give a meaning to, shared by several services
and views. A leaf module: it imports nothing, so anything may import it."""
from __future__ import annotations

# A run's status; MLflow's proto numbers them 1..5 in this order.
RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
# Statuses of a run that has ended: reaching one sends ``signals.run_finished``.
TERMINAL_STATUSES = ("FINISHED", "FAILED", "KILLED")

# Run tags the client sets and the server acts on.
RUN_NAME_TAG = "mlflow.runName"
PARENT_RUN_TAG = "mlflow.parentRunId"
USER_TAG = "mlflow.user"
# GitLab's convention: the CI job that made the run (links the run to the job).
CI_JOB_TAG = "gitlab.CI_JOB_ID"
