"""The trash: deleted experiments and runs, restore, and permanent deletion
(which removes their artifacts)."""
from __future__ import annotations

from flask import request

from .. import hooks as perms
from ..services import experiments as exp_service
from ..services import runs as run_service
from ..services import trash as trash_service
from ..services import ui_queries as q
from .ui_support import commit_or_rollback, settings, done, load_page, load_write_page, render


def register(bp) -> None:
    bp.add_url_rule("/ml/trash", "trash", trash_page)
    bp.add_url_rule("/ml/trash/experiments/<int:iid>/restore", "trash_restore_experiment", restore_experiment,
                    methods=["POST"])
    bp.add_url_rule("/ml/trash/experiments/<int:iid>/purge", "purge_experiment", purge_experiment, methods=["POST"])
    bp.add_url_rule("/ml/trash/candidates/<int:iid>/restore", "trash_restore_run", restore_run, methods=["POST"])
    bp.add_url_rule("/ml/trash/candidates/<int:iid>/purge", "purge_run", purge_run, methods=["POST"])


def trash_page():
    ctx = load_page()
    session = ctx.session
    size = settings().ui_page_size
    experiments = q.deleted_experiments_page(session, ctx.project_id, size, request.args.get("experiments_cursor"))
    runs = q.deleted_runs_page(session, ctx.project_id, size, request.args.get("runs_cursor"))
    counts = q.run_counts(session, ctx.project_id, [e.id for e in experiments.items])
    return render("trash.html", experiments=experiments, runs=runs, run_counts=counts)


def restore_experiment(iid: int):
    ctx = load_write_page(perms.WRITE_MODEL_EXPERIMENTS)
    experiment = q.find_experiment(ctx.session, ctx.project_id, iid)
    commit_or_rollback(lambda: exp_service.restore_experiment(ctx.session, ctx.project_id, experiment.iid))
    return done(f"Experiment “{experiment.name}” restored.", "trash")


def purge_experiment(iid: int):
    ctx = load_write_page(perms.WRITE_MODEL_EXPERIMENTS)
    experiment = q.find_experiment(ctx.session, ctx.project_id, iid)
    name = experiment.name
    commit_or_rollback(lambda: trash_service.purge_experiment(ctx.session, ctx.project_id, experiment))
    return done(f"Experiment “{name}” and its artifacts were deleted permanently.", "trash")


def restore_run(iid: int):
    ctx = load_write_page(perms.WRITE_MODEL_EXPERIMENTS)
    run = q.find_run(ctx.session, ctx.project_id, iid)
    commit_or_rollback(lambda: run_service.restore_run(ctx.session, ctx.project_id, run.run_uuid))
    return done(f"Run {iid} restored.", "trash")


def purge_run(iid: int):
    ctx = load_write_page(perms.WRITE_MODEL_EXPERIMENTS)
    run = q.find_run(ctx.session, ctx.project_id, iid)
    commit_or_rollback(lambda: trash_service.purge_run(ctx.session, ctx.project_id, run))
    return done(f"Run {iid} and its artifacts were deleted permanently.", "trash")
