"""GenAI evaluation datasets (``/api/3.0/mlflow/datasets/*``) through the unmodified
MLflow client (``mlflow.genai.datasets``) and over REST, against the live forge on
SQLite and PostgreSQL: records merged by their inputs, paged reads, search filters and
paging, tags, experiment links, project isolation and MLflow's error JSON."""
from __future__ import annotations

import json
import threading
import uuid

import mlflow
import pandas as pd
import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.genai import datasets as gd


def _name(prefix="ds"):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _v3(forge, project=1):
    return forge.tracking_uri(project) + "/api/3.0/mlflow/"


def _auth(token):
    return {"Authorization": f"Bearer {token}"}


def _post(forge, path, body, project=1, token=None, method="POST"):
    return requests.request(method, _v3(forge, project) + path, json=body,
                            headers=_auth(token or forge.owner_token), timeout=60)


def _get(forge, path, params=None, project=1, token=None):
    return requests.get(_v3(forge, project) + path, params=params, headers=_auth(token or forge.owner_token), timeout=60)


def test_client_round_trip(forge, mlflow_client):
    exp_id = mlflow.set_experiment(_name("exp")).experiment_id
    other = mlflow_client.create_experiment(_name("exp"))
    ds = gd.create_dataset(name="qa", experiment_id=[exp_id], tags={"team": "x"})
    assert ds.dataset_id.startswith("d-") and ds.name == "qa"
    assert ds.tags["team"] == "x" and ds.experiment_ids == [exp_id]

    ds.merge_records([
        {"inputs": {"q": "a?"}, "expectations": {"answer": "A"}, "tags": {"k": "v"}},
        {"inputs": {"q": "b?", "n": 2}, "expectations": {"answer": "B"}},
    ])
    # Same inputs: merged into the record (expectations updated key by key), not added.
    ds.merge_records([{"inputs": {"q": "a?"}, "expectations": {"extra": 1}}])
    ds.merge_records(pd.DataFrame([{"inputs": {"q": "c?"}, "expectations": {"answer": "C"}}]))

    df = ds.to_df()
    assert len(df) == 3
    by_q = {row["inputs"]["q"]: row for _, row in df.iterrows()}
    assert by_q["a?"]["expectations"] == {"answer": "A", "extra": 1}
    assert by_q["a?"]["tags"]["k"] == "v"
    assert by_q["b?"]["inputs"] == {"q": "b?", "n": 2}
    assert all(rid.startswith("dr-") for rid in df["dataset_record_id"])

    got = gd.get_dataset(dataset_id=ds.dataset_id)
    assert json.loads(got.schema) == {"inputs": {"q": "string", "n": "integer"}, "outputs": {},
                                      "expectations": {"answer": "string", "extra": "integer"}, "version": "1.0"}
    assert json.loads(got.profile) == {"num_records": 3}
    assert got.digest and got.digest != ds.digest  # the records changed it

    gd.set_dataset_tags(dataset_id=ds.dataset_id, tags={"a": "1", "team": None})
    gd.delete_dataset_tag(dataset_id=ds.dataset_id, key="team")
    assert gd.get_dataset(dataset_id=ds.dataset_id).tags.get("a") == "1"
    assert "team" not in gd.get_dataset(dataset_id=ds.dataset_id).tags

    gd.add_dataset_to_experiments(ds.dataset_id, [other])
    assert sorted(gd.get_dataset(dataset_id=ds.dataset_id).experiment_ids) == sorted([exp_id, other])
    gd.remove_dataset_from_experiments(ds.dataset_id, [other])
    assert gd.get_dataset(dataset_id=ds.dataset_id).experiment_ids == [exp_id]

    found = gd.search_datasets(experiment_ids=[exp_id], filter_string="name LIKE 'q%'", order_by=["created_time DESC"])
    assert [d.dataset_id for d in found] == [ds.dataset_id]
    assert list(gd.search_datasets(experiment_ids=[other])) == []

    assert ds.delete_records([by_q["c?"]["dataset_record_id"]]) == 1
    assert len(gd.get_dataset(dataset_id=ds.dataset_id).to_df()) == 2

    gd.delete_dataset(dataset_id=ds.dataset_id)
    with pytest.raises(MlflowException, match="not found"):
        gd.get_dataset(dataset_id=ds.dataset_id)


def test_records_paged_and_merged_in_one_batch(forge, mlflow_client):
    ds = _post(forge, "datasets/create", {"name": _name()}).json()["dataset"]
    records = [{"inputs": {"i": i}, "outputs": f"o{i}", "source": {"source_type": "trace", "source_data": {"trace_id": f"tr-{i}"}}}
               for i in range(25)]
    records.append({"inputs": {"i": 3}, "expectations": {"e": 1}})  # the same inputs twice in one batch
    r = _post(forge, f"datasets/{ds['dataset_id']}/records", {"records": json.dumps(records)})
    assert r.status_code == 200, r.text
    assert r.json() == {"inserted_count": 25, "updated_count": 1}

    seen, token, pages = [], None, 0
    while True:
        params = {"max_results": 10, **({"page_token": token} if token else {})}
        body = _get(forge, f"datasets/{ds['dataset_id']}/records", params).json()
        seen += json.loads(body["records"])
        pages += 1
        token = body.get("next_page_token")
        if not token:
            break
    assert pages == 3 and len(seen) == 25 and len({r["dataset_record_id"] for r in seen}) == 25
    three = next(r for r in seen if r["inputs"] == {"i": 3})
    assert three["expectations"] == {"e": 1} and three["outputs"] == "o3"
    assert three["source_type"] == "TRACE" and three["source_id"] == "tr-3"

    # A token of this listing is no token of another dataset's.
    other = _post(forge, "datasets/create", {"name": _name()}).json()["dataset"]
    first = _get(forge, f"datasets/{ds['dataset_id']}/records", {"max_results": 10}).json()["next_page_token"]
    r = _get(forge, f"datasets/{other['dataset_id']}/records", {"page_token": first})
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_search_filters_order_and_pages(forge, mlflow_client):
    exp_id = mlflow_client.create_experiment(_name("exp"))
    prefix = uuid.uuid4().hex[:6]
    ids = []
    for i in range(5):
        body = {"name": f"{prefix}-{i}", "experiment_ids": [exp_id],
                "tags": json.dumps({"parity": "even" if i % 2 == 0 else "odd"})}
        ids.append(_post(forge, "datasets/create", body).json()["dataset"]["dataset_id"])

    def search(**body):
        r = _post(forge, "datasets/search", {"experiment_ids": [exp_id], **body})
        assert r.status_code == 200, r.text
        return r.json()

    assert [d["name"] for d in search(order_by=["name ASC"])["datasets"]] == [f"{prefix}-{i}" for i in range(5)]
    assert {d["name"] for d in search(filter_string="tags.parity = 'odd'")["datasets"]} == {f"{prefix}-1", f"{prefix}-3"}
    named = search(filter_string=f"name IN ('{prefix}-0', '{prefix}-4') AND tags.parity LIKE 'ev%'")
    assert {d["name"] for d in named["datasets"]} == {f"{prefix}-0", f"{prefix}-4"}
    newest = search(filter_string="created_time > 0 AND last_update_time > 0", max_results=1)["datasets"]
    everything = search()["datasets"]  # default order: newest first
    assert len(newest) == 1 and newest[0]["created_time"] == max(d["created_time"] for d in everything)
    assert [d["created_time"] for d in everything] == sorted((d["created_time"] for d in everything), reverse=True)

    names, token = [], None
    while True:
        page = search(order_by=["name DESC"], max_results=2, **({"page_token": token} if token else {}))
        names += [d["name"] for d in page["datasets"]]
        token = page.get("next_page_token")
        if not token:
            break
    assert names == [f"{prefix}-{i}" for i in reversed(range(5))]

    for body in ({"filter_string": "nope = 'x'"}, {"filter_string": "name = "}, {"order_by": ["digest ASC"]},
                 {"max_results": 50001}, {"page_token": "forged"}):
        r = _post(forge, "datasets/search", body)
        assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", (body, r.text)


def test_projects_are_isolated(forge, mlflow_client):
    secret_exp = requests.post(forge.tracking_uri(2) + "/api/2.0/mlflow/experiments/create",
                               json={"name": _name("exp")}, headers=_auth(forge.owner_token), timeout=60)
    secret_exp_id = secret_exp.json()["experiment_id"]
    ds = _post(forge, "datasets/create", {"name": _name(), "experiment_ids": [secret_exp_id]}, project=2).json()["dataset"]
    mine = _post(forge, "datasets/create", {"name": _name()}).json()["dataset"]

    r = _get(forge, f"datasets/{ds['dataset_id']}")
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    for path, body in ((f"datasets/{ds['dataset_id']}/records", {"records": "[]"}),
                       (f"datasets/{ds['dataset_id']}/add-experiments", {"experiment_ids": ["1"]})):
        r = _post(forge, path, body)
        assert r.status_code == 404, r.text
    listed = _post(forge, "datasets/search", {"max_results": 1000}).json()["datasets"]
    assert ds["dataset_id"] not in {d["dataset_id"] for d in listed}
    # Deleting another project's dataset through this one deletes nothing.
    assert _post(forge, f"datasets/{ds['dataset_id']}", None, method="DELETE").status_code == 200
    assert _get(forge, f"datasets/{ds['dataset_id']}", project=2).status_code == 200
    # An experiment of another project cannot be linked (its id means nothing here).
    r = _post(forge, f"datasets/{mine['dataset_id']}/add-experiments", {"experiment_ids": ["987654"]})
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    # The outsider may read the public project but not write, and does not see the private one.
    r = _post(forge, "datasets/create", {"name": _name()}, token=forge.outsider_token)
    assert r.status_code == 403
    assert _get(forge, f"datasets/{ds['dataset_id']}", project=2, token=forge.outsider_token).status_code == 404


@pytest.mark.parametrize("path, body", [
    ("datasets/create", {}),
    ("datasets/create", {"name": "x", "tags": "{not json"}),
    ("datasets/create", {"name": "x", "tags": "[1]"}),
    ("datasets/create", {"name": "x", "experiment_ids": ["nope"]}),
    ("records", {"records": "{not json"}),
    ("records", {"records": "{}"}),
    ("records", {"records": "[1]"}),
    ("records", {"records": json.dumps([{"inputs": [1]}])}),
    ("records", {"records": json.dumps([{"inputs": {}, "source": {"source_type": "ALIEN"}}])}),
    ("records", {"records": json.dumps([{"inputs": {}, "expectations": "x"}])}),
    ("records", {}),
    ("tags", {"tags": "nope"}),
    ("tags", {"tags": json.dumps({"a": "nul \u0000 inside"})}),
    ("records", {"records": json.dumps([{"inputs": {}, "tags": {"mlflow.user": "\u0000"}}])}),
    ("records", {"records": json.dumps([{"inputs": {}, "source": {"source_type": "CODE", "source_data": {"source_id": "\u0000"}}}])}),
    ("records", {"records": '[{"inputs": {"x": NaN}}]'}),
])
def test_bad_input_answers_mlflow_errors(forge, mlflow_client, path, body):
    ds = _post(forge, "datasets/create", {"name": _name()}).json()["dataset"]
    if path == "records":
        r = _post(forge, f"datasets/{ds['dataset_id']}/records", body)
    elif path == "tags":
        r = _post(forge, f"datasets/{ds['dataset_id']}/tags", body, method="PATCH")
    else:
        r = _post(forge, path, body)
    assert r.status_code in (400, 404), r.text
    assert r.json()["error_code"] in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST") and r.json()["message"]


def test_unknown_dataset_ids(forge, mlflow_client):
    for bad in ("d-" + "0" * 32, "not-an-id", "%00"):
        r = _get(forge, f"datasets/{bad}")
        assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST", r.text
    r = _get(forge, "datasets/d-" + "0" * 32 + "/records", {"max_results": "x"})
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_concurrent_upserts_of_the_same_records(forge, mlflow_client):
    """Four writers upsert the same 100 new records at once: each record is inserted once
    and merged three times, whoever comes first (503s are retried, as the client does)."""
    ds = _post(forge, "datasets/create", {"name": _name()}).json()["dataset"]["dataset_id"]
    start = threading.Barrier(4)
    results: list = []

    def writer(n: int) -> None:
        body = {"records": json.dumps([{"inputs": {"i": i}, "expectations": {f"w{n}": n}} for i in range(100)])}
        start.wait()
        for _attempt in range(20):
            r = _post(forge, f"datasets/{ds}/records", body)
            if r.status_code != 503:
                break
        results.append((r.status_code, r.json()))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [status for status, _ in results] == [200] * 4, results
    assert sum(body["inserted_count"] for _, body in results) == 100
    assert sum(body["updated_count"] for _, body in results) == 300
    records = json.loads(_get(forge, f"datasets/{ds}/records").json()["records"])
    assert len(records) == 100
    assert all(r["expectations"] == {f"w{n}": n for n in range(4)} for r in records)  # no merge lost
