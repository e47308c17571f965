"""Issue 17 in real headless Chromium, at 1400 px and 400 px, on SQLite and
PostgreSQL: the defects a new user hit (each test fails without its fix), the
runs table's sticky header, sort marks, match count, remembered columns and skip
link, editing runs and experiments (read back through the MLflow client), and
the log_table and HTML artifact previews.

Screenshots go to ``tests/screenshots/<db>/issue17-*.png`` (git-ignored).
"""
from __future__ import annotations

import json
import os
import re
import uuid

import pytest
import requests

from tests.support.liveserver import build_app, migrate_and_seed, serve
from tests.support.ui_seed import make_member, mlflow_env, seed_ui_data
from tests.support.browser import CHROMIUM

pytestmark = pytest.mark.browser

P = "/demo/mnist/-"
WIDTHS = (1400, 400)
PAGE_WIDTH = 1400  # make_page's default width here
REPORTER, REPORTER_PASSWORD = "reporter17", "reporter-password-17"
SHOT_PREFIX = "issue17-"  # screenshots: tests/screenshots/<db>/issue17-*.png


@pytest.fixture(scope="module")
def live(database_url, db_kind, tmp_path_factory):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    app = build_app(database_url, str(tmp_path_factory.mktemp("storage")))
    migrate_and_seed(app)
    forge = serve(app)
    seeded = seed_ui_data(forge, long_points=200)
    forge.extra.update(seeded=seeded, db=db_kind, **_seed_issue17(forge, seeded))
    make_member(forge, REPORTER, REPORTER_PASSWORD, "REPORTER")
    yield forge
    forge.stop()
    with app.app_context():
        from gl_ml_tracking import get_state

        get_state(app).db.engine.dispose()


def _seed_issue17(forge, seeded) -> dict:
    """Non-finite values, a metric only one run logged, a log_table, an HTML page, a registered run."""
    import mlflow
    import pandas as pd

    runs = seeded.runs
    with mlflow_env(forge) as client:
        client.log_metric(runs["baseline"][1], "grad_norm", float("inf"), step=1)
        client.log_metric(runs["adam-small"][1], "grad_norm", float("nan"), step=1)
        client.log_metric(runs["adam-big"][1], "grad_norm", float("-inf"), step=1)
        # Alphabetically first, logged by one run: not a good default for the chart.
        client.log_metric(runs["rmsprop"][1], "aaa_rare", 1.0, step=0)
        with mlflow.start_run(run_id=runs["sweep"][1]):
            mlflow.log_table(pd.DataFrame({"step": list(range(250)), "score": [i / 250 for i in range(250)],
                                           "label": ["<b>x</b>"] * 250}), "eval/predictions.json")
            mlflow.log_text("<html><head><title>est</title></head><body><h1 id=h>Estimator</h1>"
                            "<script>document.getElementById('h').textContent='SCRIPT RAN';"
                            "try { parent.document.title = 'pwned'; } catch (e) {}</script></body></html>",
                            "estimator.html")
        name = "registered-" + uuid.uuid4().hex[:6]
        client.create_registered_model(name)
        client.create_model_version(name, f"runs:/{runs['ci-run'][1]}/model", run_id=runs["ci-run"][1])
    return {"registered_model": name}


def iid(live, name: str) -> int:
    return live.extra["seeded"].runs[name][0]


def exp_url(live) -> str:
    return f"{P}/ml/experiments/{live.extra['seeded'].experiment_iid}"


def overflow(page) -> int:
    """How far the page is wider than the window (0: no sideways scrolling)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def csrf_of(page) -> str:
    return page.locator("input[name=_glml_csrf]").first.get_attribute("value")


# =========================================================================== defects
@pytest.mark.parametrize("width", WIDTHS)
def test_create_experiment_panel_opens_inside_the_window(make_page, shot, width):
    page = make_page(width)
    page.goto(f"{P}/ml/experiments")
    page.click("[data-testid=create-experiment] summary")
    panel = page.locator("[data-testid=create-experiment] .glml-dropdown-panel")
    page.wait_for_function("() => { const b = document.querySelector('[data-testid=create-experiment] "
                           ".glml-dropdown-panel').getBoundingClientRect(); return b.left >= 0 && "
                           "b.right <= document.documentElement.clientWidth; }")
    box = panel.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width, box
    # The tracking URI line is whole and readable inside the panel.
    uri = panel.locator("pre")
    assert "MLFLOW_TRACKING_URI" in uri.inner_text()
    assert uri.bounding_box()["x"] + uri.bounding_box()["width"] <= width
    shot(page, f"create-experiment-{width}")


def test_anonymous_visitor_of_a_public_project_gets_no_create_or_trash(make_page, live):
    page = make_page(user=None)
    page.goto(f"{P}/ml/experiments")
    assert page.locator("[data-testid=experiments-table]").count() == 1  # public: readable
    assert page.locator("text=Create experiment").count() == 0
    assert page.locator("nav.glml-tabs a", has_text="Trash").count() == 0
    page.goto(exp_url(live))
    assert page.locator("nav.glml-tabs a", has_text="Trash").count() == 0
    assert page.locator("[data-testid=edit-description], [data-testid=experiment-tags-add]").count() == 0
    owner = make_page()
    owner.goto(f"{P}/ml/experiments")
    assert owner.locator("[data-testid=create-experiment]").count() == 1
    assert owner.locator("nav.glml-tabs a", has_text="Trash").count() == 1


@pytest.mark.parametrize("width", WIDTHS)
def test_merge_request_page_has_the_project_in_its_breadcrumb_and_the_tabs(make_page, shot, live, width):
    page = make_page(width)
    response = page.goto(f"{P}/ml/merge_requests/1")
    assert response.status == 200
    crumbs = page.locator("[data-testid=breadcrumbs] a")
    assert crumbs.first.inner_text() == "MNIST"
    assert crumbs.first.get_attribute("href").endswith("/demo/mnist")
    tabs = page.locator("[data-testid=tabs] a")
    assert tabs.all_inner_texts()[:1] == ["Model experiments"] and "Model registry" in tabs.all_inner_texts()
    assert overflow(page) == 0
    shot(page, f"merge-request-{width}")


def _page_urls(live) -> list[str]:
    return [f"{P}/ml/experiments", exp_url(live), f"{P}/ml/candidates/{iid(live, 'baseline')}",
            f"{exp_url(live)}/compare?runs={iid(live, 'baseline')},{iid(live, 'adam-small')},{iid(live, 'adam-big')}",
            f"{P}/ml/merge_requests/1", f"{P}/ml/models", f"{P}/ml/trash", f"{P}/packages",
            f"{P}/ml/candidates/{iid(live, 'sweep')}?file=eval/predictions.json"]


def test_every_page_fits_400_px_without_sideways_scrolling(make_page, shot, live):
    page = make_page(400)
    for url in _page_urls(live):
        assert page.goto(url).status == 200, url
        page.wait_for_load_state("networkidle")
        assert overflow(page) == 0, (url, overflow(page))
    # The run page's charts fit the window and "Status" is one word on one line.
    page.goto(f"{P}/ml/candidates/{iid(live, 'baseline')}")
    page.wait_for_selector("[data-testid=metric-chart][data-state=drawn] svg")
    for box in page.locator("[data-testid=metric-chart] svg").evaluate_all(
            "svgs => svgs.map(s => s.getBoundingClientRect().right)"):
        assert box <= 400
    lines = page.evaluate("""() => { const th = [...document.querySelectorAll('.glml-kv th')]
        .find(e => e.textContent.trim() === 'Status'); const r = document.createRange();
        r.selectNodeContents(th); return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; }""")
    assert lines == 1
    shot(page, "run-400")


def test_promote_is_not_offered_for_a_registered_run(make_page, live):
    page = make_page()
    page.goto(f"{P}/ml/candidates/{iid(live, 'ci-run')}")
    assert page.locator("a", has_text=live.extra["registered_model"]).count() >= 1
    assert page.locator("[data-testid=promote]").count() == 0
    page.goto(f"{P}/ml/candidates/{iid(live, 'rmsprop')}")
    assert page.locator("[data-testid=promote]").count() == 1


@pytest.mark.parametrize("width", WIDTHS)
def test_infinite_and_nan_values_render_on_every_page(make_page, shot, live, width):
    page = make_page(width)
    response = page.goto(f"{exp_url(live)}?chart=grad_norm&cols_set=1&cols=metrics.grad_norm")
    assert response.status == 200
    cells = {r: page.locator(f"tr[data-run-iid='{iid(live, r)}'] td[data-col='metrics.grad_norm']").inner_text()
             for r in ("baseline", "adam-small", "adam-big")}
    assert cells == {"baseline": "∞", "adam-small": "NaN", "adam-big": "-∞"}
    chart = page.locator("[data-testid=runs-chart]")
    assert chart.get_attribute("data-metric") == "grad_norm"
    assert json.loads(chart.get_attribute("data-points")) == []  # nothing finite to place
    compare = f"{exp_url(live)}/compare?runs={iid(live, 'baseline')},{iid(live, 'adam-small')},{iid(live, 'adam-big')}"
    assert page.goto(compare).status == 200
    row = page.locator("tr[data-metric=grad_norm]").inner_text()
    assert "∞" in row and "NaN" in row and "-∞" in row
    assert page.goto(f"{P}/ml/candidates/{iid(live, 'baseline')}").status == 200
    assert "∞" in page.locator("[data-testid=metrics]").inner_text()
    shot(page, f"inf-compare-{width}")


def test_the_chart_defaults_to_the_metric_most_runs_have(make_page, live):
    page = make_page()
    page.goto(exp_url(live))
    chart = page.locator("[data-testid=runs-chart]")
    # "aaa_rare" sorts first but one run has it; every run has accuracy and loss.
    assert chart.get_attribute("data-metric") == "accuracy"
    assert len(json.loads(chart.get_attribute("data-points"))) == page.locator("[data-testid=runs-table] tbody tr").count()


def test_column_kind_labels_have_at_least_4_5_to_1_contrast(make_page, live):
    page = make_page()
    page.goto(exp_url(live))
    ratio = page.evaluate("""() => {
        const label = document.querySelector('.glml-col-kind');
        const rgb = s => s.match(/[\\d.]+/g).slice(0, 3).map(Number);
        let bgEl = label, bg = 'rgba(0, 0, 0, 0)';
        while (bgEl && /rgba\\(0, 0, 0, 0\\)|transparent/.test(bg)) { bg = getComputedStyle(bgEl).backgroundColor; bgEl = bgEl.parentElement; }
        const lum = c => { const v = c.map(x => { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); });
                           return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
        const a = lum(rgb(getComputedStyle(label).color)), b = lum(rgb(bg));
        return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05); }""")
    assert ratio >= 4.5, ratio


def test_skip_link_reaches_the_runs_in_a_few_tab_stops(make_page, live):
    page = make_page()
    page.goto(exp_url(live))
    stops = 0
    while stops < 30:
        page.keyboard.press("Tab")
        stops += 1
        if page.evaluate("document.activeElement.dataset.testid") == "skip-link":
            break
    assert page.evaluate("document.activeElement.dataset.testid") == "skip-link"
    assert stops <= 10, stops  # only the host's header links come before it
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    first_row = page.evaluate("!!document.activeElement.closest('[data-testid=runs-table]')")
    assert first_row


# =========================================================================== runs table
def test_sticky_header_pinned_run_column_and_sort_marks(make_page, shot, live):
    page = make_page(400)
    page.goto(exp_url(live))
    scroller = page.locator("#glml-runs")
    scroller.evaluate("e => { e.style.maxHeight = '260px'; }")  # fewer rows than a screen: make it scroll
    header_top = page.locator("[data-testid=runs-table] thead th").first.bounding_box()["y"]
    run_cell_x = page.locator("[data-testid=runs-table] tbody td.glml-run-cell").first.bounding_box()["x"]
    scroller.evaluate("e => { e.scrollTop = 200; e.scrollLeft = 400; }")
    assert scroller.evaluate("e => e.scrollLeft") > 0 and scroller.evaluate("e => e.scrollTop") > 0
    assert abs(page.locator("[data-testid=runs-table] thead th").first.bounding_box()["y"] - header_top) < 1
    assert abs(page.locator("[data-testid=runs-table] tbody td.glml-run-cell").first.bounding_box()["x"]
               - run_cell_x) < 1
    shot(page, "runs-table-scrolled-400")
    # The default order (newest first) is marked, and a clicked column takes the mark.
    created = page.locator("th[aria-sort]")
    assert created.count() == 1 and created.get_attribute("aria-sort") == "descending"
    assert "▼" in created.inner_text()
    with page.expect_navigation():
        page.locator("th[data-col='metrics.loss'] a.glml-sort").click()
    marked = page.locator("th[aria-sort]")
    assert marked.get_attribute("data-col") == "metrics.loss" and "▼" in marked.inner_text()


def test_filter_shows_its_match_count(make_page, live):
    page = make_page()
    page.goto(exp_url(live))
    page.fill("[data-testid=filter-input]", "params.optimizer = 'adam'")
    with page.expect_navigation():
        page.press("[data-testid=filter-input]", "Enter")
    count = page.locator("[data-testid=match-count]").inner_text()
    # adam-small, adam-big, ci-run, long-history: all on the one page
    assert count.startswith("4 runs match"), count
    assert page.locator("[data-testid=runs-table] tbody tr").count() == 4
    page.fill("[data-testid=filter-input]", "params.lr = '0.1'")
    with page.expect_navigation():
        page.press("[data-testid=filter-input]", "Enter")
    assert page.locator("[data-testid=match-count]").inner_text().startswith("1 run matches")
    # More matches than one page: counted by a second request, filled in by the page.
    with mlflow_env(live) as client:
        exp = client.create_experiment("many-" + uuid.uuid4().hex[:6])
        for i in range(35):
            client.create_run(exp, tags={"kind": "odd" if i % 2 else "even"})
        client.set_terminated(client.search_runs([exp], max_results=1)[0].info.run_id)
    page.goto(f"{P}/ml/experiments/{exp}?filter=" + requests.utils.quote("attributes.status = 'RUNNING'"))
    page.wait_for_selector("[data-testid=match-count][data-state=counted]")
    assert page.locator("[data-testid=match-count]").inner_text() == "34 runs match this filter."
    assert page.locator("[data-testid=next-page]").count() == 1
    bad = page.request.get(f"{live.base_url}{P}/ml/experiments/{exp}/match-count?filter=" + requests.utils.quote("nope"))
    assert bad.status == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_chosen_columns_are_remembered_per_experiment(make_page, live):
    page = make_page()
    page.goto(exp_url(live))
    page.click("[data-testid=column-chooser] summary")
    page.click("[data-columns=none]")
    page.check("[data-col-toggle='metrics.grad_norm']")
    with page.expect_navigation():
        page.click("[data-testid=apply-columns]")
    assert page.locator("[data-testid=runs-table] thead th[data-col]").evaluate_all(
        "ths => ths.map(t => t.dataset.col)") == ["metrics.grad_norm"]
    page.goto(exp_url(live))  # no columns in the URL: the choice comes back
    page.wait_for_url(re.compile(r"cols_set=1"))
    assert page.locator("[data-testid=runs-table] thead th[data-col]").evaluate_all(
        "ths => ths.map(t => t.dataset.col)") == ["metrics.grad_norm"]
    other = f"{P}/ml/experiments/{live.extra['seeded'].empty_experiment_iid}"
    page.goto(other)
    assert "cols_set" not in page.url  # another experiment keeps its own (default) columns


# =========================================================================== editing
@pytest.mark.parametrize("width", WIDTHS)
def test_rename_a_run_read_back_through_the_client(make_page, shot, live, width):
    page = make_page(width)
    number = iid(live, "still-running")
    page.goto(f"{P}/ml/candidates/{number}")
    new_name = f"renamed-{width}-" + uuid.uuid4().hex[:4]
    page.click("[data-testid=rename-run] summary")
    panel = page.locator("[data-testid=rename-run] .glml-dropdown-panel").bounding_box()
    assert panel["x"] >= 0 and panel["x"] + panel["width"] <= width
    page.fill("#glml-rename-run-name", new_name)
    with page.expect_navigation():
        page.click("[data-testid=rename-run-save]")
    assert page.locator("[data-testid=run-name]").inner_text() == new_name
    assert new_name in page.locator(".glml-alert-success").inner_text()
    with mlflow_env(live) as client:
        run = client.get_run(live.extra["seeded"].runs["still-running"][1])
    assert run.info.run_name == new_name and run.data.tags["mlflow.runName"] == new_name
    assert run.info.status == "RUNNING"  # a rename is not an end
    shot(page, f"renamed-{width}")


def test_edit_a_note_as_markdown_with_preview(make_page, shot, live):
    page = make_page()
    number = iid(live, "adam-big")
    page.goto(f"{P}/ml/candidates/{number}")
    editor = page.locator("[data-testid=note-editor]")
    assert editor.is_visible()  # no note yet: the editor is open
    text = "## Findings\n\nLower **lr** helps.\n\n<img src=x onerror=alert(1)>"
    page.fill("#glml-note-editor-text", text)
    page.click("[data-testid=note-editor-preview-tab]")
    preview = page.locator("[data-testid=note-editor-preview]")
    page.wait_for_selector("[data-testid=note-editor-preview][data-state=ready]")
    assert preview.locator("h2").inner_text() == "Findings"
    assert preview.locator("strong").inner_text() == "lr"
    assert preview.locator("img").count() == 0 and "onerror" in preview.inner_text()  # shown as text
    shot(page, "note-preview")
    with page.expect_navigation():
        page.click("[data-testid=note-editor-save]")
    assert page.locator("[data-testid=run-note-html] h2").inner_text() == "Findings"
    with mlflow_env(live) as client:
        assert client.get_run(live.extra["seeded"].runs["adam-big"][1]).data.tags["mlflow.note.content"] == text
    # Emptied: the note is gone.
    page.click("[data-testid=edit-note] summary")
    page.fill("#glml-note-editor-text", "")
    with page.expect_navigation():
        page.click("[data-testid=note-editor-save]")
    with mlflow_env(live) as client:
        assert "mlflow.note.content" not in client.get_run(live.extra["seeded"].runs["adam-big"][1]).data.tags


def test_add_and_delete_run_tags(make_page, live):
    page = make_page(400)
    run_id = live.extra["seeded"].runs["rmsprop"][1]
    page.goto(f"{P}/ml/candidates/{iid(live, 'rmsprop')}")
    form = page.locator("[data-testid=run-tags-add]")
    form.locator("input[name=key]").fill("reviewed_by")
    form.locator("input[name=value]").fill("<b>ana</b>")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    assert page.locator("[data-testid=run-tags-table] tr[data-tag=reviewed_by] td").first.inner_text() == "<b>ana</b>"
    with mlflow_env(live) as client:
        assert client.get_run(run_id).data.tags["reviewed_by"] == "<b>ana</b>"
    with page.expect_navigation():
        page.locator("[data-testid=run-tags-table] tr[data-tag=reviewed_by] [data-testid=run-tags-delete]").click()
    assert page.locator("[data-testid=run-tags-table] tr[data-tag=reviewed_by]").count() == 0
    with mlflow_env(live) as client:
        assert "reviewed_by" not in client.get_run(run_id).data.tags
    assert overflow(page) == 0


def test_edit_experiment_description_and_tags(make_page, shot, live):
    page = make_page()
    with mlflow_env(live) as client:
        exp_id = client.create_experiment("editable-" + uuid.uuid4().hex[:6])
    page.goto(f"{P}/ml/experiments/{exp_id}")
    page.click("[data-testid=edit-description] summary")
    page.fill("#glml-description-editor-text", "Sweeps of **lr**.")
    with page.expect_navigation():
        page.click("[data-testid=description-editor-save]")
    assert page.locator("[data-testid=experiment-description] strong").inner_text() == "lr"
    page.click("[data-testid=experiment-tags] summary")
    form = page.locator("[data-testid=experiment-tags-add]")
    form.locator("input[name=key]").fill("team")
    form.locator("input[name=value]").fill("vision")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    with mlflow_env(live) as client:
        tags = client.get_experiment(exp_id).tags
    assert tags["mlflow.note.content"] == "Sweeps of **lr**." and tags["team"] == "vision"
    # Back on the page with the tags unfolded, the new one in them.
    assert page.locator("[data-testid=experiment-tags]").get_attribute("open") is not None
    assert page.locator("[data-testid=experiment-tags-table] tr[data-tag=team] td").first.inner_text() == "vision"
    shot(page, "experiment-edited")
    with page.expect_navigation():
        page.locator("tr[data-tag=team] [data-testid=experiment-tags-delete]").click()
    with mlflow_env(live) as client:
        assert "team" not in client.get_experiment(exp_id).tags


def test_edits_need_the_csrf_token_and_the_write_permission(make_page, live):
    number = iid(live, "sweep-child-1")
    run_id = live.extra["seeded"].runs["sweep-child-1"][1]
    url = f"{live.base_url}{P}/ml/candidates/{number}/rename"
    owner = make_page()
    owner.goto(f"{P}/ml/candidates/{number}")
    token = csrf_of(owner)
    assert owner.request.post(url, form={"name": "no-token"}, max_redirects=0).status == 403
    assert owner.request.post(url, form={"name": "bad", "_glml_csrf": "x" * 43}, max_redirects=0).status == 403
    foreign = owner.request.post(url, form={"name": "foreign", "_glml_csrf": token}, max_redirects=0,
                                 headers={"Origin": "https://evil.example"})
    assert foreign.status == 403
    preview = owner.request.post(f"{live.base_url}{P}/ml/markdown-preview", form={"text": "*x*"},
                                 headers={"X-GLML-CSRF-Token": "wrong"})
    assert preview.status == 403 and "error_code" in preview.json()

    reporter = make_page(user=REPORTER, password=REPORTER_PASSWORD)
    reporter.goto(f"{P}/ml/candidates/{number}")
    assert reporter.locator(".glml form[method=post]").count() == 0  # no edit forms at all
    # Refused before any token is looked at (the write permission is checked first): 404, as GitLab.
    assert reporter.request.post(url, form={"name": "by-reporter", "_glml_csrf": "y" * 43},
                                 max_redirects=0).status == 404
    anonymous = make_page(user=None)
    assert anonymous.request.post(url, form={"name": "anon", "_glml_csrf": "x" * 43}, max_redirects=0).status == 404
    for path in ("note", "tags", "tags/delete"):
        assert anonymous.request.post(f"{live.base_url}{P}/ml/candidates/{number}/{path}",
                                      form={"key": "a", "note": "n"}, max_redirects=0).status == 404
    with mlflow_env(live) as client:
        assert client.get_run(run_id).info.run_name == "sweep-child-1"
    # A bad tag name is MLflow's own validation, shown as a page, nothing stored.
    bad = owner.request.post(f"{live.base_url}{P}/ml/candidates/{number}/tags",
                             form={"key": "bad key!", "value": "v", "_glml_csrf": token}, max_redirects=0)
    assert bad.status == 400 and "Invalid tag name" in bad.text()
    reserved = owner.request.post(f"{live.base_url}{P}/ml/candidates/{number}/tags/delete",
                                  form={"key": "mlflow.runName", "_glml_csrf": token}, max_redirects=0)
    assert reserved.status == 400
    with mlflow_env(live) as client:
        assert client.get_run(run_id).data.tags["mlflow.runName"] == "sweep-child-1"


# =========================================================================== previews
@pytest.mark.parametrize("width", WIDTHS)
def test_log_table_artifact_previews_as_a_paged_table_in_its_folder(make_page, shot, live, width):
    page = make_page(width)
    page.goto(f"{P}/ml/candidates/{iid(live, 'sweep')}?file=eval/predictions.json")
    preview = page.locator("[data-testid=artifact-preview]")
    assert preview.get_attribute("data-kind") == "log_table"
    assert page.locator("[data-testid=table-preview] thead th").all_inner_texts() == ["step", "score", "label"]
    assert page.locator("[data-testid=table-preview] tbody tr").count() == 100
    assert "250 rows" in page.locator("[data-testid=table-preview-count]").inner_text()
    assert page.locator("[data-testid=table-preview] tbody tr").first.locator("td").last.inner_text() == "<b>x</b>"
    # The listing shows the file's folder (eval/), not the run's root.
    assert page.locator("[data-testid=artifact-list] [data-testid=artifact-file]").all_inner_texts() == ["predictions.json"]
    with page.expect_navigation():
        page.click("[data-testid=table-next]")
    assert page.locator("[data-testid=table-preview] tbody tr").first.locator("td").first.inner_text() == "100"
    assert overflow(page) == 0
    shot(page, f"log-table-{width}")


@pytest.mark.parametrize("width", WIDTHS)
def test_html_artifact_previews_in_a_sandbox_where_no_script_runs(make_page, shot, live, width):
    page = make_page(width)
    page.goto(f"{P}/ml/candidates/{iid(live, 'sweep')}?file=estimator.html")
    title = page.title()
    frame_el = page.locator("[data-testid=html-preview]")
    assert frame_el.get_attribute("sandbox") == ""
    frame = frame_el.element_handle().content_frame()
    frame.wait_for_selector("#h")
    assert frame.locator("#h").inner_text() == "Estimator"  # its script did not run
    assert page.title() == title
    src = frame_el.get_attribute("src")
    answer = requests.get(live.base_url + src, cookies={c["name"]: c["value"] for c in page.context.cookies()})
    policy = answer.headers["Content-Security-Policy"]
    assert answer.headers["Content-Type"].startswith("text/html")
    assert policy.startswith("sandbox") and "default-src 'none'" in policy and "script-src" not in policy
    assert overflow(page) == 0
    shot(page, f"html-preview-{width}")


# =========================================================================== the example forge
def test_new_project_page_then_its_empty_experiments(make_page, shot, live):
    page = make_page(400)
    page.goto("/")
    with page.expect_navigation():
        page.click("[data-testid=new-project-link]")
    name = "Try tracking " + uuid.uuid4().hex[:4]
    page.fill("#name", name)
    page.check("input[name=visibility][value=private]")
    with page.expect_navigation():
        page.click("button.primary")
    assert page.url.startswith(f"{live.base_url}/demo/try-tracking-")
    path = page.url[len(live.base_url) + 1:]
    page.goto(f"/{path}/-/ml/experiments")
    assert page.locator("[data-testid=empty-state] [data-testid=mlflow-snippet]").count() == 1
    assert overflow(page) == 0
    shot(page, "new-project-experiments-400")
    # Private: another person does not see it.
    anonymous = make_page(user=None)
    assert anonymous.goto(f"/{path}/-/ml/experiments").status == 404
