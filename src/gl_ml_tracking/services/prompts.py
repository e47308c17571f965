"""Prompts for the pages: MLflow keeps a prompt as a registered model tagged
``mlflow.prompt.is_prompt = true``, each version's template in its ``mlflow.prompt.text``
tag (a string, or chat messages as JSON when ``_mlflow_prompt_type`` is ``chat``) and its
commit message as the description. The API needs nothing of this module: the MLflow
client's prompt calls are plain registry calls (``version_sources`` accepts their
placeholder source). The model pages leave prompts out, as MLflow's UI does.
"""
from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import ResourceDoesNotExist
from ..models import RegisteredModel, RegisteredModelTag
from .registered_models import get_registered_model
from .registry_describe import VersionView, describe_models, describe_versions
from .registry_search import search_model_versions, search_registered_models
from .version_sources import IS_PROMPT_TAG

__all__ = ["PromptVersion", "diff_lines", "get_prompt", "is_prompt", "list_prompts", "prompt_versions", "quoted",
           "user_tags", "version_template"]

PROMPT_TEXT_TAG = "mlflow.prompt.text"
PROMPT_TYPE_TAG = "_mlflow_prompt_type"
_PROMPT_FILTER = f"tags.`{IS_PROMPT_TAG}` = 'true'"
# Tags the client keeps for itself: not shown as the user's tags.
_INTERNAL_PREFIXES = ("mlflow.prompt.", "_mlflow_")


def quoted(text: str) -> str:
    """``text`` as a quoted string of the search grammar (which has no escapes)."""
    from ..errors import InvalidParameter

    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    raise InvalidParameter("Names holding both ' and \" cannot be searched for.")


def user_tags(tags: list) -> list:
    return [(k, val) for k, val in tags if not k.startswith(_INTERNAL_PREFIXES)]


def is_prompt(session: Session, model: RegisteredModel) -> bool:
    value = session.scalar(select(RegisteredModelTag.value).where(
        RegisteredModelTag.registered_model_id == model.id, RegisteredModelTag.key == IS_PROMPT_TAG))
    return str(value or "").lower() == "true"


def get_prompt(session: Session, project_id: str, name: Any) -> RegisteredModel:
    model = get_registered_model(session, project_id, name)
    if not is_prompt(session, model):
        raise ResourceDoesNotExist(f"Prompt with name={name} not found")
    return model


def list_prompts(session: Session, project_id: str, search: str, limit: int, page_token: Optional[str]):
    """(model views, next page token) of the project's prompts, newest first."""
    filter_string = _PROMPT_FILTER + (f" AND name ILIKE {quoted('%' + search + '%')}" if search else "")
    models, token = search_registered_models(session, project_id, filter_string, limit,
                                             ["last_updated_timestamp DESC"], page_token)
    return describe_models(session, models), token


@dataclass
class PromptVersion:
    view: VersionView
    template: str  # as stored; chat messages pretty-printed
    kind: str  # "text" or "chat"
    tags: list = field(default_factory=list)  # the user's tags only

    @property
    def number(self) -> int:
        return self.view.version.version


def _template(tags: dict) -> tuple[str, str]:
    text = tags.get(PROMPT_TEXT_TAG) or ""
    kind = tags.get(PROMPT_TYPE_TAG) or "text"
    if kind == "chat":
        try:
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            pass
    return text, kind


def prompt_versions(session: Session, project_id: str, model: RegisteredModel, limit: int,
                    page_token: Optional[str]) -> tuple[list[PromptVersion], Optional[str]]:
    versions, token = search_model_versions(
        session, project_id, f"name = {quoted(model.name)} AND {_PROMPT_FILTER}", limit, ["version_number DESC"],
        page_token)
    result = []
    for view in describe_versions(session, versions):
        template, kind = _template(dict(view.tags))
        result.append(PromptVersion(view, template, kind, user_tags(view.tags)))
    return result, token


def version_template(session: Session, project_id: str, model: RegisteredModel, number: Any) -> str:
    from .registered_models import get_model_version

    mv = get_model_version(session, project_id, model.name, number)
    view = describe_versions(session, [mv])[0]
    return _template(dict(view.tags))[0]


def diff_lines(old: str, new: str) -> list[tuple[str, str]]:
    """The lines of ``new`` against ``old``: ("same" | "added" | "removed", text)."""
    a, b = old.splitlines(), new.splitlines()
    out: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out += [("same", line) for line in a[i1:i2]]
            continue
        out += [("removed", line) for line in a[i1:i2]]
        out += [("added", line) for line in b[j1:j2]]
    return out
