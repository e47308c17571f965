"""A run's life: create, update (status, end, name), soft delete and restore. What
is logged to a run is ``run_logging`` (params, tags, metrics, batches) and
``run_inputs`` (datasets); finding one is a lookup (``lookups``)."""
from __future__ import annotations

import uuid
from typing import Any, Optional, Sequence

from sqlalchemy.orm import Session

from .. import signals
from ..errors import InvalidParameter
from ..models import ACTIVE, DELETED, Run
from . import validation as v
from .ci_link import ci_job_of_new_run
from .common import next_iid, now_ms, user_key
from .constants import PARENT_RUN_TAG, RUN_NAME_TAG, RUN_STATUSES, TERMINAL_STATUSES, USER_TAG
from .lookups import find_run_by_uuid, get_active_experiment, get_active_run, get_run
from .names import random_run_name
from .run_logging import insert_new_run_tags, upsert_run_tags, validated_tags


def _parse_status(status: Any) -> str:
    if isinstance(status, int) and 1 <= status <= 5:
        return RUN_STATUSES[status - 1]
    if not isinstance(status, str) or status.upper() not in RUN_STATUSES:
        raise InvalidParameter(f"Invalid value '{status}' for parameter 'status': expected one of {', '.join(RUN_STATUSES)}")
    return status.upper()


def create_run(
    session: Session,
    project_id: str,
    experiment_id: Any,
    *,
    project: Any = None,
    caller: Any = None,
    user_id: Optional[str] = None,
    start_time: Any = None,
    tags: Sequence[tuple[Any, Any]] = (),
    run_name: Any = None,
) -> Run:
    """``project`` and ``caller`` are the host's project and user (None outside a
    request): the run's author, its CI job (named by the ``gitlab.CI_JOB_ID`` tag, or
    the caller's CI job token), and what ``signals.run_created`` subscribers get once
    the transaction commits."""
    experiment = get_active_experiment(session, project_id, experiment_id, with_tags=False)
    tag_map = validated_tags(tags)
    if run_name is not None and not isinstance(run_name, str):
        raise InvalidParameter("Invalid value for parameter 'run_name': expected a string.")
    tag_name = tag_map.get(RUN_NAME_TAG)
    if run_name and tag_name and run_name != tag_name:
        raise InvalidParameter(
            f"Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values "
            f"(run_name='{run_name}', mlflow.runName='{tag_name}')."
        )
    name = run_name or tag_name or random_run_name()
    if len(name) > v.MAX_ENTITY_KEY_LENGTH:
        raise InvalidParameter(f"Run name exceeds the maximum length of {v.MAX_ENTITY_KEY_LENGTH} characters.")
    tag_map[RUN_NAME_TAG] = name
    start = v.parse_int(start_time, "start_time", default=None)
    if start is None:
        start = now_ms()
    parent = find_run_by_uuid(session, project_id, tag_map.get(PARENT_RUN_TAG))
    run = Run(
        run_uuid=uuid.uuid4().hex,
        project_id=project_id,
        experiment_id=experiment.id,
        experiment=experiment,  # already loaded: spares a query when the run is rendered
        iid=next_iid(session, project_id, "run"),
        name=name,
        status="RUNNING",
        start_time=start,
        lifecycle_stage=ACTIVE,
        user_id=(user_id if isinstance(user_id, str) and user_id else tag_map.get(USER_TAG)),
        author_id=user_key(caller),
        # Known before the insert: no UPDATE of the new row. No project, no host to ask.
        ci_job_id=ci_job_of_new_run(project, tag_map, caller) if project is not None else None,
        parent_id=parent.id if parent is not None else None,
    )
    session.add(run)
    session.flush()
    insert_new_run_tags(session, run.id, tag_map)
    experiment.last_update_time = now_ms()
    signals.send_after_commit(session, signals.run_created, project=project, run=run)
    return run


def update_run(
    session: Session, project_id: str, run_id: Any, *, status: Any = None, end_time: Any = None, run_name: Any = None,
    project: Any = None,
) -> Run:
    """A run that this call moves into a terminal status (FINISHED, FAILED, KILLED) is
    announced to ``signals.run_finished`` subscribers, with ``project``, once the
    transaction commits; a rename, an end time alone or a repeated status is not."""
    run = get_active_run(session, project_id, run_id)
    finished = False
    if status is not None and status != "":
        new_status = _parse_status(status)
        # Announced once, when the run reaches a terminal status: not for a rename or
        # an end time alone, nor for the same terminal status sent again.
        finished = new_status in TERMINAL_STATUSES and new_status != run.status
        run.status = new_status
    end = v.parse_int(end_time, "end_time")
    if end is not None:
        run.end_time = end
    if run_name:
        if not isinstance(run_name, str) or len(run_name) > v.MAX_ENTITY_KEY_LENGTH:
            raise InvalidParameter("Invalid value for parameter 'run_name'.")
        run.name = run_name
        upsert_run_tags(session, run.id, {RUN_NAME_TAG: run_name})
    if finished:
        signals.send_after_commit(session, signals.run_finished, project=project, run=run)
    return run


def delete_run(session: Session, project_id: str, run_id: Any) -> Run:
    run = get_run(session, project_id, run_id)
    run.lifecycle_stage = DELETED
    run.deleted_time = now_ms()
    return run


def restore_run(session: Session, project_id: str, run_id: Any) -> Run:
    run = get_run(session, project_id, run_id)
    if run.experiment.lifecycle_stage != ACTIVE:
        raise InvalidParameter(f"Cannot restore run {run.run_uuid}: its experiment is deleted.")
    run.lifecycle_stage = ACTIVE
    run.deleted_time = None
    return run
