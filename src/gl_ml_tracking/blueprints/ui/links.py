"""Where MLflow's "View run at ..." links land.

After every run the MLflow client prints ``<tracking URI>/#/experiments/<id>/runs/<run_id>``.
The tracking URI's root redirects here (a browser keeps the ``#...`` fragment
across a redirect), and ``mlflow_link.js`` turns the fragment into our page:
the run, the experiment, or the experiments list.
"""
from __future__ import annotations

from flask import redirect, url_for

from ..services import runs as run_service
from .ui_support import load_page, render


def register(bp) -> None:
    bp.add_url_rule("/ml/mlflow-link", "mlflow_link", mlflow_link)
    bp.add_url_rule("/ml/runs/<run_id>", "run_by_id", run_by_id)


def mlflow_link():
    load_page()
    return render("mlflow_link.html")


def run_by_id(run_id: str):
    ctx = load_page()
    run = run_service.get_run(ctx.session, ctx.project_id, run_id)
    return redirect(url_for(".run", iid=run.iid))
