"""What the pages let a writer edit, as MLflow's UI does: a run's name, note and
tags; an experiment's description and tags. Each is the same service call the
MLflow API makes (``runs/update``, ``runs/set-tag``, ``experiments/set-experiment-tag``...),
so the same validation, limits and signals apply; the rules here are only the
pages' own: a note or description is the ``mlflow.note.content`` tag (an empty
one removes the tag), and tags MLflow reserves (``mlflow.*``) are not edited as
plain tags."""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from ..errors import InvalidParameter, ResourceDoesNotExist
from ..models import Experiment, Run
from . import experiments as exp_service
from . import run_logging
from . import runs as run_service

NOTE_TAG = "mlflow.note.content"
RESERVED_PREFIX = "mlflow."


def _text(value: Any, what: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidParameter(f"The {what} must be text.")
    return value.replace("\r\n", "\n")


def _user_tag_key(key: Any) -> str:
    key = _text(key, "tag name").strip()
    if not key:
        raise InvalidParameter("Give the tag a name.")
    if key.startswith(RESERVED_PREFIX):
        raise InvalidParameter(f"Tags starting with '{RESERVED_PREFIX}' are set by MLflow and cannot be edited here.")
    return key


def rename_run(session: Session, project_id: str, run: Run, name: Any, *, project: Any = None) -> Run:
    name = _text(name, "run name").strip()
    if not name:
        raise InvalidParameter("Give the run a name.")
    # runs/update with only a name: the status is untouched (no run_finished signal).
    return run_service.update_run(session, project_id, run.run_uuid, run_name=name, project=project)


def _store_or_clear(text: str, store: Any, clear: Any) -> bool:
    """Store a Markdown text kept in a tag, or remove the tag when the text is blank.
    True when a text remains."""
    if text.strip():
        store(text)
        return True
    try:
        clear()
    except ResourceDoesNotExist:
        pass
    return False


def set_run_note(session: Session, project_id: str, run: Run, note: Any) -> bool:
    """Store the note (Markdown); an empty note removes it. True when a note remains."""
    return _store_or_clear(
        _text(note, "note"),
        lambda text: run_logging.set_tag(session, project_id, run.run_uuid, NOTE_TAG, text),
        lambda: run_logging.delete_tag(session, project_id, run.run_uuid, NOTE_TAG))


def set_run_tag(session: Session, project_id: str, run: Run, key: Any, value: Any, *, project: Any = None) -> str:
    key = _user_tag_key(key)
    run_logging.set_tag(session, project_id, run.run_uuid, key, _text(value, "tag value"), project=project)
    return key


def delete_run_tag(session: Session, project_id: str, run: Run, key: Any) -> str:
    key = _user_tag_key(key)
    run_logging.delete_tag(session, project_id, run.run_uuid, key)
    return key


def set_experiment_description(session: Session, project_id: str, experiment: Experiment, text: Any) -> bool:
    """The description is the experiment's ``mlflow.note.content`` tag, as in MLflow."""
    return _store_or_clear(
        _text(text, "description"),
        lambda value: exp_service.set_experiment_tag(session, project_id, experiment.iid, NOTE_TAG, value),
        lambda: exp_service.delete_experiment_tag(session, project_id, experiment.iid, NOTE_TAG))


def set_experiment_tag(session: Session, project_id: str, experiment: Experiment, key: Any, value: Any) -> str:
    key = _user_tag_key(key)
    exp_service.set_experiment_tag(session, project_id, experiment.iid, key, _text(value, "tag value"))
    return key


def delete_experiment_tag(session: Session, project_id: str, experiment: Experiment, key: Any) -> str:
    key = _user_tag_key(key)
    exp_service.delete_experiment_tag(session, project_id, experiment.iid, key)
    return key
