"""What a merge request's pipelines logged, and how each metric moved against
the target branch, so a reviewer sees at a glance whether the model got better.

Definitions (also in docs/CI.md):

- **MR runs**: the project's active (not deleted) runs linked to a job that
  the host's ``ci_jobs_for(project, merge_request_iid=iid)`` lists, newest
  first, at most ``MAX_RUNS`` (``truncated`` says when more exist).
- **Target-branch runs**: active runs linked to a job that
  ``ci_jobs_for(project, ref=<target branch>)`` lists, i.e. jobs of branch
  pipelines on the MR's target branch (the MR's own jobs are excluded).
  The target branch is read from the MR as the host's ``ci_job_loader``
  describes it (``CiJob.merge_request.target_branch``).
- **Baseline** of an experiment: among its target-branch runs with status
  FINISHED, the one that ended last (highest ``end_time``; then highest
  ``start_time``; then the newest run). Running, failed and killed runs are
  never baselines. Each MR run is compared with the baseline of its own
  experiment.
- **Metric values** are the runs' summary values (MLflow's rule: the value at
  the highest step). For every metric of the MR run or of the baseline:
  ``delta = value - baseline`` and ``relative_delta = delta / |baseline|``,
  both None when either side is missing or not finite (or, for the relative
  one, when the baseline is 0).
- **Verdict**: whether the change is better, worse or unchanged, from the
  metric's goal, guessed from its name: names with a token such as ``loss``,
  ``error``, ``mse``, ``rmse``, ``mae`` are minimised; ``acc``, ``accuracy``,
  ``precision``, ``recall``, ``f1``, ``auc``, ``r2``... maximised; otherwise
  ``unknown``. An experiment tag ``gitlab.metric_goal.<metric>`` set to
  ``minimize`` or ``maximize`` overrides the guess.
- **Missing baselines** say why in ``baseline_missing_reason``:
  ``target_branch_unknown`` (the host gave no target branch),
  ``no_target_branch_jobs`` (the host lists no jobs on that branch), or
  ``no_finished_run_on_target_branch`` (jobs exist, but none of them logged
  a FINISHED run in this experiment).

The result is plain JSON-able data; the blueprint adds URLs.
"""
from __future__ import annotations

import math
import re
from collections import OrderedDict
from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import ResourceDoesNotExist
from ..models import ACTIVE, Experiment, LatestMetric, Run
from . import ci_info

# The most MR runs in one view (a hyperparameter sweep can log many).
MAX_RUNS = 500
# At most this many jobs are asked about to learn the MR's title and target branch.
MAX_JOBS_PROBED_FOR_MR = 5
GOAL_TAG_PREFIX = "gitlab.metric_goal."

_MINIMIZE = frozenset({
    "loss", "error", "err", "errors", "mse", "rmse", "mae", "mape", "smape", "msle", "rmsle",
    "logloss", "nll", "perplexity", "ppl", "wer", "cer", "ter", "fpr", "fnr", "latency",
    "distance", "divergence", "kl", "regret", "cost",
})
_MAXIMIZE = frozenset({
    "acc", "accuracy", "precision", "recall", "f1", "fbeta", "auc", "roc", "auroc", "auprc", "ap", "map",
    "r2", "ndcg", "mrr", "bleu", "rouge", "meteor", "iou", "miou", "dice", "top1", "top5",
    "tpr", "tnr", "specificity", "sensitivity", "kappa", "mcc", "reward", "return", "score",
})
_TOKEN = re.compile(r"[a-z0-9]+")


def metric_goal(key: str, experiment_tags: Optional[dict] = None) -> Optional[str]:
    """``"minimize"``, ``"maximize"`` or None (unknown)."""
    override = (experiment_tags or {}).get(GOAL_TAG_PREFIX + key)
    if override in ("minimize", "maximize"):
        return override
    tokens = _TOKEN.findall(key.lower())
    if any(t in _MINIMIZE for t in tokens):
        return "minimize"
    if any(t in _MAXIMIZE for t in tokens):
        return "maximize"
    return None


def value_out(value: Optional[float]) -> Any:
    """A metric value for JSON: non-finite values as MLflow writes them."""
    if value is None:
        return None
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _finite(value: Optional[float]) -> bool:
    return value is not None and math.isfinite(value)


def metric_delta(key: str, value: Optional[float], baseline: Optional[float], goal: Optional[str]) -> dict:
    """One metric of an MR run against the baseline; None = not logged on that side."""
    delta = relative = None
    if _finite(value) and _finite(baseline):
        delta = value - baseline
        relative = delta / abs(baseline) if baseline != 0 else None
        # Huge opposite values can overflow to inf, which JSON cannot carry.
        delta = delta if _finite(delta) else None
        relative = relative if delta is not None and _finite(relative) else None
    if delta is None:
        verdict = "unknown"
    elif delta == 0:
        verdict = "unchanged"
    elif goal is None:
        verdict = "unknown"
    else:
        verdict = "better" if (delta < 0) == (goal == "minimize") else "worse"
    return {
        "key": key,
        "value": value_out(value),
        "baseline": value_out(baseline),
        "delta": delta,
        "relative_delta": relative,
        "goal": goal,
        "verdict": verdict,
    }


def _latest_metrics(session: Session, run_pks: list[int]) -> dict[int, dict[str, Optional[float]]]:
    """Summary values per run; NaN comes back as float('nan')."""
    found: dict[int, dict[str, Optional[float]]] = {pk: {} for pk in run_pks}
    if not run_pks:
        return found
    rows = session.execute(
        select(LatestMetric.run_id, LatestMetric.key, LatestMetric.value, LatestMetric.is_nan)
        .where(LatestMetric.run_id.in_(run_pks))
    )
    for run_pk, key, value, is_nan in rows:
        found[run_pk][key] = math.nan if is_nan or value is None else float(value)
    return found


def _mr_runs(session: Session, project_id: str, job_ids: list[int]) -> tuple[list[Run], bool]:
    if not job_ids:
        return [], False
    runs = session.scalars(
        select(Run)
        .where(Run.project_id == project_id, Run.lifecycle_stage == ACTIVE, ci_info.job_id_condition(job_ids))
        .order_by(Run.start_time.desc(), Run.id.desc())
        .limit(MAX_RUNS + 1)
    ).all()
    return list(runs[:MAX_RUNS]), len(runs) > MAX_RUNS


def _baseline(session: Session, project_id: str, experiment_pk: int, job_ids: list[int]) -> Optional[Run]:
    return session.scalars(
        select(Run)
        .where(
            Run.project_id == project_id,
            Run.experiment_id == experiment_pk,
            Run.lifecycle_stage == ACTIVE,
            Run.status == "FINISHED",
            ci_info.job_id_condition(job_ids),
        )
        # NULL end times last on both databases (a FINISHED run nearly always has one).
        .order_by(Run.end_time.is_(None), Run.end_time.desc(), Run.start_time.desc(), Run.id.desc())
        .limit(1)
    ).first()


def _merge_request_info(project: Any, iid: int, job_ids: list[int], cache: dict) -> dict:
    """Title, URL and branches, as the host describes the MR on its jobs."""
    for job_id in job_ids[:MAX_JOBS_PROBED_FOR_MR]:
        job = ci_info.load_job(project, job_id, cache)
        mr = getattr(job, "merge_request", None) if job is not None else None
        if mr is not None and str(mr.iid) == str(iid):
            return ci_info.job_info(job)["merge_request"]
    return {"iid": iid, "title": None, "url": None, "source_branch": None, "target_branch": None}


def _run_summary(run: Run, project: Any, cache: dict) -> dict:
    job = ci_info.load_job(project, run.ci_job_id, cache) if run.ci_job_id is not None else None
    return {
        "run_id": run.run_uuid,
        "run_iid": run.iid,
        "name": run.name,
        "status": run.status,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "experiment_id": str(run.experiment.iid),
        "ci": ci_info.job_info(job) if job is not None else None,
    }


def _compare(run_metrics: dict, base_metrics: Optional[dict], tags: dict) -> list[dict]:
    base_metrics = base_metrics or {}
    return [metric_delta(key, run_metrics.get(key), base_metrics.get(key), metric_goal(key, tags))
            for key in sorted(set(run_metrics) | set(base_metrics))]


def merge_request_view(session: Session, project: Any, project_id: str, iid: int) -> dict:
    """The merge request's runs grouped by experiment, each with its metric
    deltas against the experiment's baseline. Raises ``ResourceDoesNotExist``
    when the host does not know the merge request."""
    job_ids = ci_info.job_ids_for(project, merge_request_iid=iid)
    if job_ids is None:
        raise ResourceDoesNotExist(f"Merge request !{iid} not found, or the host gives no CI jobs for it.")
    cache: dict = {}
    mr = _merge_request_info(project, iid, job_ids, cache)
    runs, truncated = _mr_runs(session, project_id, job_ids)

    target = mr.get("target_branch")
    target_job_ids: Optional[list[int]] = None
    if target:
        mr_jobs = set(job_ids)
        target_job_ids = [j for j in (ci_info.job_ids_for(project, ref=target) or []) if j not in mr_jobs]

    groups: "OrderedDict[int, dict]" = OrderedDict()
    baselines: dict[int, Optional[Run]] = {}
    for run in runs:
        experiment: Experiment = run.experiment
        if experiment.id in groups:
            continue
        if not target:
            reason, base = "target_branch_unknown", None
        elif not target_job_ids:
            reason, base = "no_target_branch_jobs", None
        else:
            base = _baseline(session, project_id, experiment.id, target_job_ids)
            reason = None if base is not None else "no_finished_run_on_target_branch"
        baselines[experiment.id] = base
        groups[experiment.id] = {
            "experiment_id": str(experiment.iid),
            "name": experiment.name,
            "baseline": _run_summary(base, project, cache) if base is not None else None,
            "baseline_missing_reason": reason,
            "runs": [],
        }

    metric_rows = _latest_metrics(
        session, [r.id for r in runs] + [b.id for b in baselines.values() if b is not None])
    for run in runs:
        group = groups[run.experiment_id]
        base = baselines[run.experiment_id]
        tags = {t.key: t.value for t in run.experiment.tags}
        entry = _run_summary(run, project, cache)
        entry["metrics"] = _compare(metric_rows[run.id], metric_rows[base.id] if base is not None else None, tags)
        group["runs"].append(entry)
    for experiment_pk, group in groups.items():
        base = baselines[experiment_pk]
        if group["baseline"] is not None:
            group["baseline"]["metrics"] = [
                {"key": k, "value": value_out(v)} for k, v in sorted(metric_rows[base.id].items())]

    return {
        "project": {"id": project_id, "full_path": getattr(project, "full_path", None)},
        "merge_request": mr,
        "target_branch": target,
        "run_count": len(runs),
        "truncated": truncated,
        "experiments": list(groups.values()),
    }
