"""Where MLflow's "View run at ..." links land.

After every run the MLflow client prints ``<tracking URI>/#/experiments/<id>/runs/<run_id>``.
The tracking URI's root redirects here (a browser keeps the ``#...`` fragment
across a redirect), and ``mlflow_link.js`` turns the fragment into our page:
the run, the experiment, or the experiments list.
"""
from __future__ import annotations

from flask import redirect, url_for

from ...services import lookups
from .support import PageContext, add_page, render


def register(bp) -> None:
    add_page(bp, "/ml/mlflow-link", "mlflow_link", mlflow_link)
    add_page(bp, "/ml/runs/<run_id>", "run_by_id", run_by_id)


def mlflow_link(ctx: PageContext):
    return render("mlflow_link.html")


def run_by_id(ctx: PageContext, run_id: str):
    run = lookups.get_run(ctx.session, ctx.project_id, run_id)
    return redirect(url_for(".run", iid=run.iid))
