"""MLflow 3's issues: problems found in an experiment's traces (create, get, update,
search). Search filters on ``status`` and ``source_run_id`` (= and !=), ordered by
severity (high first), then newest; page tokens are keyset cursors."""
from __future__ import annotations

import json
import uuid
from typing import Any, Optional

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from ..errors import InvalidParameter, ResourceDoesNotExist
from ..models import Experiment, TraceIssue
from ..search.grammar import ATTRIBUTE, Grammar
from ..search.keyset import Atom, Pager, fingerprint
from ..search.sql import Dialect, compile_filter
from . import lookups
from . import validation as v
from .common import now_ms

STATUSES = ("pending", "rejected", "resolved")
SEVERITIES = ("not_an_issue", "low", "medium", "high")  # lowest to highest
TOKEN_KIND = "issues"
DEFAULT_MAX_RESULTS = 100
_KEYS = {"status": TraceIssue.status, "source_run_id": TraceIssue.source_run_id}


class _IssueGrammar(Grammar):
    entities = {"attribute": ATTRIBUTE, "attributes": ATTRIBUTE}
    what = "issue filter"

    def resolve(self, sc, kind, key, start, *, for_order=False):
        if key not in _KEYS:
            raise sc.error(f"invalid issue key {key!r}; valid keys are {', '.join(sorted(_KEYS))}", start)
        return ATTRIBUTE, key

    def check(self, sc, kind, key, op, vkind, raw, start, vstart):
        if op not in ("=", "!="):
            raise sc.error(f"invalid comparator {op!r} for {key!r}; use = or !=", start)
        return self.string_value(sc, op, key, vkind, raw, start, vstart, "= !=")


_GRAMMAR = _IssueGrammar()


def _choice(value: Any, choices: tuple, name: str, default: Optional[str] = None) -> Optional[str]:
    if value is None or value == "":
        return default
    text = str(value).lower()
    if text not in choices:
        raise InvalidParameter(f"Invalid {name} {value!r}: expected one of {', '.join(choices)}.")
    return text


def _text(value: Any, name: str, limit: int, required: bool = False) -> Optional[str]:
    if value is None or value == "":
        if required:
            raise InvalidParameter(f"Missing value for required parameter '{name}'.")
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidParameter(f"Invalid value for '{name}': a string of at most {limit} characters.")
    return value


def _strings(value: Any, name: str) -> Optional[str]:
    items = value if isinstance(value, list) else [] if value is None else [value]
    if not all(isinstance(i, str) for i in items):
        raise InvalidParameter(f"Invalid value for '{name}': expected a list of strings.")
    return json.dumps(items) if items else None


def create(session: Session, project_id: str, args: dict) -> tuple[TraceIssue, int]:
    experiment = lookups.get_active_experiment(session, project_id, args.get("experiment_id"), with_tags=False)
    now = now_ms()
    issue = TraceIssue(
        project_id=project_id, issue_id="iss-" + uuid.uuid4().hex, experiment_id=experiment.id,
        name=_text(args.get("name"), "name", 250, required=True), description=_text(args.get("description"), "description", 100_000),
        status=_choice(args.get("status"), STATUSES, "status", "pending"), severity=_choice(args.get("severity"), SEVERITIES, "severity"),
        root_causes=_strings(args.get("root_causes"), "root_causes"), categories=_strings(args.get("categories"), "categories"),
        source_run_id=_text(args.get("source_run_id"), "source_run_id", 32), created_by=_text(args.get("created_by"), "created_by", 250),
        created_time=now, last_update_time=now,
    )
    session.add(issue)
    session.flush()
    return issue, experiment.iid


def get(session: Session, project_id: str, issue_id: Any) -> tuple[TraceIssue, int]:
    row = session.execute(
        select(TraceIssue, Experiment.iid).join(Experiment, Experiment.id == TraceIssue.experiment_id)
        .where(TraceIssue.project_id == project_id, TraceIssue.issue_id == str(issue_id))
    ).one_or_none()
    if row is None:
        raise ResourceDoesNotExist(f"Issue with ID '{issue_id}' not found.")
    return row[0], row[1]


def update(session: Session, project_id: str, issue_id: Any, args: dict) -> tuple[TraceIssue, int]:
    issue, iid = get(session, project_id, issue_id)
    if args.get("name"):
        issue.name = _text(args["name"], "name", 250)
    if args.get("description") is not None:
        issue.description = _text(args["description"], "description", 100_000)
    if args.get("status"):
        issue.status = _choice(args["status"], STATUSES, "status")
    if args.get("severity"):
        issue.severity = _choice(args["severity"], SEVERITIES, "severity")
    issue.last_update_time = now_ms()
    return issue, iid


def search(session: Session, project_id: str, experiment_id: Any, filter_string: Optional[str],
           max_results: Any, page_token: Optional[str]) -> tuple[list[tuple[TraceIssue, int]], Optional[str]]:
    limit = v.parse_int(max_results, "max_results", default=DEFAULT_MAX_RESULTS) or DEFAULT_MAX_RESULTS
    if limit < 1 or limit > 1000:
        raise InvalidParameter(f"Invalid value {max_results!r} for parameter 'max_results': it must be between 1 and 1000.")
    node = _GRAMMAR.parse_filter(filter_string or None)
    rank = case({s: i for i, s in enumerate(SEVERITIES)}, value=TraceIssue.severity, else_=-1)
    atoms = [Atom(rank, False, False, int), Atom(TraceIssue.created_time, False, False, int),
             Atom(TraceIssue.issue_id, False, False, str)]
    pager = Pager(TOKEN_KIND, atoms, page_token or None, fingerprint("issues", project_id, experiment_id, node))
    stmt = (select(TraceIssue).add_columns(Experiment.iid).join(Experiment, Experiment.id == TraceIssue.experiment_id)
            .where(TraceIssue.project_id == project_id))
    if experiment_id not in (None, ""):
        stmt = stmt.where(Experiment.iid == lookups.parse_experiment_iid(experiment_id))
    if node is not None:
        stmt = stmt.where(compile_filter(node, Dialect(session, TraceIssue), lambda c, d: d.compare_string(_KEYS[c.key], c.op, c.value)))
    page = pager.fetch(session, stmt, limit)
    iids = dict(session.execute(select(Experiment.id, Experiment.iid).where(
        Experiment.id.in_({i.experiment_id for i in page.items}))).all()) if page.items else {}
    return [(i, iids[i.experiment_id]) for i in page.items], page.next_cursor


def issue_json(issue: TraceIssue, experiment_iid: int) -> dict:
    out: dict = {
        "issue_id": issue.issue_id, "experiment_id": str(experiment_iid), "name": issue.name,
        "description": issue.description or "", "status": issue.status,
        "root_causes": json.loads(issue.root_causes) if issue.root_causes else [],
        "categories": json.loads(issue.categories) if issue.categories else [],
        "created_timestamp": issue.created_time, "last_updated_timestamp": issue.last_update_time,
    }
    for name in ("severity", "source_run_id", "created_by"):
        if getattr(issue, name):
            out[name] = getattr(issue, name)
    return out
