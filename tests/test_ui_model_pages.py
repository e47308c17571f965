"""The experiment charts' JSON (curves, run values) and the logged-model and
model-version pages through Flask's test client, on SQLite and PostgreSQL, with
data logged by the real MLflow client: what they show, that edits made on the
pages read back through the MLflow client, CSRF and permission refusals."""
from __future__ import annotations

import math
import re
import uuid

import pytest

from tests.support.charts_seed import log_signature_model, seed_sweep
from tests.support.liveserver import build_app, migrate_and_seed, serve
from tests.support.ui_seed import mlflow_env, run_iid, sign_in

P = "/demo/mnist/-"


@pytest.fixture(scope="module")
def pages_forge(database_url, tmp_path_factory):
    app = build_app(database_url, str(tmp_path_factory.mktemp("storage")))
    migrate_and_seed(app)
    live = serve(app)
    sweep = seed_sweep(live)
    sweep.model_id, sweep.model_run_iid = log_signature_model(live, sweep.experiment_iid)
    live.extra["sweep"] = sweep
    yield live
    live.stop()
    with app.app_context():
        from gl_ml_tracking import get_state

        get_state(app).db.engine.dispose()


@pytest.fixture(scope="module")
def sweep(pages_forge):
    return pages_forge.extra["sweep"]


@pytest.fixture
def anon(pages_forge):
    return pages_forge.app.test_client()


@pytest.fixture
def owner(pages_forge):
    client = pages_forge.app.test_client()
    sign_in(client)
    return client


@pytest.fixture
def outsider(pages_forge):
    client = pages_forge.app.test_client()
    client.environ_base["HTTP_PRIVATE_TOKEN"] = pages_forge.outsider_token
    return client


def text(response) -> str:
    return response.get_data(as_text=True)


def csrf_of(client, url: str) -> str:
    found = re.search(r'name="_glml_csrf" value="([^"]+)"', text(client.get(url)))
    assert found, f"no CSRF token on {url}"
    return found.group(1)


# --------------------------------------------------------------------------- curves.json
def test_curves_give_each_runs_steps_in_the_order_asked(anon, sweep):
    iids = [r[0] for r in sweep.runs[:3]][::-1]
    url = f"{P}/ml/experiments/{sweep.experiment_iid}/curves.json?key=loss&runs=" + ",".join(map(str, iids))
    body = anon.get(url).get_json()
    assert [r["iid"] for r in body["runs"]] == iids
    first = body["runs"][0]
    assert [p[0] for p in first["points"]] == list(range(50))  # 50 steps < points: the whole history
    final = [r for r in sweep.runs if r[0] == iids[0]][0][4]
    assert first["points"][-1][1] == pytest.approx(final)
    assert first["name"] == [r for r in sweep.runs if r[0] == iids[0]][0][2]


def test_curves_are_downsampled_and_zoomable(anon, sweep):
    iid = sweep.runs[0][0]
    base = f"{P}/ml/experiments/{sweep.experiment_iid}/curves.json?key=loss&runs={iid}"
    small = anon.get(base + "&points=10").get_json()["runs"][0]["points"]
    assert 2 <= len(small) <= 10 and small[0][0] == 0 and small[-1][0] == 49
    zoomed = anon.get(base + "&start=10&end=20").get_json()["runs"][0]["points"]
    assert [p[0] for p in zoomed] == list(range(10, 21))


def test_curves_skip_nan_and_infinities_and_count_them(anon, sweep):
    url = f"{P}/ml/experiments/{sweep.experiment_iid}/curves.json?key=loss&runs={sweep.nan_run_iid}"
    response = anon.get(url)
    assert response.status_code == 200
    run = response.get_json()["runs"][0]
    assert run["nan"] == 1 and run["inf"] == 2
    assert [p[0] for p in run["points"]] == [0, 1, 3, 5, 7]
    assert all(math.isfinite(p[1]) for p in run["points"])
    values = anon.get(f"{P}/ml/experiments/{sweep.experiment_iid}/run-values.json?runs={sweep.nan_run_iid}")
    assert values.status_code == 200 and values.get_json()["runs"][0]["metrics"]["zz_latest_inf"] is None


def _special(step: int, value: float) -> float:
    return math.nan if step % 97 == 0 else math.inf if step % 89 == 0 else -math.inf if step % 83 == 0 else value


def test_curves_of_long_histories_are_exactly_the_sampling_rule(pages_forge, anon):
    """Two runs logged through the client (2,500 steps, every fifth step logged again
    later with another value, NaN and ±inf among them; and 40 steps) share the seek
    budget; each curve is the brute-force reading of the sampling rule over every
    logged point (``expected_sample``), whole, zoomed, and with the budget split."""
    from mlflow.entities import Metric

    from tests.test_metric_sampling import expected_sample

    histories = {}
    with mlflow_env(pages_forge) as client:
        exp = client.create_experiment(f"long-curves-{uuid.uuid4().hex[:6]}")
        for name, steps in (("long", 2500), ("short", 40)):
            run = client.create_run(exp, run_name=name)
            ts = run.info.start_time
            rows = [(s, ts + s, _special(s, math.sin(s / 40))) for s in range(steps)]
            rows += [(s, ts + 10_000 + s, _special(s + 1, math.cos(s / 40))) for s in range(0, steps, 5)]
            for i in range(0, len(rows), 1000):
                client.log_batch(run.info.run_id, metrics=[Metric("loss", v, t, s) for s, t, v in rows[i:i + 1000]])
            histories[name] = (run_iid(pages_forge, run.info.run_id), [(i, s, t, v) for i, (s, t, v) in enumerate(rows)])

    def want(rows, start, end, n):
        picked = expected_sample(rows, start, end, n)
        finite = [[r[1], r[3]] for r in picked if math.isfinite(r[3])]
        return finite, sum(math.isnan(r[3]) for r in picked), sum(math.isinf(r[3]) for r in picked)

    iids = [histories["long"][0], histories["short"][0]]
    base = f"{P}/ml/experiments/{exp}/curves.json?key=loss&runs={iids[0]},{iids[1]}"
    specials = set()
    for query, start, end, n in (("&points=60", None, None, 60), ("&points=300&start=100&end=1800", 100, 1800, 300),
                                 ("&points=1000", None, None, 1000)):
        body = anon.get(base + query).get_json()
        assert body["points"] == n
        assert [r["iid"] for r in body["runs"]] == iids
        for run, name in zip(body["runs"], ("long", "short")):
            points, nan, inf = want(histories[name][1], start, end, n)
            assert (run["points"], run["nan"], run["inf"]) == (points, nan, inf), (query, name)
            specials.update(k for k in ("nan", "inf") if run[k])
    assert specials == {"nan", "inf"}  # the specials were sampled somewhere
    # Eleven runs share 10,000 seeks: asked for 1,000 points each, each curve gets 909.
    with mlflow_env(pages_forge) as client:
        for i in range(9):
            extra = client.create_run(exp, run_name=f"extra-{i}")
            client.log_metric(extra.info.run_id, "loss", float(i), step=0)
            iids.append(run_iid(pages_forge, extra.info.run_id))
    body = anon.get(f"{P}/ml/experiments/{exp}/curves.json?key=loss&points=1000&runs="
                    + ",".join(map(str, iids))).get_json()
    assert body["points"] == 909 and len(body["runs"]) == 11
    long_run = body["runs"][0]
    assert (long_run["points"], long_run["nan"], long_run["inf"]) == want(histories["long"][1], None, None, 909)
    assert [r["points"] for r in body["runs"][2:]] == [[[0, float(i)]] for i in range(9)]


def test_curves_bad_arguments_are_json_errors(anon, sweep):
    base = f"{P}/ml/experiments/{sweep.experiment_iid}/curves.json"
    for query in ("", "?key=loss&runs=abc", "?key=loss&runs=1&start=9&end=2", "?key=../x&runs=1",
                  "?key=loss&runs=" + ",".join(str(i) for i in range(1, 103)), "?key=loss&runs=1&points=x"):
        response = anon.get(base + query)
        assert response.status_code == 400, query
        assert response.get_json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert anon.get(f"{P}/ml/experiments/99999/curves.json?key=loss&runs=1").status_code == 404
    # A private project's experiments are not found, as pages are.
    assert anon.get(f"/demo/secret/-/ml/experiments/{sweep.experiment_iid}/curves.json?key=loss&runs=1"
                    ).status_code == 404


def test_run_values_carry_params_latest_metrics_and_directions(anon, sweep):
    iids = [r[0] for r in sweep.runs]
    body = anon.get(f"{P}/ml/experiments/{sweep.experiment_iid}/run-values.json?runs="
                    + ",".join(map(str, iids))).get_json()
    assert body["params"] == ["layers", "lr", "optimizer"] and "loss" in body["metrics"]
    assert body["directions"]["loss"] == "min" and body["directions"]["accuracy"] == "max"
    by_iid = {r["iid"]: r for r in body["runs"]}
    for iid, _rid, name, lr, loss, acc in sweep.runs:
        assert by_iid[iid]["params"]["lr"] == str(lr)
        assert by_iid[iid]["metrics"]["loss"] == pytest.approx(loss)
        assert by_iid[iid]["metrics"]["accuracy"] == pytest.approx(acc)


def test_compare_page_marks_the_best_value_by_direction(owner, sweep):
    iids = [r[0] for r in sweep.runs[:4]]
    body = text(owner.get(f"{P}/ml/experiments/{sweep.experiment_iid}/compare?runs=" + ",".join(map(str, iids))))
    loss_row = re.search(r'<tr data-metric="loss"[^>]*>(.*?)</tr>', body, re.S)
    assert 'data-direction="min"' in loss_row.group(0)
    best_loss = min(r[4] for r in sweep.runs[:4])
    assert re.search(rf'glml-best[^"]*"[^>]*data-value="{best_loss}"', loss_row.group(1))
    acc_row = re.search(r'<tr data-metric="accuracy"[^>]*>(.*?)</tr>', body, re.S)
    best_acc = max(r[5] for r in sweep.runs[:4])
    assert 'data-direction="max"' in acc_row.group(0)
    assert re.search(rf'glml-best[^"]*"[^>]*data-value="{best_acc}"', acc_row.group(1))


# --------------------------------------------------------------------------- logged model page
def test_run_page_links_its_logged_models(anon, sweep):
    body = text(anon.get(f"{P}/ml/candidates/{sweep.model_run_iid}"))
    assert f'href="{P}/ml/logged-models/{sweep.model_id}" data-testid="logged-model-link"' in body


def test_logged_model_page_shows_details_signature_and_files(anon, sweep):
    response = anon.get(f"{P}/ml/logged-models/{sweep.model_id}")
    assert response.status_code == 200
    body = text(response)
    assert sweep.model_id in body and "iris-model" in body and 'data-testid="logged-model-status">ready' in body
    assert f'href="{P}/ml/candidates/{sweep.model_run_iid}" data-testid="source-run-link"' in body
    inputs = re.search(r'data-testid="signature-inputs">(.*?)</table>', body, re.S).group(1)
    assert "sepal_length" in inputs and "double" in inputs and "&lt;b&gt;colour&lt;/b&gt;" in inputs
    assert "<b>colour</b>" not in body
    assert re.search(r"<td[^>]*>&lt;b&gt;colour&lt;/b&gt;</td><td><code[^>]*>string</code></td><td>no</td>", inputs)
    outputs = re.search(r'data-testid="signature-outputs">(.*?)</table>', body, re.S).group(1)
    assert "label" in outputs and "long" in outputs
    files = re.findall(r'data-testid="model-file">([^<]+)<', body)
    assert {"MLmodel", "requirements.txt", "python_env.yaml", "conda.yaml"} <= set(files)
    assert "scikit-learn==1.5.0" in body  # requirements.txt shown
    assert "alpha" in body and "val_loss" in body  # params and metrics
    download = re.search(r'href="([^"]+files/raw\?path=requirements.txt)"', body).group(1)
    got = anon.get(download.replace("&amp;", "&"))
    assert got.status_code == 200 and b"scikit-learn==1.5.0" in got.data


def test_logged_model_page_refuses_unknown_and_foreign_ids(anon, outsider, sweep):
    assert anon.get(f"{P}/ml/logged-models/m-{'0' * 32}").status_code == 404
    assert anon.get(f"{P}/ml/logged-models/not-an-id").status_code == 404
    assert anon.get(f"/demo/secret/-/ml/logged-models/{sweep.model_id}").status_code == 404
    assert anon.get(f"{P}/ml/logged-models/{sweep.model_id}/files/raw?path=../../etc/passwd").status_code in (400, 404)


def test_register_logged_model_as_a_version_needs_csrf_and_permission(pages_forge, owner, anon, outsider, sweep):
    page = f"{P}/ml/logged-models/{sweep.model_id}"
    token = csrf_of(owner, page)
    name = "iris-" + uuid.uuid4().hex[:6]
    url = f"{page}/register"
    assert owner.post(url, data={"model_name": name}).status_code == 403
    assert owner.post(url, data={"model_name": name, "_glml_csrf": "x" + token[1:]}).status_code == 403
    for reader in (anon, outsider):
        assert reader.post(url, data={"model_name": name, "_glml_csrf": token}).status_code == 404
    with mlflow_env(pages_forge) as client:
        assert not client.search_registered_models(f"name = '{name}'")
    done = owner.post(url, data={"model_name": name, "description": "from the page", "_glml_csrf": token})
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/ml/models/{name}/versions/1")
    with mlflow_env(pages_forge) as client:
        mv = client.get_model_version(name, "1")
        assert mv.description == "from the page" and mv.run_id
    # The client does not read model_id from the registry's answer (MLflow 3.17's from_proto); the JSON has it.
    raw = pages_forge.app.test_client().get(
        f"/api/v4/projects/1/ml/mlflow/api/2.0/mlflow/model-versions/get?name={name}&version=1",
        headers={"Authorization": f"Bearer {pages_forge.owner_token}"})
    assert raw.get_json()["model_version"]["model_id"] == sweep.model_id
    body = text(anon.get(page))
    assert f'href="{P}/ml/models/{name}/versions/1" data-testid="version-link"' in body


# --------------------------------------------------------------------------- model version page
@pytest.fixture
def version(pages_forge, sweep):
    name = "ver-" + uuid.uuid4().hex[:6]
    with mlflow_env(pages_forge) as client:
        client.create_registered_model(name)
        client.create_model_version(name, f"models:/{sweep.model_id}", model_id=sweep.model_id,
                                    description="**bold** <script>alert(1)</script>")
        client.create_model_version(name, f"models:/{sweep.model_id}", model_id=sweep.model_id)
    return name


def test_model_page_links_versions_and_version_page_shows_everything(anon, version, sweep):
    model = text(anon.get(f"{P}/ml/models/{version}"))
    assert f'href="{P}/ml/models/{version}/versions/2" data-testid="version-page-link"' in model
    body = text(anon.get(f"{P}/ml/models/{version}/versions/1"))
    assert f'href="{P}/ml/candidates/{sweep.model_run_iid}" data-testid="version-run-link"' in body
    assert f'href="{P}/ml/logged-models/{sweep.model_id}" data-testid="version-logged-model-link"' in body
    assert "<strong>bold</strong>" in body and "<script>alert(1)" not in body
    assert "sepal_length" in body and 'data-testid="signature-inputs"' in body
    assert "MLmodel" in re.search(r'data-testid="model-file-list">(.*?)</table>', body, re.S).group(1)
    assert "_glml_csrf" not in body  # a reader gets no forms
    assert anon.get(f"{P}/ml/models/{version}/versions/9").status_code == 404
    assert anon.get(f"/demo/secret/-/ml/models/{version}/versions/1").status_code == 404


def test_version_edits_read_back_through_the_client(pages_forge, owner, version):
    page = f"{P}/ml/models/{version}/versions/1"
    token = csrf_of(owner, page)

    def post(suffix, **data):
        response = owner.post(page + suffix, data=dict(data, _glml_csrf=token))
        assert response.status_code == 303, text(response)
        assert response.headers["Location"].endswith(page)
        return response

    post("/description", description="# Card\nNew *text*")
    post("/aliases", alias="champion")
    post("/tags", key="team", value="vision")
    post("/tags", key="reviewed", value="yes")
    post("/tags/delete", key="reviewed")
    post("/stage", stage="Staging")
    with mlflow_env(pages_forge) as client:
        mv = client.get_model_version(version, "1")
        assert mv.description == "# Card\nNew *text*"
        assert mv.tags == {"team": "vision"} and mv.current_stage == "Staging"
        assert client.get_model_version_by_alias(version, "champion").version == "1"
    body = text(owner.get(page))
    assert "<em>text</em>" in body and "@champion" in body
    post("/aliases/delete", alias="champion")
    with mlflow_env(pages_forge) as client:
        assert client.get_registered_model(version).aliases == {}
    bad = owner.post(page + "/stage", data={"stage": "Nowhere", "_glml_csrf": token})
    assert bad.status_code == 400


def test_version_edits_refused_without_csrf_or_permission(pages_forge, owner, anon, outsider, version):
    page = f"{P}/ml/models/{version}/versions/1"
    token = csrf_of(owner, page)
    for suffix, data in (("/description", {"description": "hacked"}), ("/tags", {"key": "k", "value": "v"}),
                         ("/aliases", {"alias": "evil"}), ("/delete", {})):
        assert owner.post(page + suffix, data=data).status_code == 403
        assert owner.post(page + suffix, data=dict(data, _glml_csrf=token),
                          headers={"Origin": "http://evil.example"}).status_code == 403
        for reader in (anon, outsider):
            assert reader.post(page + suffix, data=dict(data, _glml_csrf=token)).status_code == 404
    assert owner.post(f"{P}/ml/models/{version}/delete").status_code == 403
    with mlflow_env(pages_forge) as client:
        mv = client.get_model_version(version, "1")
        assert mv.tags == {} and mv.description.startswith("**bold**")
        assert client.get_registered_model(version).aliases == {}


def test_delete_a_version_then_the_model(pages_forge, owner, version):
    page = f"{P}/ml/models/{version}/versions/2"
    token = csrf_of(owner, page)
    gone = owner.post(page + "/delete", data={"_glml_csrf": token})
    assert gone.status_code == 303 and gone.headers["Location"].endswith(f"/ml/models/{version}")
    with mlflow_env(pages_forge) as client:
        assert [v.version for v in client.search_model_versions(f"name = '{version}'")] == ["1"]
    assert owner.get(page).status_code == 404
    dropped = owner.post(f"{P}/ml/models/{version}/delete", data={"_glml_csrf": token})
    assert dropped.status_code == 303 and dropped.headers["Location"].endswith("/ml/models")
    with mlflow_env(pages_forge) as client:
        assert not client.search_registered_models(f"name = '{version}'")
