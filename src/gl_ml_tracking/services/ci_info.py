"""A run's CI information for pages, and filters of runs by pipeline or by
merge request.

Runs store only ``ci_job_id`` (see ``ci_link``); everything else (job name
and status, pipeline, merge request, triggering user) comes from the host's
``ci_job_loader`` when a page is drawn, and which jobs belong to a pipeline,
a merge request or a branch comes from the host's ``ci_jobs_for``. CI data is
shown only to viewers with ``read_build`` on the project, as in GitLab.

For the pages (the runs table and the run page), call these inside a request:

    can_view_ci(project) -> bool
        May the current viewer see CI data (``read_build``)?
    ci_info_for_run(project, run) -> dict | None
        The CI panel's data, or None (not linked, job unknown, or not allowed).
    ci_info_for_runs(project, runs) -> dict[int, dict | None]
        The same for many runs, keyed by ``Run.id`` (the CI Job column); each
        job is loaded once per request.
    CiFilter.from_args(request.args) -> CiFilter
        Reads ``pipeline_id`` and ``merge_request_iid`` (InvalidParameter on a
        non-integer); ``.active`` says whether any was given.
    ci_filter_condition(project, pipeline_id=None, merge_request_iid=None)
            -> sqlalchemy condition | None
        None when no CI filter is asked; else a condition on ``Run.ci_job_id``
        to add with ``stmt.where(...)``: the runs of that pipeline and/or merge
        request. It matches nothing when the viewer lacks ``read_build`` or the
        host knows no such pipeline / merge request. ``CiFilter.condition(project)``
        is the same for a parsed filter.

Shape of the dict (URLs are what the host returned; any part may be None):

    {"job": {"id", "name", "status", "url"},
     "pipeline": {"id", "ref", "sha", "short_sha", "url"} | None,
     "merge_request": {"iid", "title", "url", "source_branch", "target_branch"} | None,
     "user": {"id", "username", "name", "url", "avatar_url"} | None}
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional

from flask import has_request_context, request
from sqlalchemy import and_, bindparam, false, select

from .. import access
from ..errors import InvalidParameter
from ..state import get_state
from ..hooks import READ_BUILD
from ..models import ACTIVE, Experiment, Run
from ..search.keyset import Atom, Pager, fingerprint
from .ci_link import resolve_job

log = logging.getLogger("gl_ml_tracking.ci")

# The most job ids taken from one ``ci_jobs_for`` answer (the newest ones:
# ids grow with time). A pipeline or merge request has far fewer; a branch
# may have many, and only its recent runs matter for a baseline.
MAX_JOB_IDS = 10_000
_MAX_ID = 2**63


def can_view_ci(project: Any) -> bool:
    return access.can(project, READ_BUILD)


# -- one job, as shown ----------------------------------------------------------------
def _job_cache() -> dict:
    # Per request (not per app context, which tests and hosts may keep open):
    # a runs table shows the same job on many rows and asks the host once.
    if has_request_context():
        return request.environ.setdefault("gl_ml_tracking.ci_jobs", {})
    return {}


def load_job(project: Any, job_id: Any, cache: Optional[dict] = None) -> Any:
    """The host's ``CiJob`` for ``job_id`` in ``project`` (None if unknown or of another project)."""
    cache = _job_cache() if cache is None else cache
    key = (str(project.id), str(job_id))
    if key not in cache:
        cache[key] = resolve_job(project, job_id)
    return cache[key]


def _attr(obj: Any, name: str) -> Any:
    return getattr(obj, name, None) if obj is not None else None


def job_info(job: Any) -> dict:
    """A ``CiJob`` (or any object with its attributes) as plain JSON-able data."""
    pipeline, mr, user = _attr(job, "pipeline"), _attr(job, "merge_request"), _attr(job, "user")
    sha = _attr(pipeline, "sha")
    return {
        "job": {"id": job.id, "name": _attr(job, "name"), "status": _attr(job, "status"), "url": _attr(job, "url")},
        "pipeline": None if pipeline is None else {
            "id": pipeline.id, "ref": _attr(pipeline, "ref"), "sha": sha,
            "short_sha": sha[:8] if isinstance(sha, str) else None, "url": _attr(pipeline, "url"),
        },
        "merge_request": None if mr is None else {
            "iid": mr.iid, "title": _attr(mr, "title"), "url": _attr(mr, "url"),
            "source_branch": _attr(mr, "source_branch"), "target_branch": _attr(mr, "target_branch"),
        },
        "user": None if user is None else {
            "id": _attr(user, "id"), "username": _attr(user, "username"), "name": _attr(user, "name"),
            "url": _attr(user, "url"), "avatar_url": _attr(user, "avatar_url"),
        },
    }


def ci_info_for_run(project: Any, run: Run) -> Optional[dict]:
    if run.ci_job_id is None or not can_view_ci(project):
        return None
    job = load_job(project, run.ci_job_id)
    return job_info(job) if job is not None else None


def ci_info_for_runs(project: Any, runs: Iterable[Run]) -> dict[int, Optional[dict]]:
    runs = list(runs)
    if not can_view_ci(project):
        return {run.id: None for run in runs}
    return {run.id: ci_info_for_run(project, run) for run in runs}


# -- which jobs belong to a pipeline, a merge request, a branch ------------------------
def clean_job_ids(raw: Optional[Iterable[Any]]) -> Optional[list[int]]:
    """The host's answer as distinct positive ints, newest (highest) first,
    at most ``MAX_JOB_IDS``; None stays None (unknown pipeline / MR)."""
    if raw is None:
        return None
    ids = set()
    for value in raw:
        try:
            job_id = int(str(value).strip())
        except (TypeError, ValueError):
            continue
        if 0 < job_id < _MAX_ID:
            ids.add(job_id)
    return sorted(ids, reverse=True)[:MAX_JOB_IDS]


def job_ids_for(project: Any, *, pipeline_id: Any = None, merge_request_iid: Any = None,
                ref: Optional[str] = None) -> Optional[list[int]]:
    """Ask the host's ``ci_jobs_for`` for one criterion; a failing hook counts as "unknown"."""
    given = {k: v for k, v in (("pipeline_id", pipeline_id), ("merge_request_iid", merge_request_iid), ("ref", ref))
             if v is not None}
    if len(given) != 1:
        raise ValueError("job_ids_for takes exactly one of pipeline_id, merge_request_iid, ref")
    try:
        raw = get_state().hook("ci_jobs_for")(project, **given)
    except Exception:  # a host bug must not break a page
        log.exception("ci_jobs_for failed for %s", given)
        return None
    return clean_job_ids(raw)


def job_id_condition(job_ids: list[int]):
    """``Run.ci_job_id IN (...)``, with the ints written into the SQL: a
    list of thousands of ids must not hit SQLite's limit on bound parameters
    (they are ints we parsed ourselves, so nothing can be injected)."""
    if not job_ids:
        return false()
    return Run.ci_job_id.in_(bindparam("ci_job_ids", value=list(job_ids), expanding=True,
                                       literal_execute=True, unique=True))


def ci_filter_condition(project: Any, pipeline_id: Optional[int] = None, merge_request_iid: Optional[int] = None):
    if pipeline_id is None and merge_request_iid is None:
        return None
    if not can_view_ci(project):
        return false()
    conditions = []
    if pipeline_id is not None:
        conditions.append(job_id_condition(job_ids_for(project, pipeline_id=pipeline_id) or []))
    if merge_request_iid is not None:
        conditions.append(job_id_condition(job_ids_for(project, merge_request_iid=merge_request_iid) or []))
    return and_(*conditions) if len(conditions) > 1 else conditions[0]


def _positive_int(args: Mapping[str, Any], name: str) -> Optional[int]:
    raw = args.get(name)
    if raw is None or str(raw).strip() == "":
        return None
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise InvalidParameter(f"'{name}' must be a positive integer, got {str(raw)[:50]!r}.") from None
    if not 0 < value < _MAX_ID:
        raise InvalidParameter(f"'{name}' must be a positive integer, got {value}.")
    return value


@dataclass(frozen=True)
class CiFilter:
    pipeline_id: Optional[int] = None
    merge_request_iid: Optional[int] = None

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> "CiFilter":
        return cls(_positive_int(args, "pipeline_id"), _positive_int(args, "merge_request_iid"))

    @property
    def active(self) -> bool:
        return self.pipeline_id is not None or self.merge_request_iid is not None

    def condition(self, project: Any):
        return ci_filter_condition(project, self.pipeline_id, self.merge_request_iid)

    def query_args(self) -> dict:
        """For links that keep the filter (``url_for(..., **f.query_args())``)."""
        return {k: v for k, v in (("pipeline_id", self.pipeline_id), ("merge_request_iid", self.merge_request_iid))
                if v is not None}


# -- runs of a pipeline / merge request, for the JSON endpoint ------------------------
CI_RUNS_TOKEN_KIND = "ci-runs"


def runs_for_ci_filter(session: Any, project: Any, project_id: str, ci_filter: CiFilter,
                       experiment_iid: Optional[int] = None, max_results: int = 100,
                       page_token: Optional[str] = None) -> tuple[list[Run], Optional[str]]:
    """Active runs matching ``ci_filter`` (and one experiment, if given), newest
    first; returns the page and the signed token of the next one (None on the last
    page). A token that is not one this filter handed out is InvalidParameter."""
    pager = Pager(CI_RUNS_TOKEN_KIND, [Atom(Run.id, False, False, int)], page_token,
                  fingerprint("ci-runs", project_id, ci_filter, experiment_iid),
                  arguments="pipeline_id, merge_request_iid or experiment_id")
    stmt = select(Run).where(Run.project_id == project_id, Run.lifecycle_stage == ACTIVE, ci_filter.condition(project))
    if experiment_iid is not None:
        stmt = stmt.join(Experiment, Experiment.id == Run.experiment_id).where(
            Experiment.project_id == project_id, Experiment.iid == experiment_iid)
    page = pager.fetch(session, stmt, max_results)
    return page.items, page.next_cursor
