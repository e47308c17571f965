"""The model registry: registered models, their versions, tags and aliases.

MLflow's semantics (its SQL store, 3.x), scoped per project: names are unique in a
project, versions are numbered 1, 2, 3... per model and a number is never reused
(deleting a version is soft: the row stays, redacted, so the next version still gets
a new number). Stages are kept for old clients (``transition-stage``,
``get-latest-versions``).

Where a version's files are: ``storage_location``, resolved once when the version is
created from its ``source``:

* ``models:/<model_id>`` (a logged model) -> the model's ``artifact_location``;
* ``models:/<name>/<version|stage|latest>`` or ``models:/<name>@<alias>`` -> that version's;
* ``runs:/<run_id>/<path>`` -> the run's artifacts under ``path`` or, when the run has
  none there, the run's logged model named ``path`` (what the MLflow 3 client does);
* ``mlflow-artifacts:/...`` must resolve inside the project; other remote URIs
  (``s3://``...) are kept as given; local paths are refused.

GitLab's convention, a version's files as the ``ml_model`` package ``<model name>`` /
``<version>``: the package *references* the storage objects of the run's or logged
model's files (``packages.share_files``: new rows, same storage keys, no bytes
copied). An object is removed only when no package file refers to it any more, so
deleting a version never deletes the logged model's bytes. Renaming a model renames
its packages; deleting a version or a model deletes them.
"""
from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence
from urllib.parse import urlparse

from sqlalchemy import delete, exists, func, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..errors import InvalidParameter, ResourceAlreadyExists, ResourceDoesNotExist
from ..models import (
    LoggedModel,
    ModelVersion,
    ModelVersionTag,
    Package,
    RegisteredModel,
    RegisteredModelAlias,
    RegisteredModelTag,
)
from . import search_filter as sf
from . import validation as v
from .common import dialect_insert, now_ms
from .search import (
    _Atom,
    _compile,
    _Dialect,
    _fingerprint,
    _keyset_condition,
    _numeric,
    _token_value,
    decode_page_token,
    encode_page_token,
)

STAGE_NONE, STAGE_STAGING, STAGE_PRODUCTION, STAGE_ARCHIVED = "None", "Staging", "Production", "Archived"
ALL_STAGES = (STAGE_NONE, STAGE_STAGING, STAGE_PRODUCTION, STAGE_ARCHIVED)
ACTIVE_STAGES = (STAGE_STAGING, STAGE_PRODUCTION)
IS_PROMPT_TAG = "mlflow.prompt.is_prompt"
MAX_NAME_LENGTH = 255  # a package name's limit (the model's package is named after it)
MAX_TAG_VALUE_LENGTH = 100_000
MAX_ALIAS_LENGTH = 255
MAX_DESCRIPTION_LENGTH = 100_000
MODELS_DEFAULT_MAX_RESULTS, MODELS_MAX_RESULTS = 100, 1000
VERSIONS_DEFAULT_MAX_RESULTS, VERSIONS_MAX_RESULTS = 10_000, 200_000
_ALIAS_RE = re.compile(r"^[\w\-]*\Z")
_VERSION_ALIAS_RE = re.compile(r"^[vV]\d+\Z")
_MODEL_ID_RE = re.compile(r"^m-[0-9a-f]{32}\Z")
_DELETED = {"source": "REDACTED-SOURCE-PATH", "run_uuid": "REDACTED-RUN-ID", "run_link": "REDACTED-RUN-LINK"}


# -- validation ----------------------------------------------------------------------
def validate_name(name: Any, what: str = "name") -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameter(f"Missing value for required parameter '{what}'.")
    if "/" in name or ":" in name:
        raise InvalidParameter(f"Invalid model name '{name}'. Names cannot contain '/' or ':'.")
    if "\\" in name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidParameter(f"Invalid model name {name!r}. Names cannot contain backslashes or control characters.")
    norm = posixpath.normpath(name)
    if norm != name or norm in (".", "..") or norm.startswith(".."):
        raise InvalidParameter(f"Invalid value '{name}' for parameter '{what}': the name must not resolve to another path.")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidParameter(f"Model name exceeds the maximum length of {MAX_NAME_LENGTH} characters.")
    return name


def parse_version(version: Any) -> int:
    text = str(version).strip() if version is not None else ""
    if not text:
        raise InvalidParameter("Missing value for required parameter 'version'.")
    if not re.fullmatch(r"-?\d{1,9}", text):
        raise InvalidParameter(f"Parameter 'version' must be an integer, got '{version}'.")
    return int(text)


def canonical_stage(stage: Any) -> str:
    mapping = {s.lower(): s for s in ALL_STAGES}
    if not isinstance(stage, str) or stage.lower() not in mapping:
        raise InvalidParameter(f"Invalid Model Version stage: {stage}. Value must be one of {', '.join(ALL_STAGES)}.")
    return mapping[stage.lower()]


def _validate_alias(alias: Any, *, for_set: bool = False) -> str:
    if not isinstance(alias, str) or alias == "":
        raise InvalidParameter("Registered model alias name cannot be empty.")
    if not _ALIAS_RE.match(alias):
        raise InvalidParameter(f"Invalid alias name: '{alias}'. Names may only contain alphanumerics, underscores (_), and dashes (-).")
    if len(alias) > MAX_ALIAS_LENGTH:
        raise InvalidParameter(f"Registered model alias name exceeds the maximum length of {MAX_ALIAS_LENGTH}.")
    if for_set and alias.lower() == "latest":
        raise InvalidParameter("'latest' alias name (case insensitive) is reserved.")
    if for_set and _VERSION_ALIAS_RE.match(alias):
        raise InvalidParameter(f"Version alias name '{alias}' is reserved.")
    return alias


def _tags(raw: Any) -> dict[str, Optional[str]]:
    if raw is None:
        return {}
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise InvalidParameter("'tags' must be a list of {key, value} objects.")
    return {_tag_key(t.get("key")): _tag_value(t.get("value")) for t in raw}


def _tag_key(key: Any) -> str:
    return v.validate_key("Tag", key)


def _tag_value(value: Any) -> Optional[str]:
    return v.validate_value("Tag", value, MAX_TAG_VALUE_LENGTH, required=False)


def _description(value: Any) -> Optional[str]:
    if value is None:
        return None
    return v.validate_value("Description", value, MAX_DESCRIPTION_LENGTH)


# -- lookups ---------------------------------------------------------------------------
def _find_model(session: Session, project_id: str, name: str) -> Optional[RegisteredModel]:
    return session.scalars(
        select(RegisteredModel).where(RegisteredModel.project_id == project_id, RegisteredModel.name == name)
    ).one_or_none()


def get_registered_model(session: Session, project_id: str, name: Any) -> RegisteredModel:
    name = validate_name(name)
    model = _find_model(session, project_id, name)
    if model is None:
        raise ResourceDoesNotExist(f"Registered Model with name={name} not found")
    return model


def get_model_version(session: Session, project_id: str, name: Any, version: Any) -> ModelVersion:
    model = get_registered_model(session, project_id, name)
    number = parse_version(version)
    mv = session.scalars(
        select(ModelVersion).where(
            ModelVersion.registered_model_id == model.id, ModelVersion.version == number, ModelVersion.deleted.is_(False)
        )
    ).one_or_none()
    if mv is None:
        raise ResourceDoesNotExist(f"Model Version (name={model.name}, version={number}) not found")
    return mv


# -- registered models -------------------------------------------------------------------
def create_registered_model(
    session: Session, project_id: str, name: Any, *, tags: Any = None, description: Any = None, user_id: Optional[str] = None
) -> RegisteredModel:
    name = validate_name(name)
    tag_map = _tags(tags)
    if _find_model(session, project_id, name) is not None:
        raise ResourceAlreadyExists(f"Registered Model (name={name}) already exists.")
    now = now_ms()
    model = RegisteredModel(
        project_id=project_id, name=name, description=_description(description), user_id=user_id,
        creation_time=now, last_update_time=now,
    )
    session.add(model)
    _flush_unique(session, name)
    _upsert(session, RegisteredModelTag, "registered_model_id", model.id, tag_map)
    return model


def _flush_unique(session: Session, name: str) -> None:
    """Flush; a concurrent request that took the name first is RESOURCE_ALREADY_EXISTS
    (what ``mlflow.register_model`` expects when parallel jobs register one model)."""
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise ResourceAlreadyExists(f"Registered Model (name={name}) already exists.") from None


def _upsert(session: Session, entity: Any, owner_column: str, owner_id: int, tags: dict) -> None:
    if not tags:
        return
    stmt = dialect_insert(session)(entity)
    stmt = stmt.on_conflict_do_update(
        index_elements=[getattr(entity, owner_column), entity.key], set_={"value": stmt.excluded.value}
    )
    session.execute(stmt, [{owner_column: owner_id, "key": k, "value": val} for k, val in tags.items()])


def update_registered_model(session: Session, project_id: str, name: Any, description: Any) -> RegisteredModel:
    model = get_registered_model(session, project_id, name)
    model.description = _description(description)
    model.last_update_time = now_ms()
    return model


def rename_registered_model(session: Session, project_id: str, name: Any, new_name: Any) -> RegisteredModel:
    model = get_registered_model(session, project_id, name)
    if new_name is None or str(new_name).strip() == "":
        raise InvalidParameter("Missing value for required parameter 'new_name'.")
    new_name = validate_name(new_name, "new_name")
    if new_name == model.name:
        return model
    if _find_model(session, project_id, new_name) is not None:
        raise ResourceAlreadyExists(f"Registered Model (name={new_name}) already exists.")
    from .packages import ML_MODEL

    # The versions' packages follow the model's name (GitLab's convention).
    session.execute(
        update(Package)
        .where(Package.project_id == project_id, Package.package_type == ML_MODEL, Package.name == model.name)
        .values(name=new_name, updated_at=now_ms())
    )
    model.name = new_name
    model.last_update_time = now_ms()
    _flush_unique(session, new_name)
    session.execute(
        update(ModelVersion).where(ModelVersion.registered_model_id == model.id).values(last_update_time=model.last_update_time)
    )
    return model


def delete_registered_model(session: Session, project_id: str, name: Any) -> None:
    from .packages import ML_MODEL, delete_packages

    model = get_registered_model(session, project_id, name)
    delete_packages(session, project_id, model.name, None, package_type=ML_MODEL)
    version_ids = select(ModelVersion.id).where(ModelVersion.registered_model_id == model.id)
    # Explicit deletes: SQLite enforces ON DELETE CASCADE only with foreign keys switched on.
    session.execute(delete(ModelVersionTag).where(ModelVersionTag.model_version_id.in_(version_ids)))
    session.execute(delete(ModelVersion).where(ModelVersion.registered_model_id == model.id))
    session.execute(delete(RegisteredModelAlias).where(RegisteredModelAlias.registered_model_id == model.id))
    session.execute(delete(RegisteredModelTag).where(RegisteredModelTag.registered_model_id == model.id))
    session.delete(model)
    session.flush()


def set_registered_model_tag(session: Session, project_id: str, name: Any, key: Any, value: Any) -> None:
    model = get_registered_model(session, project_id, name)
    _upsert(session, RegisteredModelTag, "registered_model_id", model.id, {_tag_key(key): _tag_value(value)})
    model.last_update_time = now_ms()


def delete_registered_model_tag(session: Session, project_id: str, name: Any, key: Any) -> None:
    """A missing tag is fine, as in MLflow's registry."""
    model = get_registered_model(session, project_id, name)
    key = _tag_key(key)
    session.execute(
        delete(RegisteredModelTag).where(RegisteredModelTag.registered_model_id == model.id, RegisteredModelTag.key == key)
    )


def get_latest_versions(session: Session, project_id: str, name: Any, stages: Any = None) -> list[ModelVersion]:
    """The highest version in each requested stage (every stage when none is given)."""
    model = get_registered_model(session, project_id, name)
    if isinstance(stages, str):
        stages = [stages]
    wanted = {canonical_stage(s) for s in stages} if stages else set(ALL_STAGES)
    latest = _latest_versions(session, [model.id]).get(model.id, [])
    return [mv for mv in latest if mv.current_stage in wanted]


def _latest_versions(session: Session, model_pks: Sequence[int]) -> dict[int, list[ModelVersion]]:
    """Per model, its highest live version in each stage (one window query)."""
    if not model_pks:
        return {}
    rank = func.row_number().over(
        partition_by=[ModelVersion.registered_model_id, ModelVersion.current_stage], order_by=ModelVersion.version.desc()
    ).label("rank")
    ranked = (
        select(ModelVersion.id, rank)
        .where(ModelVersion.registered_model_id.in_(list(model_pks)), ModelVersion.deleted.is_(False))
        .subquery()
    )
    rows = session.scalars(
        select(ModelVersion).join(ranked, ranked.c.id == ModelVersion.id).where(ranked.c.rank == 1).order_by(ModelVersion.version)
    )
    result: dict[int, list[ModelVersion]] = defaultdict(list)
    for mv in rows:
        result[mv.registered_model_id].append(mv)
    return result


# -- aliases -------------------------------------------------------------------------------
def set_alias(session: Session, project_id: str, name: Any, alias: Any, version: Any) -> None:
    alias = _validate_alias(alias, for_set=True)
    mv = get_model_version(session, project_id, name, version)
    stmt = dialect_insert(session)(RegisteredModelAlias).values(
        registered_model_id=mv.registered_model_id, alias=alias, version=mv.version
    )
    session.execute(stmt.on_conflict_do_update(
        index_elements=[RegisteredModelAlias.registered_model_id, RegisteredModelAlias.alias], set_={"version": mv.version}
    ))
    mv.registered_model.last_update_time = now_ms()


def delete_alias(session: Session, project_id: str, name: Any, alias: Any) -> None:
    alias = _validate_alias(alias)
    model = get_registered_model(session, project_id, name)
    session.execute(
        delete(RegisteredModelAlias).where(RegisteredModelAlias.registered_model_id == model.id, RegisteredModelAlias.alias == alias)
    )
    model.last_update_time = now_ms()


def get_version_by_alias(session: Session, project_id: str, name: Any, alias: Any) -> ModelVersion:
    alias = _validate_alias(alias)
    model = get_registered_model(session, project_id, name)
    if alias.lower() == "latest":
        mv = session.scalars(
            select(ModelVersion)
            .where(ModelVersion.registered_model_id == model.id, ModelVersion.deleted.is_(False))
            .order_by(ModelVersion.version.desc())
            .limit(1)
        ).first()
        if mv is None:
            raise ResourceDoesNotExist(f"Latest version not found for model {model.name}.")
        return mv
    number = session.scalar(
        select(RegisteredModelAlias.version).where(
            RegisteredModelAlias.registered_model_id == model.id, RegisteredModelAlias.alias == alias
        )
    )
    if number is None:
        # MLflow's server answers INVALID_PARAMETER_VALUE here, not RESOURCE_DOES_NOT_EXIST.
        raise InvalidParameter(f"Registered model alias {alias} not found.")
    return get_model_version(session, project_id, model.name, number)


# -- model versions ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Source:
    storage_location: Optional[str]
    run_uuid: Optional[str] = None
    model_id: Optional[str] = None


def _bad_source(source: str, detail: str) -> InvalidParameter:
    return InvalidParameter(f"Invalid model version source: '{source}'. {detail}")


def _resolve_models_uri(session: Session, project_id: str, source: str, path: str) -> _Source:
    from .logged_models import artifact_location, get_logged_model

    if not path or "/" not in path and "@" not in path:
        if not _MODEL_ID_RE.match(path or ""):
            raise _bad_source(source, "Expected models:/<model_id>, models:/<name>/<version> or models:/<name>@<alias>.")
        try:
            model = get_logged_model(session, project_id, path)
        except ResourceDoesNotExist:
            raise _bad_source(source, f"No logged model {path} in this project.") from None
        return _Source(artifact_location(model.experiment.iid, model.model_id), model.source_run_uuid, model.model_id)
    if "@" in path.split("/", 1)[0]:
        name, alias = path.split("/", 1)[0].split("@", 1)
        mv = get_version_by_alias(session, project_id, name, alias)
    else:
        parts = path.split("/")
        if len(parts) != 2:
            raise _bad_source(source, "Expected models:/<name>/<version>.")
        name, ref = parts
        if ref.isdecimal():  # not isdigit: "²" is no version number
            mv = get_model_version(session, project_id, name, ref)
        elif ref.lower() == "latest":
            mv = get_version_by_alias(session, project_id, name, "latest")
        else:
            found = get_latest_versions(session, project_id, name, [ref])
            if not found:
                raise ResourceDoesNotExist(f"No versions of model {name} in stage {ref}.")
            mv = found[-1]
    return _Source(mv.storage_location or mv.source, mv.run_uuid, mv.model_id)


def _resolve_runs_uri(session: Session, project_id: str, source: str, path: str) -> _Source:
    from . import artifacts, packages
    from .runs import get_run
    from .uris import run_artifact_uri

    run_id, _, sub = path.partition("/")
    try:
        run = get_run(session, project_id, run_id)
    except (ResourceDoesNotExist, InvalidParameter):
        raise _bad_source(source, f"No run {run_id} in this project.") from None
    sub = sub.strip("/")
    run_uri = run_artifact_uri(run.experiment.iid, run.iid)
    package_name, version, _ = artifacts.resolve_artifact_path(session, project_id, run_uri[len("mlflow-artifacts:/"):])
    package = packages.find_package(session, project_id, package_name, version)
    if package is not None and packages.package_files(session, package, sub + "/" if sub else ""):
        return _Source(f"{run_uri}/{sub}" if sub else run_uri, run.run_uuid)
    # MLflow 3 logs models outside the run's artifacts: take the run's model of that name.
    head, _, rest = sub.partition("/")
    model = session.scalars(
        select(LoggedModel)
        .where(LoggedModel.project_id == project_id, LoggedModel.source_run_uuid == run.run_uuid,
               LoggedModel.name == head, LoggedModel.lifecycle_stage == "active")
        .order_by(LoggedModel.creation_time.desc())
        .limit(1)
    ).first()
    if model is None:
        return _Source(f"{run_uri}/{sub}" if sub else run_uri, run.run_uuid)
    from .logged_models import artifact_location

    location = artifact_location(model.experiment.iid, model.model_id)
    return _Source(f"{location}/{rest}" if rest else location, run.run_uuid, model.model_id)


def _resolve_source(session: Session, project_id: str, source: Any) -> _Source:
    from . import artifacts

    source = v.require_str(source, "source", max_length=4000)
    try:
        parsed = urlparse(source)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        raise _bad_source(source, "It is not a valid URI.") from None
    scheme = parsed.scheme.lower()
    if scheme in ("models", "runs"):
        if parsed.netloc:
            raise _bad_source(source, "Sources must use this project's registry and runs.")
        path = parsed.path.lstrip("/")
        if any(seg in ("..", ".") for seg in path.split("/")):
            raise _bad_source(source, "Relative path segments are not allowed.")
        if scheme == "models":
            return _resolve_models_uri(session, project_id, source, path.rstrip("/"))
        return _resolve_runs_uri(session, project_id, source, path)
    if scheme == "mlflow-artifacts":
        try:
            artifacts.resolve_artifact_path(session, project_id, parsed.path.lstrip("/"))
        except (ResourceDoesNotExist, InvalidParameter) as exc:
            raise _bad_source(source, exc.message) from None
        return _Source(f"mlflow-artifacts:/{parsed.path.lstrip('/')}")
    if scheme in ("", "file") or len(scheme) == 1:  # a local path (or a Windows drive letter)
        raise _bad_source(source, "Local paths cannot be model version sources on this server.")
    if any(seg == ".." for seg in parsed.path.split("/")):
        raise _bad_source(source, "Relative path segments are not allowed.")
    return _Source(source)


def create_model_version(
    session: Session,
    project_id: str,
    name: Any,
    source: Any,
    *,
    run_id: Any = None,
    model_id: Any = None,
    tags: Any = None,
    run_link: Any = None,
    description: Any = None,
    user_id: Optional[str] = None,
) -> ModelVersion:
    from .logged_models import add_model_version_link, get_logged_model
    from .runs import get_run

    name = validate_name(name)
    tag_map = _tags(tags)
    resolved = _resolve_source(session, project_id, source)
    if model_id:
        try:
            model_id = get_logged_model(session, project_id, model_id).model_id
        except (ResourceDoesNotExist, InvalidParameter):
            raise _bad_source(source, "The model_id request parameter must identify a logged model of this project.") from None
        if resolved.model_id and resolved.model_id != model_id:
            raise _bad_source(source, "The model_id request parameter must identify the model the source names.")
    model_id = model_id or resolved.model_id
    if run_id:
        try:
            run_id = get_run(session, project_id, run_id).run_uuid
        except (ResourceDoesNotExist, InvalidParameter):
            raise _bad_source(source, "The run_id request parameter must identify a run of this project.") from None
    run_id = run_id or resolved.run_uuid
    if run_link is not None and not isinstance(run_link, str):
        raise InvalidParameter("Invalid value for parameter 'run_link': expected a string.")

    registered = get_registered_model(session, project_id, name)
    now = now_ms()
    # Write the model's row before reading the highest number: the row lock (PostgreSQL)
    # or the database write lock (SQLite, whose driver begins the transaction only at the
    # first write) makes concurrent creators take turns, so none reads a stale maximum.
    session.execute(update(RegisteredModel).where(RegisteredModel.id == registered.id).values(last_update_time=now))
    number = (session.scalar(select(func.max(ModelVersion.version)).where(ModelVersion.registered_model_id == registered.id)) or 0) + 1
    mv = ModelVersion(
        registered_model_id=registered.id,
        version=number,
        description=_description(description),
        user_id=user_id,
        source=source,
        storage_location=resolved.storage_location,
        run_uuid=run_id or None,
        run_link=run_link or None,
        model_id=model_id or None,
        status="READY",
        current_stage=STAGE_NONE,
        deleted=False,
        creation_time=now,
        last_update_time=now,
    )
    mv.registered_model = registered
    session.add(mv)
    session.flush()
    _upsert(session, ModelVersionTag, "model_version_id", mv.id, tag_map)
    if model_id:
        add_model_version_link(session, project_id, model_id, registered.name, number)
    _share_files(session, project_id, mv)
    return mv


def _share_files(session: Session, project_id: str, mv: ModelVersion) -> None:
    """Expose the version's files as package ``<model name>``/``<version>`` (shared
    storage objects). Nothing to share yet (a logged model still uploading) is fine:
    finalizing the logged model shares them then."""
    from . import artifacts, packages

    location = mv.storage_location or ""
    if not location.startswith("mlflow-artifacts:"):
        return
    try:
        package_name, version, prefix = artifacts.resolve_artifact_path(session, project_id, urlparse(location).path.lstrip("/"))
    except (ResourceDoesNotExist, InvalidParameter):
        return
    src = packages.find_package(session, project_id, package_name, version)
    if src is None or not packages.package_files(session, src, prefix + "/" if prefix else ""):
        return
    packages.share_files(session, project_id, package_name, version, mv.registered_model.name, str(mv.version), prefix=prefix)


def share_files_of_logged_model(session: Session, project_id: str, model: LoggedModel) -> None:
    """(Re)share a logged model's files with every live version registered from it."""
    versions = session.scalars(
        select(ModelVersion)
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.registered_model_id)
        .where(RegisteredModel.project_id == project_id, ModelVersion.model_id == model.model_id, ModelVersion.deleted.is_(False))
    )
    for mv in list(versions):
        _share_files(session, project_id, mv)


def update_model_version(session: Session, project_id: str, name: Any, version: Any, description: Any) -> ModelVersion:
    mv = get_model_version(session, project_id, name, version)
    mv.description = _description(description)
    mv.last_update_time = now_ms()
    return mv


def transition_stage(
    session: Session, project_id: str, name: Any, version: Any, stage: Any, archive_existing: Any = False
) -> ModelVersion:
    """Stages are deprecated in MLflow but old clients still send this."""
    stage = canonical_stage(stage)
    archive = archive_existing in (True, "true", "True", 1)
    if archive and stage not in ACTIVE_STAGES:
        raise InvalidParameter(
            f"Model version transition cannot archive existing model versions because '{stage}' is not an "
            f"Active stage. Valid stages are {', '.join(ACTIVE_STAGES)}"
        )
    mv = get_model_version(session, project_id, name, version)
    now = now_ms()
    if archive:
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.registered_model_id == mv.registered_model_id, ModelVersion.id != mv.id,
                   ModelVersion.current_stage == stage, ModelVersion.deleted.is_(False))
            .values(current_stage=STAGE_ARCHIVED, last_update_time=now)
        )
    mv.current_stage = stage
    mv.last_update_time = now
    mv.registered_model.last_update_time = now
    return mv


def delete_model_version(session: Session, project_id: str, name: Any, version: Any) -> None:
    """Soft delete, as MLflow: the number stays taken, the row is redacted; its aliases,
    tags and package go."""
    from .packages import ML_MODEL, delete_packages

    mv = get_model_version(session, project_id, name, version)
    model = mv.registered_model
    delete_packages(session, project_id, model.name, [str(mv.version)], package_type=ML_MODEL)
    session.execute(delete(RegisteredModelAlias).where(
        RegisteredModelAlias.registered_model_id == model.id, RegisteredModelAlias.version == mv.version))
    session.execute(delete(ModelVersionTag).where(ModelVersionTag.model_version_id == mv.id))
    now = now_ms()
    mv.deleted = True
    mv.current_stage = "Deleted_Internal"
    mv.description = mv.user_id = mv.status_message = mv.storage_location = None
    mv.source, mv.run_uuid, mv.run_link = _DELETED["source"], _DELETED["run_uuid"], _DELETED["run_link"]
    mv.last_update_time = model.last_update_time = now


def set_model_version_tag(session: Session, project_id: str, name: Any, version: Any, key: Any, value: Any) -> None:
    mv = get_model_version(session, project_id, name, version)
    _upsert(session, ModelVersionTag, "model_version_id", mv.id, {_tag_key(key): _tag_value(value)})


def delete_model_version_tag(session: Session, project_id: str, name: Any, version: Any, key: Any) -> None:
    mv = get_model_version(session, project_id, name, version)
    session.execute(delete(ModelVersionTag).where(ModelVersionTag.model_version_id == mv.id, ModelVersionTag.key == _tag_key(key)))


def download_uri(session: Session, project_id: str, name: Any, version: Any) -> str:
    mv = get_model_version(session, project_id, name, version)
    return mv.storage_location or mv.source or ""


# -- what the API shows ------------------------------------------------------------------------
@dataclass
class VersionView:
    version: ModelVersion
    tags: list = field(default_factory=list)  # (key, value)
    aliases: list = field(default_factory=list)  # alias names


@dataclass
class ModelView:
    model: RegisteredModel
    tags: list = field(default_factory=list)  # (key, value)
    aliases: list = field(default_factory=list)  # (alias, version)
    latest_versions: list = field(default_factory=list)  # VersionView


def describe_versions(session: Session, versions: Sequence[ModelVersion]) -> list[VersionView]:
    """Tags and aliases of many versions in two queries."""
    views = [VersionView(mv) for mv in versions]
    if not views:
        return views
    by_id = {view.version.id: view for view in views}
    for start in range(0, len(views), 900):
        chunk = [view.version.id for view in views[start:start + 900]]
        for mv_id, key, value in session.execute(
            select(ModelVersionTag.model_version_id, ModelVersionTag.key, ModelVersionTag.value)
            .where(ModelVersionTag.model_version_id.in_(chunk)).order_by(ModelVersionTag.key)
        ):
            by_id[mv_id].tags.append((key, value))
    model_ids = sorted({view.version.registered_model_id for view in views})
    aliases = _aliases(session, model_ids)
    for view in views:
        view.aliases = [a for a, num in aliases.get(view.version.registered_model_id, []) if num == view.version.version]
    return views


def _aliases(session: Session, model_ids: Sequence[int]) -> dict[int, list[tuple[str, int]]]:
    result: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for start in range(0, len(model_ids), 900):
        for model_id, alias, number in session.execute(
            select(RegisteredModelAlias.registered_model_id, RegisteredModelAlias.alias, RegisteredModelAlias.version)
            .where(RegisteredModelAlias.registered_model_id.in_(list(model_ids[start:start + 900])))
            .order_by(RegisteredModelAlias.alias)
        ):
            result[model_id].append((alias, number))
    return result


def describe_models(session: Session, models: Sequence[RegisteredModel]) -> list[ModelView]:
    views = [ModelView(m) for m in models]
    if not views:
        return views
    ids = [m.id for m in models]
    by_id = {view.model.id: view for view in views}
    for start in range(0, len(ids), 900):
        for model_id, key, value in session.execute(
            select(RegisteredModelTag.registered_model_id, RegisteredModelTag.key, RegisteredModelTag.value)
            .where(RegisteredModelTag.registered_model_id.in_(ids[start:start + 900])).order_by(RegisteredModelTag.key)
        ):
            by_id[model_id].tags.append((key, value))
    for model_id, pairs in _aliases(session, ids).items():
        by_id[model_id].aliases = pairs
    latest = _latest_versions(session, ids)
    version_views = describe_versions(session, [mv for pk in ids for mv in latest.get(pk, [])])
    for view in version_views:
        by_id[view.version.registered_model_id].latest_versions.append(view)
    return views


# -- search ------------------------------------------------------------------------------------
_ENTITIES = {
    "tag": sf.TAG, "tags": sf.TAG,
    "attribute": sf.ATTRIBUTE, "attributes": sf.ATTRIBUTE, "attr": sf.ATTRIBUTE,
}


class _RegistryGrammar(sf._Grammar):
    """Registry filters on the shared parser: attributes (string or numeric) and tags."""

    entities = _ENTITIES

    def __init__(self, what: str, strings: set, numerics: set, lists: set, orderable: set):
        self.what, self.strings, self.numerics, self.lists, self.orderable = what, strings, numerics, lists, orderable

    def resolve(self, sc, kind, key, start, *, for_order=False):
        kind = kind or sf.ATTRIBUTE
        if for_order:
            if kind != sf.ATTRIBUTE or key not in self.orderable:
                raise sc.error(f"invalid order by key {key!r}; valid keys are {', '.join(sorted(self.orderable))}", start)
        elif kind == sf.ATTRIBUTE and key not in self.strings | self.numerics:
            raise sc.error(f"invalid attribute key {key!r}; valid attribute keys are {', '.join(sorted(self.strings | self.numerics))}", start)
        return kind, key

    def check(self, sc, kind, key, op, vkind, raw, start, vstart):
        name = key if kind == sf.ATTRIBUTE else f"tags.{key}"
        if kind == sf.ATTRIBUTE and key in self.numerics:
            if op not in sf.NUMERIC_OPS:
                raise sc.error(f"invalid comparator {op!r} for {name!r}; use one of = != < <= > >=", start)
            if vkind != "number":
                raise sc.error(f"expected an integer for {name!r}, found {sc.token_at(vstart)}", vstart)
            value, is_int = sf._number(sc, raw, vstart)
            if not is_int:
                raise sc.error(f"expected an integer for {name!r}, found {sc.token_at(vstart)}", vstart)
            return value
        if op in sf.NULL_OPS:
            raise sc.error(f"IS NULL / IS NOT NULL is not supported for {name!r}", start)
        if op in sf.LIST_OPS:
            if kind != sf.ATTRIBUTE or key not in self.lists:
                raise sc.error(f"{op} is only supported for {', '.join(sorted(self.lists))}, not for {name!r}", start)
            if vkind != "list":
                raise sc.error(f"expected a ('list', 'of', 'strings') after {op}, found {sc.token_at(vstart)}", vstart)
            return raw
        if op not in sf.STRING_OPS:
            raise sc.error(f"invalid comparator {op!r} for {name!r}; use one of = != LIKE ILIKE", start)
        if vkind != "string":
            raise sc.error(f"expected a quoted string for {name!r}, found {sc.token_at(vstart)}", vstart)
        return raw


_MODELS_GRAMMAR = _RegistryGrammar(
    "registered model filter", {"name"}, {"creation_timestamp", "last_updated_timestamp"}, {"name"},
    {"name", "timestamp", "last_updated_timestamp", "creation_timestamp"},
)
_VERSIONS_GRAMMAR = _RegistryGrammar(
    "model version filter", {"name", "run_id", "source_path", "model_id"},
    {"version_number", "creation_timestamp", "last_updated_timestamp"}, {"name", "run_id"},
    {"name", "version_number", "creation_timestamp", "last_updated_timestamp"},
)


def _limit(value: Any, default: int, maximum: int) -> int:
    limit = v.parse_int(value, "max_results", default=default)
    if limit == 0:  # proto3: not set
        limit = default
    if limit < 1 or limit > maximum:
        raise InvalidParameter(
            f"Invalid value for request parameter max_results. It must be at most {maximum}, but got value {value}"
            if limit > maximum else f"Invalid value for max_results. It must be a positive integer, but got {value}"
        )
    return limit


def _is_prompt(model_pk_column: Any):
    return exists(select(literal(1)).where(
        RegisteredModelTag.registered_model_id == model_pk_column, RegisteredModelTag.key == IS_PROMPT_TAG,
        func.lower(RegisteredModelTag.value) == "true",
    ))


def _prompt_leaf(c: sf.Comparison):
    """``tags.`mlflow.prompt.is_prompt` = 'false'`` must match models without the tag."""
    if c.kind == sf.TAG and c.key == IS_PROMPT_TAG and c.op in ("=", "!=") and str(c.value).lower() in ("true", "false"):
        wants_prompt = (c.op == "=") == (str(c.value).lower() == "true")
        return _is_prompt(RegisteredModel.id) if wants_prompt else ~_is_prompt(RegisteredModel.id)
    return None


def _queries_prompts(node: Optional[sf.Node]) -> bool:
    return any(c.kind == sf.TAG and c.key == IS_PROMPT_TAG for c in sf.comparisons(node))


def _page(session: Session, stmt: Any, atoms: list[_Atom], limit: int, fingerprint: str, cursor: Any) -> tuple[list, Optional[str]]:
    if cursor is not None:
        stmt = stmt.where(_keyset_condition(atoms, cursor))
    rows = session.execute(stmt.order_by(*[a.order_clause() for a in atoms]).limit(limit + 1)).all()
    token = None
    if len(rows) > limit:
        rows = rows[:limit]
        token = encode_page_token(fingerprint, [_token_value(val) for val in tuple(rows[-1])[1:]])
    return [row[0] for row in rows], token


def search_registered_models(
    session: Session, project_id: str, filter_string: Any = None, max_results: Any = None, order_by: Any = None,
    page_token: Optional[str] = None,
) -> tuple[list[RegisteredModel], Optional[str]]:
    limit = _limit(max_results, MODELS_DEFAULT_MAX_RESULTS, MODELS_MAX_RESULTS)
    node = sf._parse(filter_string or None, _MODELS_GRAMMAR)
    order = sf._parse_order(order_by or None, _MODELS_GRAMMAR)
    d = _Dialect(session, RegisteredModel)

    def leaf(c: sf.Comparison, d: _Dialect):
        special = _prompt_leaf(c)
        if special is not None:
            return special
        if c.kind == sf.TAG:
            return exists(select(literal(1)).where(
                RegisteredModelTag.registered_model_id == RegisteredModel.id, RegisteredModelTag.key == c.key,
                d.compare_string(RegisteredModelTag.value, c.op, c.value)))
        if c.key == "name":
            return d.compare_string(RegisteredModel.name, c.op, c.value)
        column = RegisteredModel.creation_time if c.key == "creation_timestamp" else RegisteredModel.last_update_time
        return _numeric(column, c.op, c.value)

    atoms: list[_Atom] = []
    for ob in order:
        if ob.key == "name":
            atoms.append(_Atom(d.sort_string(RegisteredModel.name), ob.ascending, False, str))
            break  # unique in the project
        column = RegisteredModel.creation_time if ob.key == "creation_timestamp" else RegisteredModel.last_update_time
        atoms.append(_Atom(column, ob.ascending, False, int))
    else:
        atoms.append(_Atom(d.sort_string(RegisteredModel.name), True, False, str))
    fingerprint = _fingerprint("registered_models", project_id, node, order)
    cursor = decode_page_token(v.require_str(page_token, "page_token"), fingerprint, atoms) if page_token else None
    stmt = select(RegisteredModel, *[a.expr.label(f"sort_{i}") for i, a in enumerate(atoms)]).where(
        RegisteredModel.project_id == project_id
    )
    if node is not None:
        stmt = stmt.where(_compile(node, d, leaf))
    if not _queries_prompts(node):
        stmt = stmt.where(~_is_prompt(RegisteredModel.id))
    return _page(session, stmt, atoms, limit, fingerprint, cursor)


def search_model_versions(
    session: Session, project_id: str, filter_string: Any = None, max_results: Any = None, order_by: Any = None,
    page_token: Optional[str] = None,
) -> tuple[list[ModelVersion], Optional[str]]:
    limit = _limit(max_results, VERSIONS_DEFAULT_MAX_RESULTS, VERSIONS_MAX_RESULTS)
    node = sf._parse(filter_string or None, _VERSIONS_GRAMMAR)
    order = sf._parse_order(order_by or ["last_updated_timestamp DESC", "name ASC", "version_number DESC"], _VERSIONS_GRAMMAR)
    d = _Dialect(session, ModelVersion)
    strings = {"name": RegisteredModel.name, "run_id": ModelVersion.run_uuid, "source_path": ModelVersion.source,
               "model_id": ModelVersion.model_id}
    numbers = {"version_number": ModelVersion.version, "creation_timestamp": ModelVersion.creation_time,
               "last_updated_timestamp": ModelVersion.last_update_time}

    def leaf(c: sf.Comparison, d: _Dialect):
        special = _prompt_leaf(c)
        if special is not None:
            return special
        if c.kind == sf.TAG:
            return exists(select(literal(1)).where(
                ModelVersionTag.model_version_id == ModelVersion.id, ModelVersionTag.key == c.key,
                d.compare_string(ModelVersionTag.value, c.op, c.value)))
        if c.key in numbers:
            return _numeric(numbers[c.key], c.op, c.value)
        return d.compare_string(strings[c.key], c.op, c.value)

    atoms: list[_Atom] = []
    keys = {ob.key for ob in order}
    for ob in order:
        expr = d.sort_string(RegisteredModel.name) if ob.key == "name" else numbers[ob.key]
        atoms.append(_Atom(expr, ob.ascending, False, str if ob.key == "name" else int))
    if "name" not in keys:
        atoms.append(_Atom(d.sort_string(RegisteredModel.name), True, False, str))
    if "version_number" not in keys:
        atoms.append(_Atom(ModelVersion.version, False, False, int))
    fingerprint = _fingerprint("model_versions", project_id, node, order)
    cursor = decode_page_token(v.require_str(page_token, "page_token"), fingerprint, atoms) if page_token else None
    stmt = (
        select(ModelVersion, *[a.expr.label(f"sort_{i}") for i, a in enumerate(atoms)])
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.registered_model_id)
        .where(RegisteredModel.project_id == project_id, ModelVersion.deleted.is_(False))
    )
    if node is not None:
        stmt = stmt.where(_compile(node, d, leaf))
    if not _queries_prompts(node):
        stmt = stmt.where(~_is_prompt(RegisteredModel.id))
    return _page(session, stmt, atoms, limit, fingerprint, cursor)
