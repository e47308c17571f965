"""The evaluation dataset pages in real headless Chromium against a live forge, on
SQLite and PostgreSQL: reached from the experiment page, listed, searched, a dataset's
records paged; hostile names and record contents render as text. Screenshots go to
``tests/screenshots/<db>/`` (git-ignored) like the other browser tests'."""
from __future__ import annotations

import json
import os
import uuid

import pytest
import requests

from tests.support.ui_seed import XSS, XSS_SCRIPT
from tests.support.browser import CHROMIUM

pytestmark = pytest.mark.browser
P = "/demo/mnist/-"
RECORDS = 60  # the page shows 50 records: two pages


@pytest.fixture(scope="module")
def live(forge, db_kind):
    """The shared live forge (conftest), named as the browser fixtures want it."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    forge.extra["db"] = db_kind
    return forge


@pytest.fixture(scope="module")
def dataset(live):
    headers = {"Authorization": f"Bearer {live.owner_token}"}
    api = live.tracking_uri(1)
    exp = requests.post(f"{api}/api/2.0/mlflow/experiments/create", json={"name": "evals-" + uuid.uuid4().hex[:6]},
                        headers=headers, timeout=60).json()["experiment_id"]
    body = {"name": f"qa {XSS}", "experiment_ids": [exp], "tags": json.dumps({"team": XSS_SCRIPT})}
    ds = requests.post(f"{api}/api/3.0/mlflow/datasets/create", json=body, headers=headers, timeout=60).json()["dataset"]
    records = [{"inputs": {"question": f"q{i:02d} {XSS}"}, "expectations": {"answer": f"a{i}"},
                "source": {"source_type": "HUMAN", "source_data": {}}} for i in range(RECORDS)]
    r = requests.post(f"{api}/api/3.0/mlflow/datasets/{ds['dataset_id']}/records",
                      json={"records": json.dumps(records)}, headers=headers, timeout=60)
    assert r.json() == {"inserted_count": RECORDS, "updated_count": 0}
    other = requests.post(f"{api}/api/3.0/mlflow/datasets/create", json={"name": "unlinked"}, headers=headers,
                          timeout=60).json()["dataset"]
    return {"experiment": exp, "id": ds["dataset_id"], "other": other["dataset_id"]}


def test_dataset_pages_from_the_experiment_page(make_page, shot, dataset):
    page = make_page()
    page.goto(f"{P}/ml/experiments/{dataset['experiment']}")
    with page.expect_navigation():
        page.click("[data-testid=datasets-link]")
    rows = page.locator("[data-testid=datasets-table] tbody tr")
    assert rows.count() == 1  # only the dataset linked to this experiment
    assert f"qa {XSS}" in rows.inner_text() and "60" in rows.inner_text()
    assert "Linked to experiment" in page.locator("[data-testid=datasets-experiment]").inner_text()
    shot(page, "datasets")

    page.goto(f"{P}/ml/datasets")
    assert page.locator("[data-testid=datasets-table] tbody tr").count() == 2
    page.fill("input[name=search]", "unlink")
    with page.expect_navigation():
        page.press("input[name=search]", "Enter")
    assert page.locator("[data-testid=datasets-table] tbody tr").inner_text().startswith("unlinked")

    page.goto(f"{P}/ml/datasets")
    with page.expect_navigation():
        page.click(f"tr[data-dataset={dataset['id']}] a.glml-strong")
    assert page.locator("[data-testid=dataset-name]").inner_text() == f"qa {XSS}"
    records = page.locator("[data-testid=records-table] tbody tr")
    assert records.count() == 50
    assert f"q00 {XSS}" in records.first.inner_text()
    assert "question" in page.locator("[data-testid=dataset-schema]").inner_text()
    assert page.locator("[data-testid=dataset-experiments]").inner_text().startswith("evals-")
    assert XSS_SCRIPT in page.locator(".glml-kv").nth(0).inner_text()
    shot(page, "dataset")
    with page.expect_navigation():
        page.click("[data-testid=next-page]")
    assert page.locator("[data-testid=records-table] tbody tr").count() == RECORDS - 50
    assert f"q59 {XSS}" in page.locator("[data-testid=records-table]").inner_text()


def test_dataset_pages_refuse_what_is_not_there(live, make_page, dataset):
    page = make_page()
    assert page.goto(f"{P}/ml/datasets/d-{'0' * 32}").status == 404
    assert page.goto(f"{P}/ml/datasets?experiment=987654").status == 404
    assert page.goto(f"{P}/ml/datasets/{dataset['id']}?page_token=forged").status == 400
    # The private project's pages do not exist for the outsider.
    anonymous = make_page(user=None)
    assert anonymous.goto("/demo/secret/-/ml/datasets").status == 404
