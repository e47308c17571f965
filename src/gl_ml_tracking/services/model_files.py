"""What the logged-model and model-version pages show of a model's files: where
they are (a package and a folder in it), one folder's entries, the small text
files a reader looks for (``MLmodel``, ``requirements.txt``, the environment),
and the signature read from ``MLmodel`` as table rows.

``MLmodel`` is YAML (read with ``yaml.safe_load``: plain data, never objects);
its ``signature`` holds JSON strings of column specs, as MLflow writes them.
Anything malformed shows as "no signature", never as an error page.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import InvalidParameter, ResourceDoesNotExist
from ..models import LoggedModel, ModelVersion, RegisteredModel
from . import artifacts
from . import packages as pkg
from .logged_models import artifact_location

MLMODEL = "MLmodel"
# Files shown inline (in this order) when the model has them.
KNOWN_FILES = ("MLmodel", "requirements.txt", "python_env.yaml", "conda.yaml", "registered_model_meta")
TEXT_LIMIT = 64 * 1024  # bytes of one shown file
MAX_ENTRIES = 500


@dataclass(frozen=True)
class FilesLocation:
    """A package and the folder in it that holds a model's files."""

    package_name: str
    version: str
    base: str  # '' for the package's root

    def path(self, relative: str) -> str:
        return "/".join(p for p in (self.base, relative.strip("/")) if p)


@dataclass
class SignatureColumn:
    name: str
    type: str
    required: bool = True


@dataclass
class Signature:
    inputs: list = field(default_factory=list)  # SignatureColumn
    outputs: list = field(default_factory=list)
    params: list = field(default_factory=list)


@dataclass
class ModelFiles:
    location: Optional[FilesLocation]
    directory: str = ""
    entries: list = field(default_factory=list)  # {"path", "is_dir", "file_size", "full_path"}
    shown: list = field(default_factory=list)  # (name, text, truncated)
    mlmodel: dict = field(default_factory=dict)  # the parsed MLmodel (plain data)
    signature: Optional[Signature] = None
    truncated: bool = False


def logged_model_location(session: Session, project_id: str, model: LoggedModel) -> FilesLocation:
    location = artifact_location(model.experiment.iid, model.model_id)
    name, version, base = artifacts.resolve_artifact_path(session, project_id, location[len("mlflow-artifacts:/"):])
    return FilesLocation(name, version, base)


def version_location(session: Session, project_id: str, mv: ModelVersion) -> Optional[FilesLocation]:
    """The version's own package (``<model name>``/``<version>``) when it has files, else
    the logged model it was registered from, else None."""
    own = pkg.find_package(session, project_id, mv.registered_model.name, str(mv.version))
    if own is not None and pkg.package_files(session, own, ""):
        return FilesLocation(mv.registered_model.name, str(mv.version), "")
    if mv.model_id:
        model = session.scalars(select(LoggedModel).where(
            LoggedModel.project_id == project_id, LoggedModel.model_id == mv.model_id)).one_or_none()
        if model is not None:
            return logged_model_location(session, project_id, model)
    return None


def _read_text(session: Session, project_id: str, location: FilesLocation, name: str) -> Optional[tuple[str, bool]]:
    """(text, truncated) of a small file, reading at most TEXT_LIMIT bytes; None if missing."""
    path = location.path(name)
    try:
        file = artifacts.get_artifact_file(session, project_id, location.package_name, location.version, path)
    except ResourceDoesNotExist:
        return None
    size = int(file.size)
    if not size:
        return "", False
    _file, chunks = artifacts.open_artifact(session, project_id, location.package_name, location.version, path,
                                            0, min(size, TEXT_LIMIT) - 1)
    raw = b"".join(chunks)[:TEXT_LIMIT]
    return raw.decode("utf-8", errors="replace"), size > TEXT_LIMIT


def _columns(raw: Any) -> list[SignatureColumn]:
    """Column specs of a signature part: a JSON string (or already a list) of
    ``{"name", "type", "required"}``, tensors as ``{"type": "tensor", "tensor-spec": {...}}``."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return []
    if not isinstance(raw, list):
        return []
    columns = []
    for i, spec in enumerate(raw):
        if not isinstance(spec, dict):
            continue
        kind = str(spec.get("type", ""))
        if kind == "tensor" and isinstance(spec.get("tensor-spec"), dict):
            tensor = spec["tensor-spec"]
            kind = f"tensor {tensor.get('dtype', '?')} {list(tensor.get('shape') or [])}"
        elif kind in ("array", "object", "map"):
            kind = f"{kind} {json.dumps({k: v for k, v in spec.items() if k not in ('name', 'type', 'required')})}"
        if "default" in spec:  # params
            kind = f"{kind} (default {json.dumps(spec['default'])})"
        columns.append(SignatureColumn(str(spec.get("name") or f"#{i}"), kind, bool(spec.get("required", True))))
    return columns


def parse_mlmodel(text: str) -> tuple[dict, Optional[Signature]]:
    """The parsed ``MLmodel`` document and its signature (None without one)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}, None
    if not isinstance(data, dict):
        return {}, None
    raw = data.get("signature")
    if not isinstance(raw, dict):
        return data, None
    signature = Signature(_columns(raw.get("inputs")), _columns(raw.get("outputs")), _columns(raw.get("params")))
    if not (signature.inputs or signature.outputs or signature.params):
        return data, None
    return data, signature


def gather(session: Session, project_id: str, location: Optional[FilesLocation], directory: str = "") -> ModelFiles:
    """One folder's entries, the known small files and the signature of the model at ``location``."""
    result = ModelFiles(location)
    if location is None:
        return result
    directory = pkg.validate_file_path(directory.strip("/"), allow_empty=True, what="path") if directory else ""
    result.directory = directory
    entries = artifacts.list_artifacts(session, project_id, location.package_name, location.version,
                                       location.path(directory))
    result.truncated = len(entries) > MAX_ENTRIES
    result.entries = [dict(e, full_path=f"{directory}/{e['path']}" if directory else e["path"])
                      for e in entries[:MAX_ENTRIES]]
    root_names = set()
    if directory:
        root_names = {e["path"] for e in artifacts.list_artifacts(
            session, project_id, location.package_name, location.version, location.path("")) if not e["is_dir"]}
    else:
        root_names = {e["path"] for e in entries if not e["is_dir"]}
    for name in KNOWN_FILES:
        if name not in root_names:
            continue
        found = _read_text(session, project_id, location, name)
        if found is None:
            continue
        text, cut = found
        result.shown.append((name, text, cut))
        if name == MLMODEL and not cut:
            result.mlmodel, result.signature = parse_mlmodel(text)
    return result


def versions_of_logged_model(session: Session, project_id: str, model_id: str) -> list[ModelVersion]:
    """The live registered versions made from a logged model, newest first."""
    return list(session.scalars(
        select(ModelVersion)
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.registered_model_id)
        .where(RegisteredModel.project_id == project_id, ModelVersion.model_id == model_id,
               ModelVersion.deleted.is_(False))
        .order_by(ModelVersion.creation_time.desc(), ModelVersion.id.desc())
        .limit(100)
    ))


def file_of(session: Session, project_id: str, location: Optional[FilesLocation], path: str):
    """The package file at ``path`` under the model's folder (ResourceDoesNotExist if none)."""
    if location is None:
        raise ResourceDoesNotExist("This model has no files.")
    path = pkg.validate_file_path((path or "").strip("/"), allow_empty=True, what="path")
    if not path:
        raise InvalidParameter("Missing value for required parameter 'path'.")
    return artifacts.get_artifact_file(session, project_id, location.package_name, location.version,
                                       location.path(path))
