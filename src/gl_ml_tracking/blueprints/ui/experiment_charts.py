"""The experiment page's charts panel (templates ``_experiment_charts.html``,
``static/charts_panel.js``): its two JSON endpoints.

* ``curves.json?key=<metric>&runs=1,2,3[&points=&start=&end=]``: per-step curves of
  one metric for up to 100 runs, downsampled on the server (``services.run_curves``);
* ``run-values.json?runs=1,2,3``: parameters and latest metrics of the runs, with
  each metric's default direction (scatter, parallel coordinates, "best").

Both answer as the run page's chart data does: the pages' permission checks,
errors as MLflow's JSON (``runs.CHART_DATA``).
"""
from __future__ import annotations

from flask import jsonify, request

from ...services import metric_direction, run_curves
from ...services import ui_queries as q
from .runs import CHART_DATA
from .support import PageContext, add_page


def register(bp) -> None:
    add_page(bp, "/ml/experiments/<int:iid>/curves.json", "experiment_curves", curves_json, surface=CHART_DATA)
    add_page(bp, "/ml/experiments/<int:iid>/run-values.json", "experiment_run_values", run_values_json,
             surface=CHART_DATA)


def _json(payload: dict):
    response = jsonify(payload)
    response.headers["Cache-Control"] = "private, no-cache"
    return response


def curves_json(ctx: PageContext, iid: int):
    experiment = q.find_experiment(ctx.session, ctx.project_id, iid)
    args = run_curves.parse_curve_args(request.args.get("key"), request.args.getlist("runs"),
                                       request.args.get("points"), request.args.get("start"), request.args.get("end"))
    return _json(run_curves.curves(ctx.session, ctx.project_id, experiment.id, args))


def run_values_json(ctx: PageContext, iid: int):
    experiment = q.find_experiment(ctx.session, ctx.project_id, iid)
    iids = run_curves.parse_iids(request.args.getlist("runs"), limit=run_curves.MAX_VALUE_RUNS)
    payload = run_curves.run_values(ctx.session, ctx.project_id, experiment.id, iids)
    payload["directions"] = metric_direction.directions(payload["metrics"])
    return _json(payload)
