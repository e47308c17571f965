"""The web UI through Flask's test client, on SQLite and PostgreSQL: what each
page shows, who may see it, CSRF on every POST, HTML escaping, the CSV export,
the chart endpoint's bounds, the trash and the registries.

Data is logged with the real MLflow client against a live forge (see
``ui_seed.py``); pages are then read as anonymous, as the owner (session or
token) and as an outsider."""
from __future__ import annotations

import csv
import io
import json
import math
import re
import uuid
from html import unescape
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from gl_ml_tracking import get_state
from tests.support.liveserver import build_app, migrate_and_seed, serve
from tests.support.ui_seed import (
    XSS,
    XSS_ARTIFACT,
    XSS_SCRIPT,
    make_ci_job,
    make_member,
    make_project,
    mlflow_env,
    run_iid,
    seed_ui_data,
    sign_in,
)

RUNS_PAGE = 5
UI_PAGE = 5
PREVIEW_LIMIT = 4096
P = "/demo/mnist/-"  # the seeded public project (id 1)


@pytest.fixture(scope="module")
def ui_forge(database_url, tmp_path_factory):
    app = build_app(database_url, str(tmp_path_factory.mktemp("storage")), {
        "GL_ML_TRACKING_RUNS_PAGE_SIZE": RUNS_PAGE,
        "GL_ML_TRACKING_UI_PAGE_SIZE": UI_PAGE,
        "GL_ML_TRACKING_PREVIEW_MAX_BYTES": PREVIEW_LIMIT,
        "GL_ML_TRACKING_UI_TOKENS_URL": "/-/user_settings/personal_access_tokens",
    })
    migrate_and_seed(app)
    live = serve(app)
    live.extra["seeded"] = seed_ui_data(live)
    yield live
    live.stop()
    with app.app_context():
        from gl_ml_tracking import get_state

        get_state(app).db.engine.dispose()


@pytest.fixture(scope="module")
def seeded(ui_forge):
    return ui_forge.extra["seeded"]


@pytest.fixture
def anon(ui_forge):
    return ui_forge.app.test_client()


@pytest.fixture
def owner(ui_forge):
    """demo, signed in through the forge's sign-in form (a browser session)."""
    client = ui_forge.app.test_client()
    sign_in(client)
    return client


@pytest.fixture
def outsider(ui_forge):
    """A signed-in user who is a member of no project (token header, as the forge allows)."""
    client = ui_forge.app.test_client()
    client.environ_base["HTTP_PRIVATE_TOKEN"] = ui_forge.outsider_token
    return client


def text(response) -> str:
    return response.get_data(as_text=True)


def csrf_of(client, url: str) -> str:
    page = text(client.get(url))
    found = re.search(r'name="_glml_csrf" value="([^"]+)"', page)
    assert found, "the page has no form with our CSRF token"
    return found.group(1)


def run_rows(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-run-iid="(\d+)"', html)]


def iid(seeded, name: str) -> int:
    return seeded.runs[name][0]


# --------------------------------------------------------------------------- access
def test_public_project_pages_are_readable_anonymously_without_write_controls(anon, seeded):
    for url in (f"{P}/ml/experiments", f"{P}/ml/experiments/{seeded.experiment_iid}",
                f"{P}/ml/candidates/{iid(seeded, 'baseline')}", f"{P}/ml/trash", f"{P}/ml/models", f"{P}/packages"):
        response = anon.get(url)
        assert response.status_code == 200, url
        body = text(response)
        assert "_glml_csrf" not in body, url  # no forms at all for a reader
        assert 'data-testid="delete-' not in body and "Promote to model version" not in body, url
        # Readers get no session cookie from us.
        assert "Set-Cookie" not in response.headers, url


def test_private_and_unknown_projects_answer_404(ui_forge, anon, outsider, owner):
    with mlflow_env(ui_forge, 2) as client:
        experiment = client.create_experiment("secret-" + uuid.uuid4().hex[:6])
    for client in (anon, outsider):
        assert client.get("/demo/secret/-/ml/experiments").status_code == 404
        assert client.get(f"/demo/secret/-/ml/experiments/{experiment}").status_code == 404
        assert client.get("/demo/secret/-/packages").status_code == 404
    assert anon.get("/nobody/nothing/-/ml/experiments").status_code == 404
    page = owner.get("/demo/secret/-/ml/experiments")
    assert page.status_code == 200 and "secret-" in text(page)
    # A run IID of another project is not found through this one.
    assert owner.get("/demo/secret/-/ml/candidates/999999").status_code == 404


def test_non_canonical_project_path_redirects(anon, seeded):
    response = anon.get(f"/1/-/ml/experiments/{seeded.experiment_iid}?filter=x")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/demo/mnist/-/ml/experiments/{seeded.experiment_iid}?filter=x")


def test_security_headers_on_pages_and_json(anon, seeded):
    for url in (f"{P}/ml/experiments",
                f"{P}/ml/candidates/{iid(seeded, 'baseline')}/chart-data?key=loss"):
        response = anon.get(url)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'self'" in csp and "unsafe-inline" not in csp.split(
            "script-src")[1].split(";")[0]
    assert "<script>" not in text(anon.get(f"{P}/ml/experiments"))  # only <script src=...>
    static = anon.get("/-/gl-ml-tracking/static/chart.js")
    assert static.status_code == 200 and b"GLMLChart" in static.data


def test_pages_embed_in_the_hosts_layout(ui_forge, anon, monkeypatch):
    """GL_ML_TRACKING_BASE_TEMPLATE swaps our frame for the host's (here the
    forge's own base template, which has title and content blocks)."""
    monkeypatch.setattr(get_state(ui_forge.app).config, "base_template", "forge/base.html")
    body = text(anon.get(f"{P}/ml/experiments"))
    assert '<a class="brand" href="/">Forge</a>' in body and "glml-standalone" not in body
    assert 'data-testid="experiments-table"' in body and "<title>Model experiments · MNIST · Forge</title>" in body


def test_pages_work_under_any_prefix_and_script_root(tmp_path):
    """Another UI prefix, another static prefix, and the whole app mounted below
    /forge (SCRIPT_NAME): every link and asset follows."""
    app = build_app(f"sqlite:///{tmp_path}/prefix.db", str(tmp_path / "storage"), {
        "GL_ML_TRACKING_UI_PREFIX": "/tracking/<path:project_path>/-",
        "GL_ML_TRACKING_UI_STATIC_PREFIX": "/assets/glml",
    })
    migrate_and_seed(app)
    with app.app_context():
        from gl_ml_tracking import get_state
        from gl_ml_tracking.services import experiments, runs

        session = get_state(app).session
        experiment = experiments.create_experiment(session, "1", "prefixed")
        run = runs.create_run(session, "1", str(experiment.iid), run_name="r1")
        exp_iid, run_number = experiment.iid, run.iid
        session.commit()
    client = app.test_client()
    env = {"SCRIPT_NAME": "/forge"}
    body = text(client.get("/tracking/demo/mnist/-/ml/experiments", environ_overrides=env))
    assert f'href="/forge/tracking/demo/mnist/-/ml/experiments/{exp_iid}"' in body
    assert 'href="/forge/assets/glml/ui.css?v=' in body and 'src="/forge/assets/glml/ui.js?v=' in body
    assert client.get("/assets/glml/ui.css", environ_overrides=env).status_code == 200
    page = text(client.get(f"/tracking/demo/mnist/-/ml/candidates/{run_number}", environ_overrides=env))
    assert f'href="/forge/tracking/demo/mnist/-/ml/experiments/{exp_iid}"' in page
    assert client.get("/demo/mnist/-/ml/experiments").status_code == 404  # the default prefix is not mounted
    with app.app_context():
        get_state(app).db.engine.dispose()


# --------------------------------------------------------------------------- experiments list
def test_empty_state_has_a_copyable_snippet_with_this_projects_tracking_uri(ui_forge, owner):
    project_id, path = make_project(ui_forge, "empty-" + uuid.uuid4().hex[:6])
    body = text(owner.get(f"/{path}/-/ml/experiments"))
    assert 'data-testid="empty-state"' in body
    uri = f"http://localhost/api/v4/projects/{project_id}/ml/mlflow"
    assert uri in body
    assert '<a href="/-/user_settings/personal_access_tokens">Create a personal access token</a>' in body
    copy = re.search(r'data-copy="([^"]*)"', body).group(1)
    assert uri in copy and "mlflow.set_experiment" in copy.replace("&#34;", '"')


def test_experiments_list_search_sort_and_keyset_pages(ui_forge, owner):
    project_id, path = make_project(ui_forge, "many-" + uuid.uuid4().hex[:6])
    names = [f"exp-{i:02d}" for i in range(UI_PAGE + 2)]
    with mlflow_env(ui_forge, project_id) as client:
        ids = {name: client.create_experiment(name) for name in names}
        run = client.create_run(ids["exp-03"])
        client.create_run(ids["exp-03"])
        client.delete_run(run.info.run_id)
    base = f"/{path}/-/ml/experiments"

    first = text(owner.get(base))
    shown = re.findall(r'data-experiment-iid="(\d+)"', first)
    assert len(shown) == UI_PAGE
    assert f">{len(names)}</span>" in first  # the count badge
    next_url = re.search(r'href="([^"]+)" class="glml-btn" rel="next"', first).group(1).replace("&amp;", "&")
    second = text(owner.get(next_url))
    shown2 = re.findall(r'data-experiment-iid="(\d+)"', second)
    assert len(shown2) == 2 and not set(shown) & set(shown2)
    assert set(shown) | set(shown2) == {str(i) for i in ids.values()}
    prev_url = re.search(r'href="([^"]+)" class="glml-btn" rel="prev"', second).group(1).replace("&amp;", "&")
    assert re.findall(r'data-experiment-iid="(\d+)"', text(owner.get(prev_url))) == shown

    found = text(owner.get(base + "?search=exp-03"))
    rows = re.findall(r'<tr data-experiment-iid="(\d+)">(.*?)</tr>', found, re.S)
    assert [r[0] for r in rows] == [ids["exp-03"]]
    assert re.search(r'glml-num">1</td>', rows[0][1]), "one active run (the deleted one is not counted)"

    by_name = text(owner.get(base + "?sort=name_asc"))
    assert re.findall(r'data-experiment-iid="(\d+)"', by_name) == [ids[n] for n in names[:UI_PAGE]]
    assert 'data-testid="no-results"' in text(owner.get(base + "?search=nothing-like-this"))


# --------------------------------------------------------------------------- runs table
def test_runs_table_keyset_pages_cover_every_run_once(owner, seeded):
    url = f"{P}/ml/experiments/{seeded.experiment_iid}"
    seen, pages = [], 0
    while url and pages < 10:
        body = text(owner.get(url))
        rows = run_rows(body)
        assert 0 < len(rows) <= RUNS_PAGE
        seen += rows
        found = re.search(r'href="([^"]+)" class="glml-btn" rel="next"', body)
        url = found.group(1).replace("&amp;", "&") if found else None
        pages += 1
    expected = {iid(seeded, n) for n in seeded.runs if n != XSS}
    assert sorted(seen) == sorted(expected) and len(seen) == len(set(seen))
    assert pages == math.ceil(len(expected) / RUNS_PAGE)


def test_nested_runs_are_listed_under_their_parent(owner, seeded):
    body = text(owner.get(f"{P}/ml/experiments/{seeded.experiment_iid}?order=attributes.run_name+ASC"
                          f"&filter=run_name+LIKE+'sweep%'"))
    rows = run_rows(body)
    assert rows[0] == iid(seeded, "sweep")
    assert set(rows[1:]) == {iid(seeded, "sweep-child-1"), iid(seeded, "sweep-child-2")}
    assert body.count("glml-depth-1") == 2
    # A child whose parent is not on the page says whose child it is.
    alone = text(owner.get(f"{P}/ml/experiments/{seeded.experiment_iid}?filter=run_name+%3D+'sweep-child-1'"))
    assert "child of" in alone and ">sweep</a>" in alone


def test_runs_table_sorts_by_any_column(owner, seeded):
    base = f"{P}/ml/experiments/{seeded.experiment_iid}?filter=metrics.accuracy+%3E+0.8&order="
    by_metric = run_rows(text(owner.get(base + "metrics.`accuracy`+DESC")))
    assert by_metric[0] == iid(seeded, "adam-small")
    by_param = run_rows(text(owner.get(base + "params.`lr`+ASC")))
    assert by_param[0] == iid(seeded, "adam-small")  # '0.001' sorts first as text
    by_name = run_rows(text(owner.get(base + "attributes.run_name+DESC")))
    assert by_name[0] == iid(seeded, "sweep")  # children follow it; "sweep" > "rmsprop" > ...


def test_filter_box_uses_the_mlflow_grammar_and_explains_errors(owner, seeded):
    url = f"{P}/ml/experiments/{seeded.experiment_iid}"
    rows = run_rows(text(owner.get(url + "?filter=params.optimizer+%3D+'adam'+AND+metrics.accuracy+%3E%3D+0.95")))
    assert sorted(rows) == sorted([iid(seeded, "adam-small"), iid(seeded, "adam-big"), iid(seeded, "ci-run")])
    bad = owner.get(url + "?filter=metrics.accuracy+%3E")
    assert bad.status_code == 400
    message = re.search(r'data-testid="filter-error">(.*?)</div>', text(bad), re.S).group(1)
    assert "metrics.accuracy &gt;" in message and "value" in message
    assert run_rows(text(bad)) == []


def test_column_chooser_shows_only_chosen_columns(owner, seeded):
    url = f"{P}/ml/experiments/{seeded.experiment_iid}"
    default = text(owner.get(url))
    assert 'data-col="params.optimizer"' in default and 'data-col="metrics.accuracy"' in default
    chosen = text(owner.get(url + "?cols_set=1&cols=params.lr&cols=tags.team"))
    assert '<th class="glml-kind-params" data-col="params.lr">' in chosen
    assert 'data-col="params.optimizer"' not in chosen and 'data-col="metrics.accuracy"' not in chosen
    assert '<th class="glml-kind-tags" data-col="tags.team">' in chosen
    assert 'value="tags.mlflow.runName"' not in chosen  # system name tag is shown as the run name


def test_ci_job_column_and_panel_only_for_viewers_who_may_read_builds(ui_forge, owner, seeded):
    table = text(owner.get(f"{P}/ml/experiments/{seeded.experiment_iid}?filter=run_name+%3D+'ci-run'"))
    assert ">CI job</th>" in table and ">train-model</a>" in table
    run_page = text(owner.get(f"{P}/ml/candidates/{iid(seeded, 'ci-run')}"))
    panel = re.search(r'data-testid="ci-panel">(.*?)</section>', run_page, re.S).group(1)
    assert "train-model" in panel and "/-/pipelines/" in panel and "Tune the learning rate" in panel
    assert "Demo User" in panel

    # In the private project a guest may read experiments but not CI jobs.
    job_id = make_ci_job(ui_forge, 2)
    with mlflow_env(ui_forge, 2) as client:
        exp = client.create_experiment("ci-private-" + uuid.uuid4().hex[:6])
        run = client.create_run(exp, run_name="private-ci", tags={"gitlab.CI_JOB_ID": str(job_id)})
    number = run_iid(ui_forge, run.info.run_id)
    make_member(ui_forge, "guest", "guest-password", "GUEST", project_id=2)
    guest = ui_forge.app.test_client()
    sign_in(guest, "guest", "guest-password")
    assert ">train-model</a>" in text(owner.get(f"/demo/secret/-/ml/candidates/{number}"))
    page = guest.get(f"/demo/secret/-/ml/candidates/{number}")
    assert page.status_code == 200 and "private-ci" in text(page)
    assert 'data-testid="ci-panel"' not in text(page) and "train-model" not in text(page)
    table = text(guest.get(f"/demo/secret/-/ml/experiments/{exp}"))
    assert "private-ci" in table and "CI job" not in table and "train-model" not in table


# --------------------------------------------------------------------------- CSV
def test_csv_export_streams_every_matching_run(owner, seeded, monkeypatch):
    from gl_ml_tracking.blueprints.ui import experiments as ui_experiments

    monkeypatch.setattr(ui_experiments, "EXPORT_PAGE", 2)  # several search pages per export
    response = owner.get(f"{P}/ml/experiments/{seeded.experiment_iid}.csv?filter=params.optimizer+%3D+'sgd'"
                         "&order=attributes.run_name+ASC")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert "Content-Length" not in response.headers  # streamed, not built in memory
    rows = list(csv.DictReader(io.StringIO(text(response))))
    names = [r["name"] for r in rows]
    assert names == ["baseline", "still-running", "sweep", "sweep-child-1", "sweep-child-2"]
    baseline = rows[0]
    assert baseline["params.lr"] == "0.1" and float(baseline["metrics.accuracy"]) == pytest.approx(0.91)
    assert baseline["run_id"] == seeded.runs["baseline"][1] and baseline["status"] == "FINISHED"
    assert "metrics.train_loss" in baseline  # every key of the experiment has a column
    bad = owner.get(f"{P}/ml/experiments/{seeded.experiment_iid}.csv?filter=nonsense+%3D%3D")
    assert bad.status_code == 400 and bad.mimetype == "text/html"


def test_csv_cells_cannot_become_spreadsheet_formulas(ui_forge, owner, seeded):
    with mlflow_env(ui_forge) as client:
        run = client.create_run(str(seeded.empty_experiment_iid), run_name="=HYPERLINK(\"http://x\")")
        client.log_param(run.info.run_id, "neg", "-3")
        client.log_param(run.info.run_id, "cmd", "@SUM(1)")
    rows = list(csv.DictReader(io.StringIO(text(owner.get(f"{P}/ml/experiments/{seeded.empty_experiment_iid}.csv")))))
    assert rows[0]["name"] == "'=HYPERLINK(\"http://x\")"
    assert rows[0]["params.neg"] == "-3"  # numbers stay numbers
    assert rows[0]["params.cmd"] == "'@SUM(1)"


# --------------------------------------------------------------------------- run page
def test_run_page_shows_params_metrics_tags_and_a_sanitized_note(owner, seeded):
    body = text(owner.get(f"{P}/ml/candidates/{iid(seeded, 'baseline')}"))
    assert seeded.runs["baseline"][1] in body
    params = re.search(r'data-testid="params">(.*?)</section>', body, re.S).group(1)
    assert "<th>lr</th><td class=\"glml-break\">0.1</td>" in params
    metrics = re.search(r'data-testid="metrics">(.*?)</section>', body, re.S).group(1)
    assert "accuracy" in metrics and "0.91" in metrics
    note = re.search(r'data-testid="run-note">(.*?)</section>', body, re.S).group(1)
    assert "<h1>Results</h1>" in note and "<strong>best</strong>" in note
    assert '<a href="https://example.com/docs" rel="nofollow noopener noreferrer">docs</a>' in note
    assert "javascript:" not in note.split("[bad]")[0] and 'href="javascript' not in note
    assert "&lt;img src=x onerror=alert(4)&gt;" in note and "<img" not in note
    assert "&lt;script&gt;alert(5)&lt;/script&gt;" in note
    assert 'data-testid="charts"' in body and body.count('data-testid="metric-chart"') == 2


def test_parent_and_child_links(owner, seeded):
    parent = text(owner.get(f"{P}/ml/candidates/{iid(seeded, 'sweep')}"))
    children = re.search(r'data-testid="child-runs">(.*?)</ul>', parent, re.S).group(1)
    assert "sweep-child-1" in children and "sweep-child-2" in children
    child = text(owner.get(f"{P}/ml/candidates/{iid(seeded, 'sweep-child-1')}"))
    assert re.search(r'data-testid="parent-link">sweep</a>', child)


def test_hostile_names_render_as_text_everywhere(owner, seeded):
    xss_iid = iid(seeded, XSS)
    pages = [
        f"{P}/ml/experiments",
        f"{P}/ml/experiments/{seeded.xss_experiment_iid}?cols_set=1&cols=params.payload&cols=tags.owner&cols=tags.html",
        f"{P}/ml/candidates/{xss_iid}",
        f"{P}/ml/candidates/{xss_iid}?" + urlencode({"file": XSS_ARTIFACT}),
        f"{P}/ml/experiments/{seeded.xss_experiment_iid}/compare?runs={xss_iid}",
        f"{P}/packages",
    ]
    for url in pages:
        body = text(owner.get(url))
        for raw in (XSS, XSS_SCRIPT, "<b onmouseover", "onerror=alert(6)>"):
            assert raw not in body, (url, raw)
    run_page = text(owner.get(f"{P}/ml/candidates/{xss_iid}"))
    assert "&lt;img src=x onerror=alert(1)&gt;" in run_page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in run_page


# --------------------------------------------------------------------------- charts
def test_chart_data_is_bounded_and_keeps_min_max_last(anon, seeded):
    url = f"{P}/ml/candidates/{iid(seeded, 'long-history')}/chart-data"
    data = anon.get(url + "?key=train_loss&buckets=100").get_json()
    points = data["points"]
    assert len(points) <= 100 and data["columns"][:4] == ["x", "last", "min", "max"]
    assert sum(p[4] for p in points) == seeded.long_metric_points  # every point counted once
    n = seeded.long_metric_points
    # The spike logged at step n // 2 survives as its bucket's max.
    spike = [p for p in points if p[6] <= n // 2 <= p[7]][0]
    assert spike[3] == pytest.approx(1.0 / (1 + n // 2) + 0.5)
    assert points[-1][0] == n - 1 and points[-1][1] == pytest.approx(1.0 / n)  # last of the last bucket
    assert points[0][2] <= points[0][1] <= points[0][3]
    zoomed = anon.get(url + "?key=train_loss&buckets=1000&start=100&end=199").get_json()
    assert zoomed["range"] == [100, 199] and len(zoomed["points"]) == 100  # one bucket per step
    assert zoomed["points"][0][0] == 100 and zoomed["points"][0][1] == pytest.approx(1.0 / 101)
    capped = anon.get(url + "?key=train_loss&buckets=100000").get_json()
    assert len(capped["points"]) <= 1000
    by_time = anon.get(url + "?key=train_loss&x=time&buckets=50").get_json()
    assert by_time["x"] == "time" and len(by_time["points"]) <= 50
    assert sum(p[4] for p in by_time["points"]) == n


def test_long_histories_are_sampled_with_bounded_work(anon, seeded, monkeypatch):
    """Past EXACT_LIMIT points in range the buckets come from index seeks, not a
    scan; the first and last points are always among them, and zooming in far
    enough gives exact buckets again."""
    from gl_ml_tracking.services import metric_charts

    monkeypatch.setattr(metric_charts, "EXACT_LIMIT", 500)
    n = seeded.long_metric_points
    url = f"{P}/ml/candidates/{iid(seeded, 'long-history')}/chart-data?key=train_loss"
    data = anon.get(url + "&buckets=100").get_json()
    assert data["sampled"] is True and 2 <= len(data["points"]) <= 100
    assert sum(p[4] for p in data["points"]) <= 2 * 100 + 1  # samples, not the whole history
    assert data["points"][0][6] == 0 and data["points"][0][3] == pytest.approx(1.0)  # step 0 is sampled
    assert data["points"][-1][0] == n - 1 and data["points"][-1][1] == pytest.approx(1.0 / n)
    by_time = anon.get(url + "&buckets=50&x=time").get_json()
    assert by_time["sampled"] is True and len(by_time["points"]) <= 50
    assert by_time["full_range"][1] - by_time["full_range"][0] == (n - 1) * 10
    zoomed = anon.get(url + "&buckets=100&start=1000&end=1299").get_json()
    assert zoomed["sampled"] is False and sum(p[4] for p in zoomed["points"]) == 300
    t0 = by_time["full_range"][0]
    zoomed_time = anon.get(url + f"&buckets=100&x=time&start={t0 + 10000}&end={t0 + 12990}").get_json()
    assert zoomed_time["sampled"] is False and sum(p[4] for p in zoomed_time["points"]) == 300


def test_chart_data_errors_are_json(anon, seeded):
    base = f"{P}/ml/candidates/{iid(seeded, 'baseline')}/chart-data"
    missing = anon.get(base)
    assert missing.status_code == 400 and missing.get_json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert anon.get(base + "?key=loss&x=sideways").status_code == 400
    assert anon.get(base + "?key=loss&start=9&end=1").status_code == 400
    nothing = anon.get(base + "?key=never-logged").get_json()
    assert nothing["points"] == [] and nothing["full_range"] is None
    unknown = anon.get(f"{P}/ml/candidates/987654/chart-data?key=loss")
    assert unknown.status_code == 404 and unknown.get_json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert anon.get("/demo/secret/-/ml/candidates/1/chart-data?key=loss").status_code == 404


def test_chart_buckets_match_a_brute_force_summary(ui_forge, seeded):
    """The SQL summary against the same numbers computed in Python, with
    several points per step, out-of-order logging and NaNs."""
    import random

    from mlflow.entities import Metric

    from gl_ml_tracking import get_state
    from gl_ml_tracking.models import Run
    from gl_ml_tracking.services import metric_charts

    rng = random.Random(7)
    points = []
    for _ in range(700):
        step = rng.randint(0, 400)
        value = float("nan") if rng.random() < 0.03 else rng.uniform(-5, 5)
        points.append(Metric("noisy", value, 1_700_000_000_000 + rng.randint(0, 10_000), step))
    with mlflow_env(ui_forge) as client:
        run = client.create_run(str(seeded.empty_experiment_iid), run_name="brute-force")
        for i in range(0, len(points), 500):
            client.log_batch(run.info.run_id, metrics=points[i:i + 500])
    with ui_forge.app.app_context():
        session = get_state(ui_forge.app).session
        pk = session.query(Run.id).filter(Run.run_uuid == run.info.run_id).scalar()
        for start, end, buckets in ((None, None, 37), (50, 120, 10), (None, None, 1000)):
            data = metric_charts.chart_buckets(session, pk, "noisy", buckets=buckets, start=start, end=end)
            lo, hi = data["range"]
            width = data["bucket_width"]
            expected = {}
            for order, m in enumerate(points):
                if lo <= m.step <= hi:
                    expected.setdefault((m.step - lo) // width, []).append((order, m))
            assert [p.count for p in data["points"]] == [len(expected[b]) for b in sorted(expected)]
            for p, b in zip(data["points"], sorted(expected)):
                values = [m.value for _o, m in expected[b] if not math.isnan(m.value)]
                assert p.min == (pytest.approx(min(values)) if values else None)
                assert p.max == (pytest.approx(max(values)) if values else None)
                # last: highest step, then latest timestamp, then latest logged
                _o, last = max(expected[b], key=lambda om: (om[1].step, om[1].timestamp, om[0]))
                assert p.x == last.step
                assert p.last == (None if math.isnan(last.value) else pytest.approx(last.value))


# --------------------------------------------------------------------------- artifacts
def test_artifact_browser_lists_directories_and_previews_files(ui_forge, owner, seeded):
    run_url = f"{P}/ml/candidates/{iid(seeded, 'baseline')}"
    listing = text(owner.get(run_url))
    assert 'data-testid="artifact-dir">model</a>' in listing and ">metrics.json</a>" in listing
    assert 'data-testid="package-link"' in listing
    inside = text(owner.get(run_url + "?path=model"))
    assert ">MLmodel</a>" in inside and 'data-testid="artifact-dir">data</a>' in inside
    as_json = text(owner.get(run_url + "?file=metrics.json"))
    assert '&#34;accuracy&#34;: 0.91' in as_json and 'data-kind="code"' in as_json
    as_table = text(owner.get(run_url + "?file=predictions.csv"))
    assert "<th>label</th>" in as_table and "<td>&lt;b&gt;3&lt;/b&gt;</td>" in as_table
    as_markdown = text(owner.get(run_url + "?file=README.md"))
    assert "<h1>Model card</h1>" in as_markdown and "&lt;script&gt;alert(7)" in as_markdown
    as_image = text(owner.get(run_url + "?file=confusion.png"))
    src = re.search(r'<img src="([^"]+)" alt="confusion.png"', as_image).group(1).replace("&amp;", "&")
    image = owner.get(src)
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/png"
    assert image.data.startswith(b"\x89PNG") and image.headers["Content-Disposition"] == "inline"
    download = owner.get(f"{run_url}/artifacts/raw?path=notes.txt")
    assert download.data == b"plain text\n<img src=x onerror=alert(8)>\n"
    assert download.headers["Content-Disposition"].startswith("attachment")
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    # SVG or HTML never render inline, even when asked.
    assert owner.get(f"{run_url}/artifacts/raw?path=README.md&inline=1").headers[
        "Content-Disposition"].startswith("attachment")
    assert owner.get(f"{run_url}/artifacts/raw?path=../../etc/passwd").status_code == 400
    assert owner.get(f"{run_url}/artifacts/raw?path=missing.txt").status_code == 404

    with mlflow_env(ui_forge) as client:
        client.log_text(seeded.runs["adam-small"][1], "x" * (PREVIEW_LIMIT + 10), "big.log")
    big = text(owner.get(f"{P}/ml/candidates/{iid(seeded, 'adam-small')}?file=big.log"))
    assert 'data-kind="too_big"' in big and "x" * 100 not in big


# --------------------------------------------------------------------------- CSRF and permissions
def test_posts_need_a_csrf_token_and_write_permission(ui_forge, owner, anon, outsider, seeded):
    with mlflow_env(ui_forge) as client:
        run = client.create_run(str(seeded.empty_experiment_iid), run_name="csrf-target")
    run_number = run_iid(ui_forge, run.info.run_id)
    page = f"{P}/ml/candidates/{run_number}"
    delete = f"{page}/delete"
    token = csrf_of(owner, page)

    def stage():
        with mlflow_env(ui_forge) as client:
            return client.get_run(run.info.run_id).info.lifecycle_stage

    assert owner.post(delete).status_code == 403
    assert owner.post(delete, data={"_glml_csrf": "forged" + token[6:]}).status_code == 403
    assert owner.post(delete, data={"_glml_csrf": token},
                      headers={"Origin": "http://evil.example"}).status_code == 403
    assert stage() == "active"
    for reader in (anon, outsider):
        assert reader.post(delete, data={"_glml_csrf": token}).status_code == 404
    assert stage() == "active"
    done = owner.post(delete, data={"_glml_csrf": token})
    assert done.status_code == 303 and done.headers["Location"].endswith(
        f"/ml/experiments/{seeded.empty_experiment_iid}")
    assert stage() == "deleted"
    assert "moved to the trash" in text(owner.get(done.headers["Location"]))
    restore = owner.post(f"{page}/restore", headers={"X-GLML-CSRF-Token": token})
    assert restore.status_code == 303 and stage() == "active"


def test_delete_restore_and_permanent_delete_through_the_trash(ui_forge, owner, seeded):
    from gl_ml_tracking import get_state
    from gl_ml_tracking.models import Package, PackageFile

    with mlflow_env(ui_forge) as client:
        exp = client.create_experiment("trash-" + uuid.uuid4().hex[:6])
        keep = client.create_run(exp, run_name="keep")
        doomed = client.create_run(exp, run_name="doomed")
        client.log_text(doomed.info.run_id, "bye", "out.txt")
        client.log_text(keep.info.run_id, "stay", "out.txt")
        client.log_metric(doomed.info.run_id, "m", 1.0)
    doomed_iid, keep_iid = run_iid(ui_forge, doomed.info.run_id), run_iid(ui_forge, keep.info.run_id)
    token = csrf_of(owner, f"{P}/ml/candidates/{doomed_iid}")
    with ui_forge.app.app_context():
        storage = get_state(ui_forge.app).get_storage()

    def package(version):
        with ui_forge.app.app_context():
            return get_state(ui_forge.app).session.query(Package).filter(
                Package.project_id == "1", Package.name == f"ml_experiment_{exp}", Package.version == version).first()

    doomed_package = package(str(doomed_iid))
    assert doomed_package is not None
    # Purging a live run is refused: only what is in the trash can go.
    assert owner.post(f"{P}/ml/trash/candidates/{doomed_iid}/purge", data={"_glml_csrf": token}).status_code == 400
    owner.post(f"{P}/ml/candidates/{doomed_iid}/delete", data={"_glml_csrf": token})
    trash = text(owner.get(f"{P}/ml/trash"))
    assert f'data-run-iid="{doomed_iid}"' in trash and 'data-testid="purge-run"' in trash
    assert owner.post(f"{P}/ml/trash/candidates/{doomed_iid}/restore", data={"_glml_csrf": token}).status_code == 303
    assert f'data-run-iid="{doomed_iid}"' not in text(owner.get(f"{P}/ml/trash"))
    owner.post(f"{P}/ml/candidates/{doomed_iid}/delete", data={"_glml_csrf": token})
    with ui_forge.app.app_context():
        keys = [f.storage_key for f in get_state(ui_forge.app).session.query(PackageFile).filter_by(
            package_id=doomed_package.id)]
    assert keys and all(storage.exists(k) for k in keys)
    purged = owner.post(f"{P}/ml/trash/candidates/{doomed_iid}/purge", data={"_glml_csrf": token})
    assert purged.status_code == 303
    assert owner.get(f"{P}/ml/candidates/{doomed_iid}").status_code == 404
    assert package(str(doomed_iid)) is None and not any(storage.exists(k) for k in keys)
    assert package(str(keep_iid)) is not None  # the neighbour's artifacts stay

    # The whole experiment: to the trash, then gone with every artifact.
    owner.post(f"{P}/ml/experiments/{exp}/delete", data={"_glml_csrf": token})
    assert f'data-experiment-iid="{exp}"' in text(owner.get(f"{P}/ml/trash"))
    assert f'data-experiment-iid="{exp}"' not in text(owner.get(f"{P}/ml/experiments"))
    assert owner.post(f"{P}/ml/trash/experiments/{exp}/purge", data={"_glml_csrf": token}).status_code == 303
    assert owner.get(f"{P}/ml/experiments/{exp}").status_code == 404
    assert owner.get(f"{P}/ml/candidates/{keep_iid}").status_code == 404
    assert package(str(keep_iid)) is None
    with mlflow_env(ui_forge) as client:  # the name is free again
        assert client.create_experiment(f"trash-again-{exp}")


def test_default_experiment_cannot_be_deleted_from_the_page(ui_forge, owner):
    with mlflow_env(ui_forge) as client:
        client.create_run("0")  # makes the project's Default experiment
    body = text(owner.get(f"{P}/ml/experiments/0"))
    assert 'data-testid="delete-experiment"' not in body
    token = csrf_of(owner, f"{P}/ml/candidates/1")
    assert owner.post(f"{P}/ml/experiments/0/delete", data={"_glml_csrf": token}).status_code == 400


# --------------------------------------------------------------------------- compare, models, packages
def test_compare_highlights_differences(owner, seeded):
    runs = [iid(seeded, n) for n in ("baseline", "adam-small", "adam-big")]
    body = text(owner.get(f"{P}/ml/experiments/{seeded.experiment_iid}/compare?" + "&".join(f"runs={r}" for r in runs)))
    assert re.search(r'data-param="lr" data-differs="true"', body)
    assert re.search(r'data-param="batch_size" data-differs="false"', body)
    accuracy = re.search(r'<tr data-metric="accuracy"[^>]*>(.*?)</tr>', body, re.S).group(1)
    assert re.search(r'glml-max[^"]*" title="0.97"', accuracy) and re.search(r'glml-min\s*" title="0.91"', accuracy)
    series = json.loads(re.search(r'data-series="([^"]+)"', body).group(1).replace("&#34;", '"'))
    assert [s["iid"] for s in series] == runs and all("/chart-data" in s["url"] for s in series)
    only = text(owner.get(f"{P}/ml/experiments/{seeded.experiment_iid}/compare?diff=1&"
                          + "&".join(f"runs={r}" for r in runs)))
    assert 'data-param="batch_size"' not in only and 'data-param="lr"' in only


def test_promote_run_to_model_version_and_models_pages(ui_forge, owner, anon, seeded):
    run_page = f"{P}/ml/candidates/{iid(seeded, 'adam-small')}"
    token = csrf_of(owner, run_page)
    name = "digits-" + uuid.uuid4().hex[:6]
    response = owner.post(f"{run_page}/promote", data={"_glml_csrf": token, "model_name": name,
                                                        "description": "first cut"})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/ml/models/{name}")
    again = owner.post(f"{run_page}/promote", data={"_glml_csrf": token, "model_name": name})
    assert again.status_code == 303
    with mlflow_env(ui_forge) as client:
        versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
        assert versions == [1, 2]
        assert client.get_model_version(name, "1").run_id == seeded.runs["adam-small"][1]
        client.set_registered_model_alias(name, "champion", "2")
    model = text(anon.get(f"{P}/ml/models/{name}"))
    assert 'data-version="2"' in model and 'data-version="1"' in model and "@champion" in model
    assert ">adam-small</a>" in model and "first cut" in model
    listing = text(anon.get(f"{P}/ml/models?search={name[:9]}"))
    assert f'data-model="{name}"' in listing and "@champion → v2" in listing
    assert f"/ml/models/{name}" in text(anon.get(run_page))  # the run links to its versions
    assert anon.post(f"{run_page}/promote", data={"_glml_csrf": token, "model_name": name}).status_code == 404
    assert owner.post(f"{run_page}/promote", data={"model_name": name}).status_code == 403


def test_packages_pages_list_files_with_sha256_and_download(owner, anon, seeded):
    name = f"ml_experiment_{seeded.experiment_iid}"
    listing = text(anon.get(f"{P}/packages?search={name}"))
    rows = re.findall(r'<tr data-package-id="(\d+)">(.*?)</tr>', listing, re.S)
    version = f"<code>{iid(seeded, 'baseline')}</code>"
    package_id = int([pid for pid, row in rows if f">{name}</a>" in row and version in row][0])
    page = text(anon.get(f"{P}/packages/{package_id}"))
    assert "metrics.json" in page and "model/data/weights.bin" in page
    assert re.search(r"[0-9a-f]{64}", page)
    href = re.search(r'href="([^"]+/files/\d+/download)"', page).group(1)
    download = anon.get(href)
    assert download.status_code == 200 and download.headers["Content-Disposition"].startswith("attachment")
    import hashlib

    assert hashlib.sha256(download.data).hexdigest() in page
    assert anon.get(f"{P}/packages/{package_id + 100000}").status_code == 404
    assert anon.get(f"/demo/secret/-/packages/{package_id}").status_code == 404


def test_packages_page_walks_every_package_once_by_signed_next_links(ui_forge, anon):
    name = f"walk-{uuid.uuid4().hex[:8]}"
    uploader = ui_forge.app.test_client()
    count = 2 * UI_PAGE + 1  # three pages
    for version in range(count):
        put = uploader.put(f"/api/v4/projects/1/packages/generic/{name}/{version}/f.txt", data=b"x",
                           headers={"PRIVATE-TOKEN": ui_forge.owner_token})
        assert put.status_code == 201, put.get_data(as_text=True)
    url, seen, pages, next_links = f"{P}/packages?search={name}", [], [], []
    while url:
        body = text(anon.get(url))
        pages.append(body)
        seen += [int(pid) for pid in re.findall(r'<tr data-package-id="(\d+)">', body)]
        link = re.search(r'href="([^"]+)" data-testid="next-page"', body)
        url = unescape(link.group(1)) if link else None
        next_links += [url] if url else []
    assert len(pages) == 3 and len(seen) == len(set(seen)) == count
    assert seen == sorted(seen, reverse=True)  # newest first
    assert "« First" not in pages[0] and all("« First" in body for body in pages[1:])
    assert all("cursor=" in link and f"search={name}" in link for link in next_links)

    # The cursor is the packages API's signed one: a plain id (the old ``after``), an
    # edited cursor or one of another filter gets the page's 400.
    signed, _, signature = parse_qs(urlsplit(next_links[0]).query)["cursor"][0].rpartition(".")
    for query in (f"search={name}&cursor={seen[UI_PAGE - 1]}", f"search={name}&cursor={signed}.{signature[::-1]}",
                  f"cursor={signed}.{signature}"):
        response = anon.get(f"{P}/packages?{query}")
        assert response.status_code == 400 and "The request could not be done" in text(response), query


# --------------------------------------------------------------------------- markdown
@pytest.mark.parametrize("source, must_have, must_not_have", [
    ("[x](javascript:alert(1))", [], ["href"]),
    ("[x](JaVaScRiPt:alert(1))", [], ["href"]),
    ("[x]( javascript:alert(1))", [], ["href"]),
    ("[x](data:text/html,hi)", [], ["href"]),
    ("[x](/relative/path)", ['href="/relative/path"'], []),
    ("![alt](https://example.com/a.png)", ['<a href="https://example.com/a.png"'], ["<img"]),
    ("<script>alert(1)</script>", ["&lt;script&gt;"], ["<script"]),
    ('[a"onmouseover="x](https://e.com)', ["&quot;onmouseover"], ['"onmouseover="']),
    ("**bold** _it_ `<b>`", ["<strong>bold</strong>", "<em>it</em>", "<code>&lt;b&gt;</code>"], ["<b>"]),
])
def test_markdown_subset_is_safe(source, must_have, must_not_have):
    from gl_ml_tracking.services.markdown_safe import render_markdown

    html = str(render_markdown(source))
    for piece in must_have:
        assert piece in html
    for piece in must_not_have:
        assert piece not in html
