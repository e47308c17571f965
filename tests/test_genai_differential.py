"""Differential GenAI tests: the same ``mlflow.genai`` client calls against the
reference ``mlflow server`` (3.17.2, SQLite) and against our forge (SQLite and
PostgreSQL); what the client gets back (records, schema, profile, search results,
scorers, error codes, the raw record JSON's fields) must be the same, ids and times
aside."""
from __future__ import annotations

import json
import uuid

import mlflow
import requests
from mlflow.exceptions import MlflowException
from mlflow.genai import datasets as gd
from mlflow.genai.scorers import Guidelines, delete_scorer, get_scorer, list_scorers

from tests.test_search_differential import reference, token_env  # noqa: F401 - the shared fixtures

RECORDS = [
    {"inputs": {"q": "a?"}, "expectations": {"answer": "A"}, "tags": {"k": "v"}},
    {"inputs": {"q": "b?", "n": 2}, "outputs": {"text": "B!"}, "expectations": {"answer": "B", "ok": True}},
    {"inputs": {"q": "c?"}, "outputs": {"text": "C", "score": 0.5},
     "source": {"source_type": "TRACE", "source_data": {"trace_id": "tr-1"}}},
    {"inputs": {"q": "d?", "list": [1, 2]}, "expectations": {"facts": ["x", "y"]},
     "source": {"source_type": "document", "source_data": {"source_id": "doc-7"}}},
]
MERGE = [{"inputs": {"q": "a?"}, "expectations": {"extra": 1}, "outputs": None, "tags": {"k2": "w"}},
         {"inputs": {"q": "e?"}}]
FILTERS = ["name = '{p}-1'", "name LIKE '{p}-%'", "tags.team = 'a'", "tags.team != 'a'", "name IN ('{p}-0', '{p}-2')",
           "created_time > 0 AND tags.team LIKE 'b%'", "name ILIKE '{P}-1'"]
ORDERS = [["name ASC"], ["name DESC"]]  # times tie within a millisecond, in a random order on both


def _error_code(call) -> str:
    try:
        call()
    except MlflowException as exc:
        return exc.error_code
    return "no error"


def _without_user(tags: dict) -> dict:
    return {k: v for k, v in (tags or {}).items() if k != "mlflow.user"}


def _record(row) -> dict:
    return {"inputs": row["inputs"], "outputs": row["outputs"], "expectations": row["expectations"],
            "tags": _without_user(row["tags"]), "source_type": row["source_type"],
            "source_id": row["source_id"] if isinstance(row["source_id"], str) else None,  # NaN in the frame
            "source": str(row["source"])}


def scenario(uri: str) -> dict:
    mlflow.set_tracking_uri(uri)
    exp = mlflow.set_experiment("gd-" + uuid.uuid4().hex[:8]).experiment_id
    out: dict = {}
    ds = gd.create_dataset(name="diff", experiment_id=[exp], tags={"team": "a"})
    out["created"] = (ds.name, _without_user(ds.tags), ds.experiment_ids == [exp], ds.schema, ds.profile)
    ds.merge_records(RECORDS)
    ds.merge_records(MERGE)
    got = gd.get_dataset(dataset_id=ds.dataset_id)
    out["schema"], out["profile"] = json.loads(got.schema), json.loads(got.profile)
    out["records"] = sorted((_record(r) for _, r in got.to_df().iterrows()), key=lambda r: json.dumps(r["inputs"]))
    raw = requests.get(f"{uri}/api/3.0/mlflow/datasets/{ds.dataset_id}/records", timeout=30,
                       headers={"Authorization": "Bearer " + (mlflow.environment_variables.MLFLOW_TRACKING_TOKEN.get() or "")})
    out["record_fields"] = sorted(sorted(r) for r in json.loads(raw.json()["records"]))

    prefix = "p" + uuid.uuid4().hex[:6]  # sorts after "diff" on both sides
    for i, team in enumerate("abab"):
        gd.create_dataset(name=f"{prefix}-{i}", experiment_id=[exp], tags={"team": team})
    for f in FILTERS:
        for order in ORDERS:
            found = gd.search_datasets(experiment_ids=[exp], filter_string=f.format(p=prefix, P=prefix.upper()),
                                       order_by=order)
            out[f"search {f} {order}"] = [d.name.replace(prefix, "P") for d in found]
    out["bad filter"] = _error_code(lambda: list(gd.search_datasets(filter_string="nope = 1")))
    out["bad order"] = _error_code(lambda: list(gd.search_datasets(order_by=["digest ASC"])))
    out["missing dataset"] = _error_code(lambda: gd.get_dataset(dataset_id="d-" + "0" * 32))
    gd.delete_dataset(dataset_id=ds.dataset_id)
    out["deleted"] = _error_code(lambda: gd.get_dataset(dataset_id=ds.dataset_id))

    Guidelines(name="polite", guidelines="one").register(name="polite", experiment_id=exp)
    Guidelines(name="polite", guidelines="two").register(name="polite", experiment_id=exp)
    Guidelines(name="brief", guidelines="three").register(name="brief", experiment_id=exp)
    out["scorers"] = sorted((s.name, s.guidelines) for s in list_scorers(experiment_id=exp))
    out["scorer v1"] = get_scorer(name="polite", experiment_id=exp, version=1).guidelines
    delete_scorer(name="polite", experiment_id=exp, version=1)
    out["scorer v1 deleted"] = _error_code(lambda: get_scorer(name="polite", experiment_id=exp, version=1))
    out["scorer latest"] = get_scorer(name="polite", experiment_id=exp).guidelines
    delete_scorer(name="polite", experiment_id=exp, version="all")
    out["scorer deleted"] = _error_code(lambda: get_scorer(name="polite", experiment_id=exp))
    out["missing scorer delete"] = _error_code(lambda: delete_scorer(name="nope", experiment_id=exp, version="all"))
    return out


def test_genai_client_sees_the_same(reference, forge, token_env):  # noqa: F811 - fixtures
    theirs = scenario(reference)
    ours = scenario(forge.tracking_uri(1))
    assert set(theirs) == set(ours)
    different = {k: (theirs[k], ours[k]) for k in theirs if theirs[k] != ours[k]}
    assert not different, json.dumps(different, indent=1, default=str)[:6000]
