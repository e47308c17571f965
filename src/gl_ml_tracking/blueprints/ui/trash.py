"""The trash: deleted experiments and runs, restore, and permanent deletion
(which removes their artifacts)."""
from __future__ import annotations

from flask import request

from ... import hooks as perms
from ...services import experiments as exp_service
from ...services import lookups
from ...services import runs as run_service
from ...services import trash as trash_service
from ...services import ui_queries as q
from .support import PageContext, add_page, done, render, settings

WRITE = perms.WRITE_MODEL_EXPERIMENTS


def register(bp) -> None:
    add_page(bp, "/ml/trash", "trash", trash_page)
    add_page(bp, "/ml/trash/experiments/<int:iid>/restore", "trash_restore_experiment", restore_experiment,
             write=WRITE)
    add_page(bp, "/ml/trash/experiments/<int:iid>/purge", "purge_experiment", purge_experiment, write=WRITE)
    add_page(bp, "/ml/trash/candidates/<int:iid>/restore", "trash_restore_run", restore_run, write=WRITE)
    add_page(bp, "/ml/trash/candidates/<int:iid>/purge", "purge_run", purge_run, write=WRITE)


def trash_page(ctx: PageContext):
    session = ctx.session
    size = settings().ui_page_size
    experiments = q.deleted_experiments_page(session, ctx.project_id, size, request.args.get("experiments_cursor"))
    runs = q.deleted_runs_page(session, ctx.project_id, size, request.args.get("runs_cursor"))
    counts = q.run_counts(session, ctx.project_id, [e.id for e in experiments.items])
    return render("trash.html", experiments=experiments, runs=runs, run_counts=counts)


def restore_experiment(ctx: PageContext, iid: int):
    experiment = q.find_experiment(ctx.session, ctx.project_id, iid)
    exp_service.restore_experiment(ctx.session, ctx.project_id, experiment.iid)
    return done(f"Experiment “{experiment.name}” restored.", "trash")


def purge_experiment(ctx: PageContext, iid: int):
    experiment = q.find_experiment(ctx.session, ctx.project_id, iid)
    name = experiment.name
    trash_service.purge_experiment(ctx.session, ctx.project_id, experiment)
    return done(f"Experiment “{name}” and its artifacts were deleted permanently.", "trash")


def restore_run(ctx: PageContext, iid: int):
    run = lookups.get_run_by_iid(ctx.session, ctx.project_id, iid)
    run_service.restore_run(ctx.session, ctx.project_id, run.run_uuid)
    return done(f"Run {iid} restored.", "trash")


def purge_run(ctx: PageContext, iid: int):
    run = lookups.get_run_by_iid(ctx.session, ctx.project_id, iid)
    trash_service.purge_run(ctx.session, ctx.project_id, run)
    return done(f"Run {iid} and its artifacts were deleted permanently.", "trash")
