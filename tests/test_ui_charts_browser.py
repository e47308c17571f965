"""The experiment charts panel, the compare page's "best", the logged-model and
model-version pages in real headless Chromium (Playwright), at 1400 and 400 px,
on SQLite and PostgreSQL. Screenshots go to ``tests/screenshots/<db>/``.

Any JavaScript dialog, script error or failed request fails the test (the
``Watcher`` of the browser tests)."""
from __future__ import annotations

import os
import re
import uuid

import pytest

from tests.support.charts_seed import log_signature_model, seed_sweep
from tests.support.liveserver import build_app, migrate_and_seed, serve
from tests.support.ui_seed import mlflow_env
from tests.support.browser import CHROMIUM

pytestmark = pytest.mark.browser
P = "/demo/mnist/-"
WIDE, NARROW = 1400, 400
PAGE_WIDTH = 1400  # make_page's default width here


@pytest.fixture(scope="module")
def live(database_url, db_kind, tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    app = build_app(database_url, str(tmp_path_factory.mktemp("storage")))
    migrate_and_seed(app)
    forge = serve(app)
    sweep = seed_sweep(forge)
    sweep.model_id, sweep.model_run_iid = log_signature_model(forge, sweep.experiment_iid)
    forge.extra.update(sweep=sweep, db=db_kind)
    yield forge
    forge.stop()
    with app.app_context():
        from gl_ml_tracking import get_state

        get_state(app).db.engine.dispose()


@pytest.fixture(scope="module")
def sweep(live):
    return live.extra["sweep"]


def open_experiment(page, sweep):
    page.goto(f"{P}/ml/experiments/{sweep.experiment_iid}")
    page.wait_for_selector("[data-charts-panel][data-ready=true]")
    wait_curves(page)


def wait_curves(page):
    page.wait_for_function(
        "() => { const c = [...document.querySelectorAll('[data-testid=curve-chart] .glml-chart')];"
        " return c.length > 0 && c.every(e => ['drawn', 'message'].includes(e.getAttribute('data-state'))); }")


def row_colours(page) -> dict:
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll(
        '[data-testid=runs-table] tbody tr[data-run-iid]')].map(r => [r.dataset.runIid,
        r.querySelector('[data-testid=run-swatch]').dataset.color]))""")


def legend(page, metric: str) -> dict:
    return page.evaluate("""(metric) => Object.fromEntries([...document.querySelectorAll(
        `[data-testid=curve-chart][data-metric="${metric}"] [data-legend-iid]`)].map(i => [i.dataset.legendIid,
        {color: i.dataset.color, best: i.dataset.best === 'true'}]))""", metric)


def stroke_colours(page, metric: str) -> set:
    return set(page.evaluate("""(metric) => [...document.querySelectorAll(
        `[data-testid=curve-chart][data-metric="${metric}"] path.glml-series`)].map(p => p.getAttribute('stroke'))""",
                             metric))


def best_iid(page, metric: str) -> str:
    return [iid for iid, item in legend(page, metric).items() if item["best"]][0]


def by_name(sweep, name: str) -> str:
    return str([r[0] for r in sweep.runs if r[2] == name][0])


# --------------------------------------------------------------------------- curves
def test_curves_for_the_page_then_the_selected_runs_in_the_rows_colours(make_page, shot, sweep):
    page = make_page()
    open_experiment(page, sweep)
    colours = row_colours(page)
    assert len(colours) == len(sweep.runs) + 2 and len(set(colours.values())) == len(colours)  # 10 rows, 10 colours
    assert {c.get_attribute("data-metric") for c in page.locator("[data-testid=curve-chart]").all()} == {
        "loss", "accuracy"}
    items = legend(page, "loss")
    assert set(items) == set(colours) and all(items[i]["color"] == colours[i] for i in items)
    assert stroke_colours(page, "loss") >= {colours[str(r[0])] for r in sweep.runs}
    shot(page, "charts-curves-page-runs")

    chosen = [str(r[0]) for r in sweep.runs[2:5]]
    for iid in chosen:
        page.check(f"[data-run-select][value='{iid}']")
    page.wait_for_function("() => document.querySelector('[data-charts-panel]').dataset.runCount === '3'")
    wait_curves(page)
    page.wait_for_function("() => document.querySelectorAll("
                           "'[data-testid=curve-chart][data-metric=loss] [data-legend-iid]').length === 3")
    items = legend(page, "loss")
    assert sorted(items) == sorted(chosen) and all(items[i]["color"] == colours[i] for i in chosen)
    assert stroke_colours(page, "loss") == {colours[i] for i in chosen}
    assert "3 selected runs" in page.inner_text("[data-testid=charts-scope]")
    # hover: the tooltip lists the runs' values at the step under the pointer
    overlay = page.locator("[data-testid=curve-chart][data-metric=loss] svg .glml-overlay")
    overlay.scroll_into_view_if_needed()
    box = overlay.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    tooltip = page.locator("[data-testid=curve-chart][data-metric=loss] .glml-chart-tooltip")
    assert tooltip.is_visible() and "trial-3 #" in tooltip.inner_text()
    shot(page, "charts-curves-selected")


def test_curves_zoom_log_scale_and_metric_choice(make_page, sweep):
    page = make_page()
    open_experiment(page, sweep)
    chart = page.locator("[data-testid=curve-chart][data-metric=loss] .glml-chart")
    before = int(chart.locator("svg").get_attribute("data-point-count"))
    chart.scroll_into_view_if_needed()
    box = chart.locator(".glml-overlay").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + 40)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + 40, steps=5)
    page.mouse.up()
    page.wait_for_selector("[data-testid=curve-chart][data-metric=loss] .glml-chart-reset")
    wait_curves(page)
    assert int(chart.locator("svg").get_attribute("data-point-count")) < before
    page.dblclick("[data-testid=curve-chart][data-metric=loss] .glml-overlay")
    page.wait_for_function("(n) => +document.querySelector('[data-testid=curve-chart][data-metric=loss] svg')"
                           ".getAttribute('data-point-count') === n", arg=before)

    labels = lambda: chart.locator(".glml-axis-y text").evaluate_all("t => t.map(x => x.textContent)")  # noqa: E731
    linear = labels()
    page.check("[data-testid=curves-log]")
    assert labels() != linear and all(re.fullmatch(r"[0-9.e+-]+", t) for t in labels())

    page.click("[data-testid=curve-metrics] summary")
    page.uncheck("[data-metric-choice=accuracy]")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=curve-chart]').length === 1")
    page.reload()  # the choice of metrics and the log scale are remembered
    page.wait_for_selector("[data-charts-panel][data-ready=true]")
    wait_curves(page)
    assert page.locator("[data-testid=curve-chart]").count() == 1
    assert page.is_checked("[data-testid=curves-log]")


def test_nan_and_infinite_points_are_left_out_and_counted(make_page, shot, sweep):
    page = make_page()
    page.goto(f"{P}/ml/experiments/{sweep.experiment_iid}")
    page.wait_for_selector("[data-charts-panel][data-ready=true]")
    page.check(f"[data-run-select][value='{sweep.nan_run_iid}']")
    page.wait_for_function("() => document.querySelector('[data-charts-panel]').dataset.runCount === '1'")
    page.wait_for_function("() => /not drawn/.test(document.querySelector("
                           "'[data-testid=curve-chart][data-metric=loss]').innerText)")
    wait_curves(page)
    loss = page.locator("[data-testid=curve-chart][data-metric=loss]")
    assert "3 NaN or infinite values are not drawn." in loss.inner_text()
    assert loss.locator("path.glml-series").get_attribute("data-points") == "5"
    accuracy = page.locator("[data-testid=curve-chart][data-metric=accuracy]")
    assert "1 NaN or infinite value is not drawn." in accuracy.inner_text()
    shot(page, "charts-nan-inf")


def test_direction_toggle_moves_the_best_run_and_is_remembered(make_page, sweep):
    page = make_page()
    open_experiment(page, sweep)
    assert best_iid(page, "loss") == by_name(sweep, "trial-7")  # lowest loss
    assert best_iid(page, "accuracy") == str(max(sweep.runs, key=lambda r: r[5])[0])
    toggle = page.locator("[data-testid=curve-chart][data-metric=loss] [data-testid=curve-direction]")
    assert toggle.get_attribute("data-direction") == "min"
    toggle.click()
    page.wait_for_function("() => document.querySelector('[data-testid=curve-chart][data-metric=loss] "
                           "[data-testid=curve-direction]').dataset.direction === 'max'")
    assert best_iid(page, "loss") == by_name(sweep, "trial-0")  # now the highest
    page.reload()
    page.wait_for_selector("[data-charts-panel][data-ready=true]")
    wait_curves(page)
    page.wait_for_selector("[data-testid=curve-chart][data-metric=loss] [data-best=true]")
    assert best_iid(page, "loss") == by_name(sweep, "trial-0")
    # the compare page follows the same remembered direction
    runs = ",".join(str(r[0]) for r in sweep.runs[:3])
    page.goto(f"{P}/ml/experiments/{sweep.experiment_iid}/compare?runs={runs}")
    best_cell = "tr[data-metric=loss] td.glml-best"
    page.wait_for_function("() => document.querySelector('tr[data-metric=loss]').dataset.direction === 'max'")
    assert page.locator(best_cell).get_attribute("data-value") == str(sweep.runs[0][4])
    page.click("tr[data-metric=loss] [data-direction-toggle]")
    assert page.locator(best_cell).get_attribute("data-value") == str(sweep.runs[2][4])
    assert page.inner_text("tr[data-metric=loss] [data-direction-toggle]") == "lower is better"


def test_compare_page_colours_and_best(make_page, shot, sweep):
    page = make_page()
    runs = [r[0] for r in sweep.runs[:4]]
    page.goto(f"{P}/ml/experiments/{sweep.experiment_iid}/compare?runs=" + ",".join(map(str, runs)))
    page.wait_for_selector("th[data-run-index] [data-testid=run-swatch]")
    colours = page.locator("th[data-run-index] [data-testid=run-swatch]").evaluate_all(
        "s => s.map(x => getComputedStyle(x).backgroundColor)")
    assert len(set(colours)) == 4
    # the loss row marks the lowest value, the accuracy row the highest
    assert page.locator("tr[data-metric=loss] td.glml-best").get_attribute("data-value") == str(
        min(r[4] for r in sweep.runs[:4]))
    assert page.locator("tr[data-metric=accuracy] td.glml-best").get_attribute("data-value") == str(
        max(r[5] for r in sweep.runs[:4]))
    shot(page, "compare-best")


# --------------------------------------------------------------------------- scatter, parallel coordinates
def test_scatter_and_parallel_coordinates(make_page, shot, sweep):
    page = make_page()
    open_experiment(page, sweep)
    colours = row_colours(page)
    page.click("[data-testid=view-scatter]")
    page.wait_for_selector("[data-testid=scatter] svg circle")
    page.select_option("[data-testid=scatter-x]", "params:lr")
    page.select_option("[data-testid=scatter-y]", "loss")
    dots = page.locator("[data-testid=scatter] circle").evaluate_all(
        "c => c.map(d => [d.dataset.iid, d.dataset.color, d.dataset.best])")
    assert {d[0] for d in dots} == {str(r[0]) for r in sweep.runs}  # runs with both lr and loss
    assert all(colours[d[0]] == d[1] for d in dots)
    assert [d[0] for d in dots if d[2] == "true"] == [by_name(sweep, "trial-7")]
    # the lowest lr is at the left
    xs = page.locator("[data-testid=scatter] circle").evaluate_all(
        "c => Object.fromEntries(c.map(d => [d.dataset.iid, +d.getAttribute('cx')]))")
    assert min(xs, key=xs.get) == str(sweep.runs[0][0])
    shot(page, "charts-scatter")

    page.click("[data-testid=view-parallel]")
    page.wait_for_selector("[data-testid=parallel] path.glml-pc-line")
    page.select_option("[data-testid=parallel-metric]", "accuracy")
    axes = page.locator("[data-testid=parallel] [data-axis]").evaluate_all("a => a.map(x => x.dataset.axis)")
    assert axes == ["params:layers", "params:lr", "params:optimizer", "metrics:accuracy"]
    lines = page.locator("[data-testid=parallel] path.glml-pc-line").evaluate_all(
        "l => l.map(x => [x.dataset.iid, x.dataset.color, x.dataset.best])")
    assert len(lines) == len(sweep.runs)  # the runs without parameters make no line
    assert all(colours[line[0]] == line[1] for line in lines)
    best_acc = str(max(sweep.runs, key=lambda r: r[5])[0])
    assert [line[0] for line in lines if line[2] == "true"] == [best_acc]
    page.click("[data-testid=parallel-direction]")  # lower accuracy is better now: another best
    page.wait_for_function("(b) => document.querySelector(`[data-testid=parallel] [data-iid='${b}']`)"
                           ".dataset.best === 'false'", arg=best_acc)
    # the lowest accuracy now: the odd run's, which has no parameters and so no line
    assert page.locator("[data-testid=parallel] [data-best=true]").count() == 0
    assert page.inner_text("[data-testid=parallel-direction]") == "accuracy: lower is better"
    shot(page, "charts-parallel")
    page.click("[data-testid=parallel-direction]")


def test_charts_panel_fits_a_400px_screen(make_page, shot, sweep):
    page = make_page(NARROW)
    open_experiment(page, sweep)
    panel = page.locator("[data-testid=charts-panel]").bounding_box()
    for svg in page.locator("[data-testid=curve-chart] svg").all():
        box = svg.bounding_box()
        assert box["x"] >= panel["x"] - 1 and box["x"] + box["width"] <= panel["x"] + panel["width"] + 1
    assert panel["x"] + panel["width"] <= NARROW
    shot(page, "charts-400")
    page.click("[data-testid=view-parallel]")
    page.wait_for_selector("[data-testid=parallel] path.glml-pc-line")
    # measured in one step in the page: a redraw between finding the svg and measuring it
    # would leave a detached element with no box
    box = page.evaluate("() => { const r = document.querySelector('[data-testid=parallel] svg')"
                        ".getBoundingClientRect(); return {x: r.x, width: r.width}; }")
    assert box["width"] > 0 and box["x"] + box["width"] <= panel["x"] + panel["width"] + 1
    shot(page, "charts-parallel-400")


# --------------------------------------------------------------------------- model pages
@pytest.mark.parametrize("width", [WIDE, NARROW])
def test_logged_model_page_from_the_run_page(make_page, shot, sweep, width):
    page = make_page(width)
    page.goto(f"{P}/ml/candidates/{sweep.model_run_iid}")
    with page.expect_navigation():
        page.click("[data-testid=logged-model-link]")
    assert page.inner_text("[data-testid=logged-model-id]") == sweep.model_id
    inputs = page.locator("[data-testid=signature-inputs] tbody tr, [data-testid=signature-inputs] tr").all_inner_texts()
    assert any("sepal_length" in row and "double" in row for row in inputs)
    assert any("<b>colour</b>" in row for row in inputs)  # shown as text
    files = page.locator("[data-testid=model-file]").all_inner_texts()
    assert {"MLmodel", "requirements.txt", "python_env.yaml"} <= set(files)
    shot(page, f"logged-model-{width}")
    assert page.evaluate("document.documentElement.scrollWidth") <= width + 1  # nothing wider than the screen


def test_version_page_edits_through_the_browser_read_back_by_the_client(live, make_page, shot, sweep):
    name = "digits-" + uuid.uuid4().hex[:6]
    page = make_page()
    page.goto(f"{P}/ml/logged-models/{sweep.model_id}")
    page.click("[data-testid=register-logged-model] summary")
    page.fill("#glml-register-name", name)
    with page.expect_navigation():
        page.click("[data-testid=register-submit]")
    assert page.url.endswith(f"/ml/models/{name}/versions/1")
    page.click("[data-testid=edit-description] summary")
    page.fill("[data-testid=description-input]", "Trained on **iris**.")
    with page.expect_navigation():
        page.click("[data-testid=description-submit]")
    assert page.inner_html("[data-testid=description-html]").count("<strong>iris</strong>") == 1
    page.fill("[data-testid=alias-input]", "champion")
    with page.expect_navigation():
        page.click("[data-testid=alias-submit]")
    page.fill("[data-testid=tag-key]", "team")
    page.fill("[data-testid=tag-value]", "vision")
    with page.expect_navigation():
        page.click("[data-testid=tag-submit]")
    page.select_option("[data-testid=stage-select]", "Production")
    with page.expect_navigation():
        page.click("[data-testid=stage-submit]")
    assert page.inner_text("[data-testid=version-alias]") == "@champion"
    assert page.locator("[data-testid=version-logged-model-link]").get_attribute("href").endswith(sweep.model_id)
    shot(page, "model-version")
    with mlflow_env(live) as client:
        mv = client.get_model_version(name, "1")
        assert mv.description == "Trained on **iris**." and mv.tags == {"team": "vision"}
        assert mv.current_stage == "Production" and mv.aliases == ["champion"]
    narrow = make_page(NARROW)
    narrow.goto(f"{P}/ml/models/{name}/versions/1")
    assert narrow.evaluate("document.documentElement.scrollWidth") <= NARROW + 1
    shot(narrow, "model-version-400")
    # delete the version, then the model, each behind a confirmation
    page.click("[data-testid=delete-version] summary")
    with page.expect_navigation():
        page.click("[data-testid=delete-version] button[type=submit]")
    assert page.url.endswith(f"/ml/models/{name}")
    page.click("[data-testid=delete-model] summary")
    with page.expect_navigation():
        page.click("[data-testid=delete-model] button[type=submit]")
    with mlflow_env(live) as client:
        assert not client.search_registered_models(f"name = '{name}'")
