"""Registered scorers (``/api/3.0/mlflow/scorers/*``): a name in an experiment of the
project, with numbered versions of its serialized form; and the online-scoring
configuration calls, answered as MLflow's server answers them when it has no AI
gateway endpoints (the only scorers it runs online are gateway-backed).

We store scorers and never run them. As MLflow's server, we refuse custom
(``@scorer``) scorers, whose serialized form carries Python source that every client
listing them would execute.
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Optional

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ..errors import InvalidParameter, ResourceDoesNotExist
from ..models import Experiment, Scorer, ScorerVersion
from . import lookups
from .common import dialect_insert, now_ms

__all__ = ["CUSTOM_SCORER_REFUSED", "ScorerEntry", "register_scorer", "list_scorers", "list_versions",
           "get_scorer", "delete_scorer", "online_configs", "upsert_online_config", "delete_experiment_scorers"]

CUSTOM_SCORER_REFUSED = (
    "Custom scorer registration (using @scorer decorator) is disabled by default "
    "outside of Databricks tracking environments due to security concerns. "
    "Custom scorers require arbitrary code execution during deserialization.\n\n"
    "To use custom scorers:\n"
    "1. Configure MLflow to use a Databricks tracking URI, or\n"
    "2. Manage your custom scorer code in a source code repository "
    "(e.g., GitHub) and import it directly, or\n"
    "3. On a self-managed MLflow server (or local environment) that you trust to run the "
    "scorer's code, set the MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS environment variable to true, or\n"
    "4. Use built-in scorers or make_judge() scorers instead."
)
MAX_NAME_LENGTH = 256
_MODEL_HOLDERS = ("instructions_judge_pydantic_data", "builtin_scorer_pydantic_data", "third_party_scorer_data")


@dataclass
class ScorerEntry:
    """One version of a scorer, with what its JSON needs."""

    experiment_iid: int
    name: str
    scorer_id: str
    version: int
    serialized_scorer: str
    creation_time: int


def _has_call_source(obj: Any) -> bool:
    if isinstance(obj, dict):
        return obj.get("call_source") is not None or any(_has_call_source(v) for v in obj.values())
    if isinstance(obj, list):
        return any(_has_call_source(item) for item in obj)
    return False


def _model(data: dict) -> Optional[Any]:
    for holder in _MODEL_HOLDERS:
        if isinstance(data.get(holder), dict):
            return data[holder].get("model")
    memory = data.get("memory_augmented_judge_data")
    if isinstance(memory, dict) and isinstance(memory.get("base_judge"), dict):
        return _model(memory["base_judge"])
    return None


def _uses_gateway(model: Any) -> bool:
    return isinstance(model, str) and model.split(":", 1)[0] == "gateway" and model.startswith("gateway:/")


def _name(name: Any) -> str:
    if name is None or name == "":
        raise InvalidParameter("Missing value for required parameter 'name'.")
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameter("Scorer name cannot be empty or contain only whitespace.")
    if "\x00" in name:
        raise InvalidParameter("Invalid value for the scorer name: it must not contain NUL characters.")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidParameter(f"Scorer name '{name[:40]}...' exceeds the maximum length of {MAX_NAME_LENGTH}")
    return name


def _parse(serialized: Any) -> dict:
    if serialized is None or serialized == "":
        raise InvalidParameter("Missing value for required parameter 'serialized_scorer'.")
    try:
        data = json.loads(serialized) if isinstance(serialized, str) else None
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        raise InvalidParameter("serialized_scorer must be valid JSON")
    return data


def _active_experiment(session: Session, project_id: str, experiment_id: Any) -> Experiment:
    return lookups.get_active_experiment(session, project_id, experiment_id, with_tags=False)


def _find(session: Session, experiment: Experiment, name: str) -> Optional[Scorer]:
    return session.scalars(select(Scorer).where(Scorer.experiment_pk == experiment.id, Scorer.name == name)).one_or_none()


def _entry(experiment: Experiment, scorer: Scorer, version: ScorerVersion) -> ScorerEntry:
    return ScorerEntry(experiment.iid, scorer.name, scorer.scorer_id, version.version, version.serialized_scorer,
                       version.creation_time)


def register_scorer(session: Session, project_id: str, experiment_id: Any, name: Any,
                    serialized_scorer: Any) -> ScorerEntry:
    """A new version of the scorer ``name`` (version 1 makes the scorer)."""
    name = _name(name)
    data = _parse(serialized_scorer)
    if _has_call_source(data):
        raise InvalidParameter(CUSTOM_SCORER_REFUSED)
    experiment = _active_experiment(session, project_id, experiment_id)
    model = _model(data)
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise InvalidParameter("Scorer model cannot be empty or contain only whitespace.")
    if _uses_gateway(model):  # no AI gateway here: no endpoint of that name exists
        raise ResourceDoesNotExist(f"GatewayEndpoint not found ({model[len('gateway:/'):][:80]})")
    # Made if missing, then held (the INSERT takes SQLite's write lock, FOR UPDATE the row on
    # PostgreSQL): concurrent registrations of one name get versions one after the other.
    session.execute(dialect_insert(session)(Scorer).values(
        scorer_id=str(uuid.uuid4()), project_id=project_id, experiment_pk=experiment.id, name=name,
    ).on_conflict_do_nothing(index_elements=[Scorer.experiment_pk, Scorer.name]))
    scorer = session.scalars(select(Scorer).where(Scorer.experiment_pk == experiment.id, Scorer.name == name)
                             .with_for_update()).one()
    latest = session.scalar(select(func.max(ScorerVersion.version)).where(ScorerVersion.scorer_pk == scorer.id))
    version = ScorerVersion(scorer_pk=scorer.id, version=(latest or 0) + 1, serialized_scorer=serialized_scorer,
                            creation_time=now_ms())
    session.add(version)
    session.flush()
    return _entry(experiment, scorer, version)


def _latest_versions(session: Session, experiments: list[Experiment]) -> list[ScorerEntry]:
    by_pk = {e.id: e for e in experiments}
    if not by_pk:
        return []
    latest = (select(ScorerVersion.scorer_pk, func.max(ScorerVersion.version).label("version"))
              .group_by(ScorerVersion.scorer_pk).subquery())
    rows = session.execute(
        select(Scorer, ScorerVersion)
        .join(latest, latest.c.scorer_pk == Scorer.id)
        .join(ScorerVersion, (ScorerVersion.scorer_pk == Scorer.id) & (ScorerVersion.version == latest.c.version))
        .where(Scorer.experiment_pk.in_(list(by_pk)))
    ).all()
    entries = [_entry(by_pk[s.experiment_pk], s, sv) for s, sv in rows]
    return sorted(entries, key=lambda e: (e.experiment_iid, e.name))


def list_scorers(session: Session, project_id: str, experiment_id: Any = None,
                 experiment_ids: Optional[list] = None) -> list[ScorerEntry]:
    """The latest version of each scorer of one experiment, of several, or of the project."""
    if experiment_id not in (None, "") and experiment_ids:
        raise InvalidParameter("Cannot specify both 'experiment_id' and 'experiment_ids'. Use 'experiment_ids' to "
                               "scope the query to multiple experiments, or 'experiment_id' to scope it to a "
                               "single experiment.")
    if experiment_id not in (None, ""):
        experiments = [_active_experiment(session, project_id, experiment_id)]
    else:
        query = select(Experiment).where(Experiment.project_id == project_id, Experiment.lifecycle_stage == "active")
        if experiment_ids:
            iids = [int(str(i)) for i in experiment_ids if str(i).isdecimal() and len(str(i)) <= 18]
            query = query.where(Experiment.iid.in_(iids))
        experiments = list(session.scalars(query))
    return _latest_versions(session, experiments)


def _scorer(session: Session, project_id: str, experiment_id: Any, name: Any) -> tuple[Experiment, Scorer]:
    name = _name(name)
    experiment = _active_experiment(session, project_id, experiment_id)
    scorer = _find(session, experiment, name)
    if scorer is None:
        raise ResourceDoesNotExist(f"Scorer with name '{name}' not found for experiment {experiment.iid}.")
    return experiment, scorer


def list_versions(session: Session, project_id: str, experiment_id: Any, name: Any) -> list[ScorerEntry]:
    experiment, scorer = _scorer(session, project_id, experiment_id, name)
    versions = session.scalars(select(ScorerVersion).where(ScorerVersion.scorer_pk == scorer.id)
                               .order_by(ScorerVersion.version))
    return [_entry(experiment, scorer, sv) for sv in versions]


def get_scorer(session: Session, project_id: str, experiment_id: Any, name: Any,
               version: Optional[int] = None) -> ScorerEntry:
    experiment, scorer = _scorer(session, project_id, experiment_id, name)
    query = select(ScorerVersion).where(ScorerVersion.scorer_pk == scorer.id)
    if version is not None:
        found = session.scalars(query.where(ScorerVersion.version == version)).one_or_none()
    else:
        found = session.scalars(query.order_by(ScorerVersion.version.desc()).limit(1)).first()
    if found is None:
        raise ResourceDoesNotExist(
            f"Scorer with name '{scorer.name}' and version {version} not found for experiment {experiment.iid}."
            if version is not None else f"Scorer with name '{scorer.name}' not found for experiment {experiment.iid}.")
    return _entry(experiment, scorer, found)


def delete_scorer(session: Session, project_id: str, experiment_id: Any, name: Any,
                  version: Optional[int] = None) -> None:
    """One version, or (no version) the scorer with all its versions."""
    experiment, scorer = _scorer(session, project_id, experiment_id, name)
    if version is None:
        session.execute(delete(Scorer).where(Scorer.id == scorer.id))
        return
    deleted = session.execute(delete(ScorerVersion).where(ScorerVersion.scorer_pk == scorer.id,
                                                          ScorerVersion.version == version)).rowcount
    if not deleted:
        raise ResourceDoesNotExist(
            f"Scorer with name '{scorer.name}' and version {version} not found for experiment {experiment.iid}.")


def delete_experiment_scorers(session: Session, experiment_pk: int) -> None:
    """An experiment deleted for good takes its scorers with it."""
    scorer_pks = select(Scorer.id).where(Scorer.experiment_pk == experiment_pk).scalar_subquery()
    session.execute(delete(ScorerVersion).where(ScorerVersion.scorer_pk.in_(scorer_pks))
                    .execution_options(synchronize_session=False))
    session.execute(delete(Scorer).where(Scorer.experiment_pk == experiment_pk).execution_options(synchronize_session=False))


def online_configs(session: Session, project_id: str, scorer_ids: list) -> list[dict]:
    """No scorer here runs online (none can use a gateway model), so none has a configuration."""
    if not scorer_ids:
        raise InvalidParameter("Missing value for required parameter 'scorer_ids'.")
    return []


def upsert_online_config(session: Session, project_id: str, experiment_id: Any, name: Any, sample_rate: Any,
                         filter_string: Any = None) -> dict:
    """MLflow's checks, in its order; then its refusal for a scorer without a gateway model."""
    if sample_rate is None:
        raise InvalidParameter("Missing value for required parameter 'sample_rate'.")
    if not 0.0 <= float(sample_rate) <= 1.0:
        raise InvalidParameter(f"sample_rate must be between 0.0 and 1.0, got {sample_rate}")
    entry = get_scorer(session, project_id, experiment_id, name)
    raise InvalidParameter(f"Scorer '{entry.name}' does not use a gateway model. Automatic evaluation is only "
                           "supported for scorers that use gateway models.")
