"""Which model-version sources ``model-versions/create`` accepts, as the MLflow server does.

MLflow's server (``_create_model_version`` and its ``_validate_source*`` helpers) accepts a
source when:

* the version is a prompt (tagged ``mlflow.prompt.is_prompt = true``) and the source is one
  of the client's placeholders (``dummy-source``, ``prompt-template``); nothing else;
* the URI does not make a server connect to a host it names (``http(s)``, ``ftp``, ``sftp``,
  ``hdfs``, ``viewfs``, ``r2``, ``b2``, ``abfss``, ``mlflow-artifacts://host``);
* it is no local path (a plain path, ``file:``): our runs never have local artifacts, so a
  local path can never be inside the run's or model's artifact directory;
* it has no relative segments (``..``, ``.``, NUL, after unquoting) and an absolute path;
* ``runs:/<run_id>/...`` names the ``run_id`` request parameter (the run need not exist);
* ``models:/<model_id>`` comes with that ``model_id`` request parameter;
* ``mlflow-artifacts:/...`` lies under the artifact root of the run (``run_id``) or logged
  model (``model_id``) the request names, which must exist (in this project);
* ``models:/<name>/<version|stage|latest>`` and ``models:/<name>@<alias>`` name a version of
  this project's registry that is no prompt; the source is stored as
  ``models:/<name>/<version>`` and inherits that version's ``run_id`` and ``model_id``.

Everything else (``s3://``, ``gs://``, ``dbfs:/``...) is stored as given. Whether a source's
files are *here* is a separate question (``model_versions``): only this project's runs and
logged models are ever looked up, so a stored reference never exposes another project.
"""
from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Callable, Optional
from urllib.parse import unquote, unquote_plus, urlparse, urlsplit

from ..errors import InvalidParameter

__all__ = [
    "IS_PROMPT_TAG",
    "PROMPT_SOURCES",
    "Lineage",
    "bad_source",
    "check_prompt_source",
    "check_source",
    "is_model_id",
    "parse_models_uri",
]

IS_PROMPT_TAG = "mlflow.prompt.is_prompt"
PROMPT_SOURCES = frozenset({"dummy-source", "prompt-template"})
HOST_ADDRESSED_SCHEMES = frozenset({"ftp", "sftp", "hdfs", "viewfs", "http", "https", "mlflow-artifacts",
                                    "r2", "b2", "abfss"})
_MODEL_ID_RE = re.compile(r"^m-[0-9a-f]{32}\Z")
_ARTIFACT_ROUTE = ("api", "2.0", "mlflow-artifacts", "artifacts")


@dataclass(frozen=True)
class Lineage:
    """A source after MLflow's rewriting, with the run and logged model it stands for."""

    source: str
    run_id: Optional[str]
    model_id: Optional[str]


def bad_source(source: str, detail: str) -> InvalidParameter:
    return InvalidParameter(f"Invalid model version source: '{source}'. {detail}")


def _not_contained(source: str, id_name: str) -> InvalidParameter:
    return bad_source(source, f"The {id_name} request parameter must identify the resource that contains the source.")


def is_model_id(value: str) -> bool:
    return bool(_MODEL_ID_RE.match(value or ""))


def check_prompt_source(source: str) -> None:
    if source not in PROMPT_SOURCES:
        raise InvalidParameter(f"Invalid prompt source: '{source}'. Prompt sources must use an MLflow placeholder.")


def _scheme(source: str) -> str:
    try:
        return urlparse(source).scheme.lower()
    except ValueError:
        raise bad_source(source, "It is not a valid URI.") from None


def _check_host_scheme(source: str) -> None:
    scheme = _scheme(source)
    if scheme not in HOST_ADDRESSED_SCHEMES:
        return
    if scheme == "mlflow-artifacts" and not urlparse(source).netloc:
        return  # resolved against this server
    raise InvalidParameter(
        f"'source' cannot use the '{scheme}' scheme: the '{scheme}' scheme addresses a host other than "
        "the tracking server's artifact storage, so the server would connect to the host named in the URI."
    )


def _is_local(source: str) -> bool:
    parsed = urlparse(source)
    if parsed.scheme == "":
        return True
    if parsed.scheme == "file":
        host = parsed.hostname or ""
        return not host or host == "." or host.startswith("localhost") or host.startswith("127.0.0.1")
    return False


def _check_relative_paths(source: str) -> None:
    unquoted = source
    while (step := unquote_plus(unquoted)) != unquoted:
        unquoted = step
    path = re.sub(r"/+", "/", urlparse(unquoted).path.rstrip("/"))
    if ("\x00" in path or any(part == ".." for part in unquoted.split("/"))
            or not path.startswith("/") or posixpath.normpath(path) != path):
        raise bad_source(
            source,
            "If supplying a source as an http, https, local file path, ftp, objectstore, or mlflow-artifacts "
            "uri, an absolute path must be provided without relative path references present. "
            "Please provide an absolute path.",
        )


def _parts(uri: str) -> tuple[str, str, tuple[str, ...]]:
    parsed = urlsplit(uri)
    parts = []
    for part in parsed.path.split("/"):
        while part and (step := unquote(part)) != part:
            part = step
        if part:
            parts.append(part)
    return parsed.scheme.lower(), parsed.netloc.lower(), tuple(parts)


def within(source: str, root: str) -> bool:
    s_scheme, s_host, s_parts = _parts(source)
    r_scheme, r_host, r_parts = _parts(root)
    return s_scheme == r_scheme and s_host == r_host and bool(r_parts) and s_parts[:len(r_parts)] == r_parts


def _is_artifact_source(source: str) -> bool:
    scheme, _, parts = _parts(source)
    if scheme == "mlflow-artifacts":
        return True
    n = len(_ARTIFACT_ROUTE)
    return scheme in ("http", "https") and any(parts[i:i + n] == _ARTIFACT_ROUTE for i in range(len(parts) - n + 1))


def parse_models_uri(source: str) -> tuple[Optional[str], Optional[str], Optional[str]]:
    """``models:/...`` as (model_id, name, ref): ``ref`` is a version, a stage, ``latest``
    or ``@alias``. Raises for a URI that is none of those."""
    parsed = urlparse(source)
    if parsed.netloc:
        raise bad_source(source, "Registered model sources must use the active model registry.")
    path = parsed.path.lstrip("/").rstrip("/")
    if not path:
        raise _not_contained(source, "model_id")
    if "/" not in path:
        if "@" in path:
            name, alias = path.split("@", 1)
            if name and alias:
                return None, name, "@" + alias
            raise _not_contained(source, "model_id")
        return path, None, None  # a logged model's id (MLflow 3)
    name, ref = path.rsplit("/", 1)
    if not name or not ref:
        raise _not_contained(source, "model_id")
    return None, name, ref


# Lookups the caller provides, scoped to its project: an artifact root, or None when the run
# (model) is not there.
RootLookup = Callable[[str], Optional[str]]


def check_source(source: str, run_id: Optional[str], model_id: Optional[str], *,
                 run_root: RootLookup, model_root: RootLookup) -> None:
    """Raise what MLflow raises for a (non-prompt) source; ``source``, ``run_id`` and
    ``model_id`` are those after the registry lineage was applied."""
    _check_host_scheme(source)
    id_name = "model_id" if model_id else "run_id"
    if _is_local(source):
        # Our runs and models never have local artifact roots: a local path is refused, with
        # MLflow's message for a named resource that is missing, and its other message else.
        if (model_id or run_id) and (model_root(model_id) if model_id else run_root(run_id)) is None:
            raise _not_contained(source, id_name)
        raise bad_source(
            source,
            f"To use a local path as a model version source, the {id_name} request parameter has to be "
            f"specified and the local path has to be contained within the artifact directory of the run "
            f"specified by the {id_name}.",
        )
    if urlparse(source).scheme == "file":
        # A file URI on another host: MLflow 3.17.2 fails on it with a 500 carrying this message;
        # the caller's mistake is a 400 here (we never answer 500).
        raise InvalidParameter(f"{source} is not a valid remote uri. For remote access on windows, please "
                               "consider using a different scheme such as SMB (e.g. smb://<hostname>/<path>).")
    _check_relative_paths(source)
    scheme = _scheme(source)
    if scheme == "runs":
        if model_id or urlparse(source).netloc:
            raise _not_contained(source, id_name)
        source_run = urlparse(source).path.lstrip("/").split("/", 1)[0]
        if not run_id or source_run != run_id:
            raise _not_contained(source, "run_id")
        return
    if scheme == "models":
        source_model_id, _name, _ref = parse_models_uri(source)
        if source_model_id is not None and source_model_id != model_id:
            raise _not_contained(source, "model_id")
        return
    if _is_artifact_source(source):
        root = (model_root(model_id) if model_id else run_root(run_id)) if (model_id or run_id) else None
        if root is None or not within(source, root):
            raise _not_contained(source, id_name)
