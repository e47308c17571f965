"""GenAI evaluation datasets (``/api/3.0/mlflow/datasets/*``): create, get, search,
delete, tags and links to the project's experiments, with MLflow's semantics.

A dataset belongs to one project; its links point at experiments of that project
only. The records are :mod:`.dataset_records`' business.
"""
from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from sqlalchemy import delete, exists, func, literal, select, update
from sqlalchemy.orm import Session

from ..errors import InvalidParameter, ResourceDoesNotExist
from ..models import EvalDataset, EvalDatasetExperiment, EvalDatasetRecord, EvalDatasetTag, Experiment
from ..search.dataset_grammar import DATASET_GRAMMAR, DATASET_NUMERICS
from ..search.grammar import TAG, Comparison
from ..search.keyset import Atom, Pager, fingerprint
from ..search.sql import Dialect, compile_filter, numeric_condition
from . import lookups
from . import validation as v
from .common import now_ms

__all__ = [
    "USER_TAG", "DatasetView", "SEARCH_DEFAULT_MAX_RESULTS", "SEARCH_MAX_RESULTS", "TOKEN_KIND",
    "compute_digest", "parse_json_object", "get_dataset", "describe", "create_dataset", "delete_dataset",
    "search_datasets", "set_tags", "delete_tag", "experiment_ids", "add_experiments", "remove_experiments",
    "touch", "count_records", "find_dataset", "no_nul", "unlink_experiment", "linked_experiments",
]

USER_TAG = "mlflow.user"  # the client's user, as MLflow's store reads it
DATASET_ID_RE = re.compile(r"^d-[0-9a-f]{32}\Z")
SEARCH_DEFAULT_MAX_RESULTS, SEARCH_MAX_RESULTS = 1000, 50_000
TOKEN_KIND = "eval-datasets"
MAX_NAME_LENGTH = 500
MAX_TAG_KEY_LENGTH = 250


@dataclass
class DatasetView:
    """A dataset with its tags, and its experiment ids when they were asked for."""

    dataset: EvalDataset
    tags: dict = field(default_factory=dict)
    experiment_ids: Optional[list[str]] = None


def compute_digest(name: str, last_update_time: int) -> str:
    """MLflow's digest: changes with every change of the records."""
    return hashlib.sha256(f"{name}:{last_update_time}".encode()).hexdigest()[:8]


def parse_json_object(text: Any, name: str) -> dict:
    """A JSON object sent as a string (the protos carry tags and records as JSON text)."""
    if isinstance(text, dict):
        return text
    if not isinstance(text, str):
        raise InvalidParameter(f"Invalid value {text!r} for parameter '{name}' supplied: expected a JSON string.")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidParameter(f"Invalid value for parameter '{name}' supplied: malformed JSON.") from None
    if not isinstance(value, dict):
        raise InvalidParameter(f"Invalid value for parameter '{name}' supplied: expected a JSON object.")
    return value


def _not_found(dataset_id: Any) -> ResourceDoesNotExist:
    return ResourceDoesNotExist(f"Evaluation dataset with id '{str(dataset_id)[:80]}' not found")


def find_dataset(session: Session, project_id: str, dataset_id: Any, *, lock: bool = False) -> Optional[EvalDataset]:
    """``lock``: hold the dataset's row until the transaction ends (PostgreSQL), so that
    concurrent changes of its records run one after the other."""
    if not isinstance(dataset_id, str) or not DATASET_ID_RE.match(dataset_id):
        return None
    stmt = select(EvalDataset).where(EvalDataset.dataset_id == dataset_id, EvalDataset.project_id == project_id)
    return session.scalars(stmt.with_for_update() if lock else stmt).one_or_none()


def get_dataset(session: Session, project_id: str, dataset_id: Any, *, lock: bool = False) -> EvalDataset:
    """``lock``: the dataset, held for writing until the transaction ends, as it is now."""
    dataset = find_dataset(session, project_id, dataset_id, lock=lock)
    if dataset is None:
        raise _not_found(dataset_id)
    if lock and session.get_bind(mapper=EvalDataset).dialect.name == "sqlite":
        # SQLite has no row locks and reads outside a transaction until the first write:
        # a no-op write takes the database's write lock (waiting for the busy timeout),
        # then the row is read again under it.
        session.execute(update(EvalDataset).where(EvalDataset.id == dataset.id)
                        .values(last_update_time=EvalDataset.last_update_time))
        session.refresh(dataset)
    return dataset


def describe(session: Session, datasets: Sequence[EvalDataset], *, with_experiments: bool = False) -> list[DatasetView]:
    """Views of ``datasets`` with their tags (one query) and experiment ids (one more)."""
    views = {d.id: DatasetView(d) for d in datasets}
    if not views:
        return []
    rows = session.execute(select(EvalDatasetTag.dataset_pk, EvalDatasetTag.key, EvalDatasetTag.value)
                           .where(EvalDatasetTag.dataset_pk.in_(list(views))).order_by(EvalDatasetTag.key))
    for pk, key, value in rows:
        views[pk].tags[key] = value
    if with_experiments:
        for view in views.values():
            view.experiment_ids = []
        rows = session.execute(
            select(EvalDatasetExperiment.dataset_pk, Experiment.iid)
            .join(Experiment, Experiment.id == EvalDatasetExperiment.experiment_pk)
            .where(EvalDatasetExperiment.dataset_pk.in_(list(views))).order_by(Experiment.iid))
        for pk, iid in rows:
            views[pk].experiment_ids.append(str(iid))
    return [views[d.id] for d in datasets]


def _experiments(session: Session, project_id: str, experiment_ids: Any) -> list[Experiment]:
    """The project's experiments of ``experiment_ids`` (each must exist), without repeats."""
    found: dict[int, Experiment] = {}
    for experiment_id in experiment_ids or []:
        try:
            experiment = lookups.get_experiment(session, project_id, experiment_id, with_tags=False)
        except ResourceDoesNotExist:
            raise ResourceDoesNotExist(f"No Experiment with id={str(experiment_id)[:40]}") from None
        found[experiment.id] = experiment
    return list(found.values())


def no_nul(text: str, what: str) -> str:
    """Text stored in a column (not inside a JSON document) holds no NUL: PostgreSQL
    refuses it, so both databases do."""
    if "\x00" in text:
        raise InvalidParameter(f"Invalid value for {what}: it must not contain NUL characters.")
    return text


def _tag_key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidParameter(f"Invalid value {key!r} for parameter 'key' supplied: a tag key is a non-empty string.")
    if len(key) > MAX_TAG_KEY_LENGTH:
        raise InvalidParameter(f"Tag key '{key[:40]}...' exceeds the maximum length of {MAX_TAG_KEY_LENGTH}")
    return key


def _upsert_tags(session: Session, dataset: EvalDataset, tags: dict) -> None:
    """Tags with a value are set (as text), None values are left alone (as MLflow)."""
    wanted = {no_nul(_tag_key(k), "a tag key"): no_nul(str(val), "a tag value") for k, val in tags.items()
              if val is not None}
    if not wanted:
        return
    existing = {t.key: t for t in session.scalars(select(EvalDatasetTag).where(
        EvalDatasetTag.dataset_pk == dataset.id, EvalDatasetTag.key.in_(list(wanted))))}
    for key, value in wanted.items():
        if key in existing:
            existing[key].value = value
        else:
            session.add(EvalDatasetTag(dataset_pk=dataset.id, key=key, value=value))


def create_dataset(session: Session, project_id: str, name: Any, *, tags: Any = None,
                   experiment_ids: Any = None) -> DatasetView:
    name = v.require_str(name, "name")
    if not name.strip():
        raise InvalidParameter("Missing value for required parameter 'name'.")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidParameter(f"Dataset name '{name[:40]}...' exceeds the maximum length of {MAX_NAME_LENGTH}")
    tag_values = parse_json_object(tags, "tags") if tags not in (None, "") else {}
    experiments = _experiments(session, project_id, experiment_ids)
    now = now_ms()
    user = tag_values.get(USER_TAG)
    user = no_nul(str(user)[:255], "the mlflow.user tag") if user is not None else None
    dataset = EvalDataset(
        dataset_id=f"d-{uuid.uuid4().hex}", project_id=project_id, name=name, digest=compute_digest(name, now),
        created_by=user, last_updated_by=user, creation_time=now, last_update_time=now,
    )
    session.add(dataset)
    session.flush()
    _upsert_tags(session, dataset, tag_values)
    for experiment in experiments:
        session.add(EvalDatasetExperiment(dataset_pk=dataset.id, experiment_pk=experiment.id, creation_time=now))
    session.flush()
    return describe(session, [dataset], with_experiments=True)[0]


def delete_dataset(session: Session, project_id: str, dataset_id: Any) -> None:
    """Deleting a dataset that is not there is no error (as MLflow)."""
    dataset = find_dataset(session, project_id, dataset_id)
    if dataset is not None:
        session.execute(delete(EvalDataset).where(EvalDataset.id == dataset.id))


def touch(dataset: EvalDataset) -> None:
    dataset.last_update_time = now_ms()


def set_tags(session: Session, project_id: str, dataset_id: Any, tags: Any) -> None:
    dataset = find_dataset(session, project_id, dataset_id)
    if dataset is None:
        raise ResourceDoesNotExist(f"Could not find evaluation dataset with ID {str(dataset_id)[:80]}")
    _upsert_tags(session, dataset, parse_json_object(tags, "tags"))


def delete_tag(session: Session, project_id: str, dataset_id: Any, key: Any) -> None:
    """Idempotent, also for a dataset that is not there (as MLflow)."""
    dataset = find_dataset(session, project_id, dataset_id)
    if dataset is not None:
        session.execute(delete(EvalDatasetTag).where(EvalDatasetTag.dataset_pk == dataset.id,
                                                     EvalDatasetTag.key == str(key)))


def linked_experiments(session: Session, dataset: EvalDataset) -> list[Experiment]:
    """The experiments a dataset is linked to (for the pages), by IID."""
    return list(session.scalars(select(Experiment).join(
        EvalDatasetExperiment, EvalDatasetExperiment.experiment_pk == Experiment.id).where(
        EvalDatasetExperiment.dataset_pk == dataset.id).order_by(Experiment.iid)))


def unlink_experiment(session: Session, experiment_pk: int) -> None:
    """An experiment deleted for good leaves its datasets, without the link to it."""
    session.execute(delete(EvalDatasetExperiment).where(EvalDatasetExperiment.experiment_pk == experiment_pk)
                    .execution_options(synchronize_session=False))


def experiment_ids(session: Session, project_id: str, dataset_id: Any) -> list[str]:
    return describe(session, [get_dataset(session, project_id, dataset_id)], with_experiments=True)[0].experiment_ids


def add_experiments(session: Session, project_id: str, dataset_id: Any, ids: Any) -> DatasetView:
    dataset = find_dataset(session, project_id, dataset_id)
    if dataset is None:
        raise ResourceDoesNotExist(f"Dataset '{str(dataset_id)[:80]}' not found")
    experiments = _experiments(session, project_id, ids)
    linked = set(session.scalars(select(EvalDatasetExperiment.experiment_pk).where(
        EvalDatasetExperiment.dataset_pk == dataset.id)))
    now = now_ms()
    for experiment in experiments:
        if experiment.id not in linked:
            session.add(EvalDatasetExperiment(dataset_pk=dataset.id, experiment_pk=experiment.id, creation_time=now))
    dataset.last_update_time = now
    session.flush()
    return describe(session, [dataset])[0]


def remove_experiments(session: Session, project_id: str, dataset_id: Any, ids: Any) -> DatasetView:
    """Idempotent: ids that are not linked (or not experiments) are ignored (as MLflow)."""
    dataset = find_dataset(session, project_id, dataset_id)
    if dataset is None:
        raise ResourceDoesNotExist(f"Dataset '{str(dataset_id)[:80]}' not found")
    iids = [int(str(i)) for i in ids or [] if str(i).isdecimal() and len(str(i)) <= 18]
    if iids:
        pks = select(Experiment.id).where(Experiment.project_id == project_id, Experiment.iid.in_(iids))
        removed = session.execute(delete(EvalDatasetExperiment).where(
            EvalDatasetExperiment.dataset_pk == dataset.id, EvalDatasetExperiment.experiment_pk.in_(pks)))
        if removed.rowcount:
            dataset.last_update_time = now_ms()
    session.flush()
    return describe(session, [dataset])[0]


# -- search -------------------------------------------------------------------------
_COLUMNS = {"name": EvalDataset.name, "created_by": EvalDataset.created_by,
            "last_updated_by": EvalDataset.last_updated_by, "created_time": EvalDataset.creation_time,
            "last_update_time": EvalDataset.last_update_time}


def _leaf(c: Comparison, d: Dialect):
    if c.kind == TAG:
        return exists(select(literal(1)).where(
            EvalDatasetTag.dataset_pk == EvalDataset.id, EvalDatasetTag.key == c.key,
            d.compare_string(EvalDatasetTag.value, c.op, c.value)))
    if c.key in DATASET_NUMERICS:
        return numeric_condition(_COLUMNS[c.key], c.op, c.value)
    return d.compare_string(_COLUMNS[c.key], c.op, c.value)


def _limit(value: Any) -> int:
    limit = v.parse_int(value, "max_results", default=SEARCH_DEFAULT_MAX_RESULTS) or SEARCH_DEFAULT_MAX_RESULTS
    if limit < 1 or limit > SEARCH_MAX_RESULTS:
        raise InvalidParameter(f"Invalid value for request parameter max_results. It must be at most "
                               f"{SEARCH_MAX_RESULTS}, but got value {value}" if limit > 0 else
                               f"Invalid value for max_results. It must be a positive integer, but got {value}")
    return limit


def search_datasets(session: Session, project_id: str, *, experiment_ids: Any = None, filter_string: Any = None,
                    max_results: Any = None, order_by: Any = None, page_token: Any = None,
                    name_contains: Optional[str] = None) -> tuple[list[DatasetView], Optional[str]]:
    """A page of the project's datasets (``name_contains``: the pages' search box,
    case-insensitive, taken literally)."""
    limit = _limit(max_results)
    node = DATASET_GRAMMAR.parse_filter(filter_string or None)
    order = DATASET_GRAMMAR.parse_order_by(order_by or ["created_time DESC"])
    d = Dialect(session, EvalDataset)
    atoms = [Atom(d.sort_string(EvalDataset.name) if ob.key == "name" else _COLUMNS[ob.key], ob.ascending, False,
                  str if ob.key == "name" else int) for ob in order]
    atoms.append(Atom(EvalDataset.dataset_id, False, False, str))  # MLflow's tie-breaker
    ids = sorted({str(i) for i in experiment_ids or []})
    token = v.require_str(page_token, "page_token") if page_token else None
    pager = Pager(TOKEN_KIND, atoms, token, fingerprint("eval_datasets", project_id, node, order, ids, name_contains))
    stmt = select(EvalDataset).where(EvalDataset.project_id == project_id)
    if ids:
        iids = [int(i) for i in ids if i.isdecimal() and len(i) <= 18]
        stmt = stmt.where(exists(select(literal(1)).select_from(EvalDatasetExperiment).join(
            Experiment, Experiment.id == EvalDatasetExperiment.experiment_pk).where(
            EvalDatasetExperiment.dataset_pk == EvalDataset.id, Experiment.project_id == project_id,
            Experiment.iid.in_(iids))))
    if node is not None:
        stmt = stmt.where(compile_filter(node, d, _leaf))
    if name_contains:
        stmt = stmt.where(func.lower(EvalDataset.name).contains(name_contains.lower(), autoescape=True))
    page = pager.fetch(session, stmt, limit)
    return describe(session, page.items), page.next_cursor


def count_records(session: Session, dataset: EvalDataset) -> int:
    return session.scalar(select(func.count()).select_from(EvalDatasetRecord)
                          .where(EvalDatasetRecord.dataset_pk == dataset.id)) or 0
