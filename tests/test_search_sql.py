"""``search_runs`` / ``search_experiments`` compiled to SQL, on SQLite and PostgreSQL.

The schema comes from ``Base.metadata.create_all``: on SQLite in a temporary file,
on PostgreSQL (TEST_DATABASE_URL) in a fresh schema ``t_<random>`` selected with
``search_path`` and dropped afterwards. Without a PostgreSQL server those tests
skip, unless GLML_REQUIRE_POSTGRES=1, where they fail.
"""
from __future__ import annotations

import base64
import json
import math
import os
import uuid

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.orm import Session

from gl_ml_tracking.errors import InvalidParameter
from gl_ml_tracking.models import (
    Base,
    Dataset,
    Experiment,
    ExperimentTag,
    LatestMetric,
    Param,
    Run,
    RunInput,
    RunTag,
)
from gl_ml_tracking.search.tokens import decode_token, encode_token
from gl_ml_tracking.services import uris
from gl_ml_tracking.services.search import EXPERIMENTS_TOKEN_KIND, RUNS_TOKEN_KIND, search_experiments, search_runs

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
if PG_URL.startswith("postgresql://"):
    PG_URL = "postgresql+psycopg://" + PG_URL[len("postgresql://"):]
REQUIRE_PG = os.environ.get("GLML_REQUIRE_POSTGRES") == "1"


def _pg_engine_in_fresh_schema():
    """(engine, drop) for a new schema on the PostgreSQL server, or skip/fail without one."""
    try:
        admin = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "no server"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        message = f"PostgreSQL at {PG_URL} does not answer: {reason}"
        if REQUIRE_PG:
            pytest.fail(message + " (GLML_REQUIRE_POSTGRES=1: PostgreSQL tests must run)")
        pytest.skip(message)
    schema = "t_" + uuid.uuid4().hex[:12]
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})

    def drop():
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()

    return engine, drop


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine(request, tmp_path_factory):
    if request.param == "sqlite":
        eng = create_engine(f"sqlite:///{tmp_path_factory.mktemp('search')}/search.db")
        drop = eng.dispose
    else:
        eng, drop = _pg_engine_in_fresh_schema()
    Base.metadata.create_all(eng)
    yield eng
    drop()


def _uuid(n: int) -> str:
    return f"{n:02x}" + "0" * 30


# --------------------------------------------------------------------------- the data set
# (key, name, status, start, end, user, stage, metrics, params, tags, inputs)
# NaN metrics are stored as value NULL + is_nan; inputs are (dataset, digest, context or None).
NAN = float("nan")
RUNS_E1 = [
    ("a", "alpha", "FINISHED", 1000, 1100, "alice", "active", {"acc": 0.9, "loss": 0.1},
     {"lr": "0.01", "opt": "adam"}, {"team": "Vision", "note": "it's"}, [("ds1", "d1", "train")]),
    ("b", "beta", "FAILED", 2000, None, "bob", "active", {"acc": 0.5, "loss": NAN},
     {"lr": "0.1", "opt": "Adam"}, {"team": "vision"}, [("ds1", "d1", "eval")]),
    ("c", "gamma", "RUNNING", 3000, None, "alice", "active", {"acc": NAN},
     {"lr": "0.001"}, {"team": "NLP", "with space": "x%y"}, [("ds2", "d2", None)]),
    ("d", "delta", "FINISHED", 3000, 3500, "carol", "active", {},
     {"lr": "1e-3", "opt": "sgd"}, {"path": "a\\b"}, []),
    ("e", "Epsilon_1", "KILLED", 500, 600, None, "active", {"acc": math.inf, "loss": -1.5},
     {"my key": "v[1]*?"}, {}, [("ds3", "d3", "Train")]),
    ("f", "zeta", "FINISHED", 4000, 4100, "bob", "deleted", {"acc": 0.95}, {"lr": "0.01"}, {}, []),
]
RUNS_E2 = [
    ("g", "eta", "FINISHED", 1500, 1600, "alice", "active", {"acc": 0.7}, {"lr": "0.01"}, {"team": "vision"}, []),
]
ACTIVE = {"alpha", "beta", "gamma", "delta", "Epsilon_1", "eta"}


def _add_run(s, project_id, exp, number, spec):
    key, name, status, start, end, user, stage, metrics, params, tags, inputs = spec
    run = Run(
        run_uuid=_uuid(number), project_id=project_id, experiment_id=exp.id, iid=number, name=name,
        status=status, start_time=start, end_time=end, user_id=user, lifecycle_stage=stage,
    )
    s.add(run)
    s.flush()
    for k, v in metrics.items():
        nan = isinstance(v, float) and math.isnan(v)
        s.add(LatestMetric(run_id=run.id, key=k, value=None if nan else v, is_nan=nan, timestamp=1, step=0))
    for k, v in params.items():
        s.add(Param(run_id=run.id, key=k, value=v))
    for k, v in {**tags, "mlflow.runName": name}.items():
        s.add(RunTag(run_id=run.id, key=k, value=v))
    for ds_name, digest, context in inputs:
        ds = s.query(Dataset).filter_by(experiment_id=exp.id, name=ds_name, digest=digest).one_or_none()
        if ds is None:
            ds = Dataset(experiment_id=exp.id, name=ds_name, digest=digest)
            s.add(ds)
            s.flush()
        input_tags = [{"key": "mlflow.data.context", "value": context}] if context else []
        s.add(RunInput(run_id=run.id, dataset_id=ds.id, tags_json=json.dumps(input_tags)))
    s.flush()
    return run


def _experiment(s, project_id, iid, name, created=0, updated=0, stage="active", tags=None):
    exp = Experiment(project_id=project_id, iid=iid, name=name, creation_time=created, last_update_time=updated,
                     lifecycle_stage=stage)
    s.add(exp)
    s.flush()
    for k, v in (tags or {}).items():
        s.add(ExperimentTag(experiment_id=exp.id, key=k, value=v))
    s.flush()
    return exp


@pytest.fixture(scope="module")
def data(engine):
    """Project p1 with the runs above in two experiments, and a project p2 whose
    runs match every filter (one even points at p1's experiment)."""
    with Session(engine) as s:
        e1 = _experiment(s, "p1", 1, "exp-one", 100, 500, tags={"team": "vision"})
        e2 = _experiment(s, "p1", 2, "Exp-two", 200, 300, tags={"team": "NLP", "prio": "high"})
        _experiment(s, "p1", 3, "three", 200, 900, stage="deleted")
        _experiment(s, "p1", 4, "four", 50, 50)
        x = _experiment(s, "p2", 1, "exp-one", 100, 500, tags={"team": "vision"})
        runs = {}
        for n, spec in enumerate(RUNS_E1, start=1):
            runs[spec[1]] = _add_run(s, "p1", e1, n, spec)
        runs["eta"] = _add_run(s, "p1", e2, 7, RUNS_E2[0])
        a = RUNS_E1[0]
        _add_run(s, "p2", x, 8, a)
        _add_run(s, "p2", e1, 9, a)  # inconsistent on purpose: another project's run in p1's experiment
        s.commit()
        info = {
            "e1": e1.id, "e2": e2.id, "x": x.id,
            "uuid": {name: r.run_uuid for name, r in runs.items()},
            "uri": {name: uris.run_artifact_uri(1 if name != "eta" else 2, r.iid) for name, r in runs.items()},
        }
    return info


def _names(engine, data, filter_string="", order_by=None, view="ACTIVE_ONLY", exps=("e1", "e2", "x"), page=1000):
    """All pages of a search, as run names in order; checks pages for repeats."""
    pks = [data[e] for e in exps]
    names, token, pages = [], None, 0
    with Session(engine) as s:
        while True:
            runs, token = search_runs(s, "p1", pks, filter_string, view, page, order_by, token)
            names += [r.name for r in runs]
            pages += 1
            assert len(runs) <= page
            if token is None:
                break
            assert len(runs) == page
            assert pages < 100
    assert len(names) == len(set(names)), names
    return names


# --------------------------------------------------------------------------- filters
RUN_FILTERS = [
    ("", ACTIVE),
    # metrics, NaN (matches only !=) and infinities
    ("metrics.acc > 0.6", {"alpha", "eta", "Epsilon_1"}),
    ("metrics.acc >= 0.5", {"alpha", "beta", "eta", "Epsilon_1"}),
    ("metrics.acc = 0.5", {"beta"}),
    ("metrics.acc != 0.5", {"alpha", "gamma", "Epsilon_1", "eta"}),
    ("metrics.acc < 1", {"alpha", "beta", "eta"}),
    ("metrics.acc <= 0.9", {"alpha", "beta", "eta"}),
    ("metrics.loss < 0", {"Epsilon_1"}),
    ("metrics.loss != 0.1", {"beta", "Epsilon_1"}),
    ("metrics.acc > 1e308", {"Epsilon_1"}),
    ("metrics.acc = 1e400", {"Epsilon_1"}),
    ("metrics.acc > -1e400", {"alpha", "beta", "Epsilon_1", "eta"}),
    ("metrics.missing > 0", set()),
    ("metrics.missing != 0", set()),
    ("metrics.`acc` > 0.6 AND metrics.acc < 0.8", {"eta"}),
    # params: != needs the key; LIKE is case-sensitive, ILIKE is not
    ("params.lr = '0.01'", {"alpha", "eta"}),
    ("params.lr != '0.01'", {"beta", "gamma", "delta"}),
    ("params.opt LIKE 'a%'", {"alpha"}),
    ("params.opt LIKE 'A%'", {"beta"}),
    ("params.opt ILIKE 'a%'", {"alpha", "beta"}),
    ("params.opt = 'ADAM'", set()),
    ("params.lr LIKE '0._1'", {"alpha", "eta"}),
    ("params.lr LIKE '%'", {"alpha", "beta", "gamma", "delta", "eta"}),
    ("params.lr IS NULL", {"Epsilon_1"}),
    ("params.opt IS NULL", {"gamma", "Epsilon_1", "eta"}),
    ("params.opt IS NOT NULL", {"alpha", "beta", "delta"}),
    # GLOB's own wildcards are plain characters in LIKE patterns
    ("params.`my key` = 'v[1]*?'", {"Epsilon_1"}),
    ("params.`my key` LIKE 'v[1]*?'", {"Epsilon_1"}),
    ("params.`my key` LIKE 'v[1]%'", {"Epsilon_1"}),
    ("params.`my key` LIKE 'v_1_*_'", {"Epsilon_1"}),
    ("params.`my key` LIKE 'v[2]%'", set()),
    ("params.`my key` LIKE 'v*'", set()),
    ("params.`my key` LIKE 'V%'", set()),
    ("params.`my key` ILIKE 'V%'", {"Epsilon_1"}),
    # tags
    ("tags.team = 'vision'", {"beta", "eta"}),
    ("tags.team ILIKE 'VISION'", {"alpha", "beta", "eta"}),
    ("tags.team != 'NLP'", {"alpha", "beta", "eta"}),
    ("tags.team IS NULL", {"delta", "Epsilon_1"}),
    ("tags.note = \"it's\"", {"alpha"}),
    ("tags.`with space` = 'x%y'", {"gamma"}),
    ("tags.`with space` LIKE 'x%'", {"gamma"}),
    # a backslash is an ordinary character (no LIKE escape), on both databases
    ("tags.path = 'a\\b'", {"delta"}),
    ("tags.path LIKE 'a\\b'", {"delta"}),
    ("tags.path LIKE 'a\\%'", {"delta"}),
    ("tags.path LIKE 'a\\_'", {"delta"}),
    ("tags.mlflow.runName = 'alpha'", {"alpha"}),
    ("tags.`mlflow.runName` LIKE '%ta'", {"beta", "delta", "eta"}),
    # attributes
    ("attributes.run_name = 'alpha'", {"alpha"}),
    ("run_name LIKE '%ta'", {"beta", "delta", "eta"}),
    ("`Run name` ILIKE 'epsilon%'", {"Epsilon_1"}),
    ("run_name LIKE 'epsilon%'", set()),
    ("status = 'FINISHED'", {"alpha", "delta", "eta"}),
    ("status != 'FINISHED'", {"beta", "gamma", "Epsilon_1"}),
    ("status LIKE 'F%'", {"alpha", "beta", "delta", "eta"}),
    ("attr.status ILIKE 'f%'", {"alpha", "beta", "delta", "eta"}),
    ("status = 'finished'", set()),
    ("start_time > 1000", {"beta", "gamma", "delta", "eta"}),
    ("created >= 3000", {"gamma", "delta"}),
    ("start_time = 500", {"Epsilon_1"}),
    ("attributes.start_time < 1500.5", {"alpha", "eta", "Epsilon_1"}),
    ("end_time < 1200", {"alpha", "Epsilon_1"}),
    ("end_time != 1100", {"delta", "Epsilon_1", "eta"}),
    ("user_id = 'alice'", {"alpha", "gamma", "eta"}),
    ("user_id != 'alice'", {"beta", "delta"}),
    ("user_id ILIKE 'A%'", {"alpha", "gamma", "eta"}),
    ("lifecycle_stage = 'deleted'", set()),
    ("lifecycle_stage = 'active'", ACTIVE),
    ("artifact_uri LIKE 'mlflow-artifacts:/ml_experiment_%'", ACTIVE),
    ("artifact_uri LIKE 'mlflow-artifacts:/ml_experiment_2/%'", {"eta"}),
    # datasets: any input of the run may match
    ("datasets.name = 'ds1'", {"alpha", "beta"}),
    ("dataset.digest IN ('d2', 'd3')", {"gamma", "Epsilon_1"}),
    ("datasets.name NOT IN ('ds1')", {"gamma", "Epsilon_1"}),
    ("datasets.name LIKE 'DS%'", set()),
    ("datasets.name ILIKE 'DS%'", {"alpha", "beta", "gamma", "Epsilon_1"}),
    ("datasets.context = 'train'", {"alpha"}),
    ("datasets.context ILIKE 'train'", {"alpha", "Epsilon_1"}),
    ("datasets.context != 'train'", {"beta", "Epsilon_1"}),
    ("datasets.context IN ('eval', 'Train')", {"beta", "Epsilon_1"}),
    ("datasets.context LIKE '%a%'", {"alpha", "beta", "Epsilon_1"}),
    ("datasets.name LIKE 'ds%' AND datasets.context = 'eval'", {"beta"}),
    # conjunctions, and our OR / parentheses
    ("metrics.acc > 0.6 AND params.lr = '0.01'", {"alpha", "eta"}),
    ("metrics.acc > 0.6 and params.lr = '0.01' and tags.team = 'vision'", {"eta"}),
    ("params.opt = 'sgd' OR tags.team = 'NLP'", {"delta", "gamma"}),
    ("(status = 'FINISHED' OR status = 'KILLED') AND user_id = 'alice'", {"alpha", "eta"}),
    ("status = 'FINISHED' OR status = 'KILLED' AND user_id = 'alice'", {"alpha", "delta", "eta"}),
    ("metrics.acc > 0.6 AND (tags.team IS NULL OR params.lr = '0.01')", {"alpha", "eta", "Epsilon_1"}),
    ("params.lr IS NULL OR metrics.acc != 0.9 AND metrics.acc < 0.6", {"Epsilon_1", "beta"}),
]


@pytest.mark.parametrize("filter_string,expected", RUN_FILTERS, ids=[f[0] or "empty" for f in RUN_FILTERS])
def test_run_filters(engine, data, filter_string, expected):
    assert set(_names(engine, data, filter_string)) == expected


def test_run_id_filters(engine, data):
    u = data["uuid"]
    assert _names(engine, data, f"run_id = '{u['alpha']}'") == ["alpha"]
    assert set(_names(engine, data, f"run_id IN ('{u['alpha']}', '{u['beta']}', '{_uuid(8)}')")) == {"alpha", "beta"}
    not_in = f"attributes.run_id NOT IN ('{u['alpha']}', '{u['beta']}')"
    assert set(_names(engine, data, not_in)) == ACTIVE - {"alpha", "beta"}
    assert set(_names(engine, data, f"run_id != '{u['alpha']}'")) == ACTIVE - {"alpha"}
    assert set(_names(engine, data, f"run_id = '{u['zeta']}'", view="ALL")) == {"zeta"}


def test_artifact_uri_is_the_runs_uri(engine, data):
    for name, uri in data["uri"].items():
        view = "ALL" if name == "zeta" else "ACTIVE_ONLY"
        assert _names(engine, data, f"artifact_uri = '{uri}'", view=view) == [name]


def test_experiment_scope_and_other_projects(engine, data):
    assert set(_names(engine, data, exps=("e1",))) == ACTIVE - {"eta"}
    assert set(_names(engine, data, exps=("e2",))) == {"eta"}
    # p2's experiment, asked for from p1, and p2's run inside p1's experiment: never returned
    assert _names(engine, data, exps=("x",)) == []
    assert _names(engine, data, "tags.team = 'Vision'", exps=("e1", "x")) == ["alpha"]
    with Session(engine) as s:
        runs, _ = search_runs(s, "p2", [data["x"], data["e1"]], "", "ALL")
        assert {r.run_uuid for r in runs} == {_uuid(8), _uuid(9)}
        assert search_runs(s, "p1", [], "metrics.acc > 0") == ([], None)
        assert search_runs(s, "nope", [data["e1"]]) == ([], None)


@pytest.mark.parametrize(
    "view,expected",
    [
        ("ACTIVE_ONLY", ACTIVE),
        ("active_only", ACTIVE),
        (None, ACTIVE),
        (1, ACTIVE),
        ("DELETED_ONLY", {"zeta"}),
        (2, {"zeta"}),
        ("ALL", ACTIVE | {"zeta"}),
        (3, ACTIVE | {"zeta"}),
    ],
)
def test_run_view_types(engine, data, view, expected):
    assert set(_names(engine, data, view=view)) == expected


def test_view_type_with_filters(engine, data):
    assert set(_names(engine, data, "params.lr = '0.01'", view="ALL")) == {"alpha", "eta", "zeta"}
    assert _names(engine, data, "metrics.acc > 0.91", view="DELETED_ONLY") == ["zeta"]
    assert _names(engine, data, "lifecycle_stage = 'deleted'", view="ALL") == ["zeta"]


# --------------------------------------------------------------------------- orders
# Active runs: alpha(1000,u01) beta(2000,u02) gamma(3000,u03) delta(3000,u04) Epsilon_1(500,u05) eta(1500,u07)
RUN_ORDERS = [
    (None, ["gamma", "delta", "beta", "eta", "alpha", "Epsilon_1"]),
    ([], ["gamma", "delta", "beta", "eta", "alpha", "Epsilon_1"]),
    # metrics: values, then NaN, then no metric, in both directions
    (["metrics.acc DESC"], ["Epsilon_1", "alpha", "eta", "beta", "gamma", "delta"]),
    (["metrics.acc"], ["beta", "eta", "alpha", "Epsilon_1", "gamma", "delta"]),
    (["metrics.acc ASC"], ["beta", "eta", "alpha", "Epsilon_1", "gamma", "delta"]),
    (["metrics.loss"], ["Epsilon_1", "alpha", "beta", "gamma", "delta", "eta"]),
    (["metrics.loss DESC"], ["alpha", "Epsilon_1", "beta", "gamma", "delta", "eta"]),
    (["metrics.nothing DESC"], ["gamma", "delta", "beta", "eta", "alpha", "Epsilon_1"]),
    # params and tags: code-point order, missing last
    (["params.lr"], ["gamma", "eta", "alpha", "beta", "delta", "Epsilon_1"]),
    (["params.lr DESC"], ["delta", "beta", "eta", "alpha", "gamma", "Epsilon_1"]),
    (["params.opt"], ["beta", "alpha", "delta", "gamma", "eta", "Epsilon_1"]),
    (["tags.team DESC"], ["beta", "eta", "alpha", "gamma", "delta", "Epsilon_1"]),
    (["tags.`mlflow.runName`"], ["Epsilon_1", "alpha", "beta", "delta", "eta", "gamma"]),
    # attributes
    (["start_time ASC"], ["Epsilon_1", "alpha", "eta", "beta", "gamma", "delta"]),
    (["start_time DESC"], ["gamma", "delta", "beta", "eta", "alpha", "Epsilon_1"]),
    (["attributes.created DESC"], ["gamma", "delta", "beta", "eta", "alpha", "Epsilon_1"]),
    (["end_time"], ["Epsilon_1", "alpha", "eta", "delta", "gamma", "beta"]),
    (["end_time DESC"], ["delta", "eta", "alpha", "Epsilon_1", "gamma", "beta"]),
    (["run_name"], ["Epsilon_1", "alpha", "beta", "delta", "eta", "gamma"]),
    (["attributes.run_name DESC"], ["gamma", "eta", "delta", "beta", "alpha", "Epsilon_1"]),
    (["status", "run_name DESC"], ["beta", "eta", "delta", "alpha", "Epsilon_1", "gamma"]),
    (["user_id"], ["gamma", "eta", "alpha", "beta", "delta", "Epsilon_1"]),
    (["user_id DESC"], ["delta", "beta", "gamma", "eta", "alpha", "Epsilon_1"]),
    (["run_id DESC"], ["eta", "Epsilon_1", "delta", "gamma", "beta", "alpha"]),
    (["run_id", "metrics.acc"], ["alpha", "beta", "gamma", "delta", "Epsilon_1", "eta"]),
    # several keys
    (["metrics.acc DESC", "params.lr"], ["Epsilon_1", "alpha", "eta", "beta", "gamma", "delta"]),
    (["params.lr", "metrics.acc DESC"], ["gamma", "alpha", "eta", "beta", "delta", "Epsilon_1"]),
    (["tags.team", "start_time"], ["gamma", "alpha", "eta", "beta", "Epsilon_1", "delta"]),
    (["params.opt DESC", "tags.team DESC", "end_time"], ["delta", "alpha", "beta", "eta", "gamma", "Epsilon_1"]),
]


@pytest.mark.parametrize("order_by,expected", RUN_ORDERS, ids=[str(o[0]) for o in RUN_ORDERS])
@pytest.mark.parametrize("page", [1000, 1, 2, 4])
def test_run_orders_and_pages(engine, data, order_by, expected, page):
    assert _names(engine, data, order_by=order_by, page=page) == expected


def test_order_with_filter_and_view(engine, data):
    names = _names(engine, data, "params.lr = '0.01'", ["metrics.acc DESC"], view="ALL", page=1)
    assert names == ["zeta", "alpha", "eta"]
    assert _names(engine, data, "", ["lifecycle_stage DESC", "run_name"], view="ALL", page=2)[0] == "zeta"


def test_order_by_artifact_uri(engine, data):
    expected = sorted((data["uri"][n], n) for n in ACTIVE)
    assert _names(engine, data, order_by=["artifact_uri"], page=2) == [n for _, n in expected]


def test_one_statement_per_page(engine, data):
    """No N+1: a page of runs is one SELECT over runs, plus one for the page's
    experiments (loaded apart so the runs query can walk its index), whatever
    the page size; on SQLite, plus one bounded count per metric comparison or
    param/tag equality (is it rare enough to drive the query from its index?)."""
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    probes = 1 if engine.dialect.name == "sqlite" else 0  # "metrics.acc > 0"
    event.listen(engine, "before_cursor_execute", count)
    try:
        with Session(engine) as s:
            runs, token = search_runs(s, "p1", [data["e1"], data["e2"]], "metrics.acc > 0 OR params.lr IS NULL",
                                      max_results=2, order_by=["metrics.acc DESC", "params.lr", "tags.team"])
            assert len(statements) == 2 + probes
            assert all(r.experiment.iid in (1, 2) for r in runs)  # loaded with the page
            assert len(statements) == 2 + probes
            search_runs(s, "p1", [data["e1"], data["e2"]], "metrics.acc > 0 OR params.lr IS NULL",
                        max_results=2, order_by=["metrics.acc DESC", "params.lr", "tags.team"], page_token=token)
            assert len(statements) <= 4 + 2 * probes
    finally:
        event.remove(engine, "before_cursor_execute", count)


# --------------------------------------------------------------------------- arguments and tokens
@pytest.mark.parametrize("bad", [0, -1, 50001, 10**9, "abc", True, 1.5])
def test_max_results_validation(engine, data, bad):
    with Session(engine) as s, pytest.raises(InvalidParameter, match="max_results"):
        search_runs(s, "p1", [data["e1"]], max_results=bad)
    with Session(engine) as s, pytest.raises(InvalidParameter, match="max_results"):
        search_experiments(s, "p1", max_results=bad)


def test_max_results_bounds(engine, data):
    with Session(engine) as s:
        assert len(search_runs(s, "p1", [data["e1"]], max_results=50000)[0]) == 5
        assert len(search_runs(s, "p1", [data["e1"]], max_results=None)[0]) == 5
        assert len(search_runs(s, "p1", [data["e1"]], max_results="2")[0]) == 2
        assert len(search_experiments(s, "p1", max_results=50000)[0]) == 3


@pytest.mark.parametrize("view", ["SOME", 0, 4, True, 1.0])
def test_bad_view_type(engine, data, view):
    with Session(engine) as s, pytest.raises(InvalidParameter, match="view_type"):
        search_runs(s, "p1", [data["e1"]], run_view_type=view)
    with Session(engine) as s, pytest.raises(InvalidParameter, match="view_type"):
        search_experiments(s, "p1", view_type=view)


def test_bad_filter_and_order_raise_invalid_parameter(engine, data):
    with Session(engine) as s:
        for kwargs in (
            {"filter_string": "metrics.acc > 'x'"},
            {"filter_string": "params.lr > '1'"},
            {"order_by": ["metrics.acc DOWN"]},
            {"order_by": ["metrics.acc", "metrics.acc DESC"]},
        ):
            with pytest.raises(InvalidParameter):
                search_runs(s, "p1", [data["e1"]], **kwargs)


def _token(payload) -> str:
    """``payload`` signed as a runs token (outside an app: with the fallback key), so the
    checks after the signature's are reached."""
    return encode_token(payload, RUNS_TOKEN_KIND)


def _unsigned(payload) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def test_page_token_errors(engine, data):
    with Session(engine) as s:
        _, token = search_runs(s, "p1", [data["e1"]], "metrics.acc > 0", max_results=1, order_by=["metrics.acc"])
        assert token
        body = decode_token(token, RUNS_TOKEN_KIND)
        assert body["v"] == 1 and len(body["f"]) == 16 and isinstance(body["k"], list)
        payload, _, signature = token.rpartition(".")  # payload: ".<zlib>" when compressed
        bad_tokens = [
            "not base64!!",
            "e30",  # {}
            base64.b64encode(b"\xff\xfe").decode(),
            _unsigned(body),  # the cursor of before signing
            payload + ".",
            payload[:5] + ("A" if payload[5] != "A" else "B") + payload[6:] + "." + signature,  # one byte changed
            payload + "." + signature[::-1],
            encode_token(body, EXPERIMENTS_TOKEN_KIND),  # a token of another listing
            _token({"offset": 5}),
            _token({**body, "v": 2}),
            _token({**body, "k": body["k"][:-1]}),
            _token({**body, "k": ["x"] * len(body["k"])}),
            _token({**body, "k": [True] * len(body["k"])}),
            _token({**body, "k": [None] * len(body["k"])}),
            _token({**body, "k": [float("nan")] + body["k"][1:]}),
            _token([1, 2]),
        ]
        for bad in bad_tokens:
            with pytest.raises(InvalidParameter, match="page token"):
                search_runs(s, "p1", [data["e1"]], "metrics.acc > 0", max_results=1, order_by=["metrics.acc"],
                            page_token=bad)
        # a token is bound to its search: another filter, order, view or experiment set refuses it
        for other in (
            {"filter_string": "metrics.acc > 1"},
            {"order_by": ["metrics.acc DESC"]},
            {"run_view_type": "ALL"},
            {"experiment_pks": [data["e1"], data["e2"]]},
        ):
            kwargs = {"filter_string": "metrics.acc > 0", "order_by": ["metrics.acc"],
                      "experiment_pks": [data["e1"]], **other}
            with pytest.raises(InvalidParameter, match="other arguments"):
                search_runs(s, "p1", max_results=1, page_token=token, **kwargs)
        # the same search accepts it, padded or not
        runs, _ = search_runs(s, "p1", [data["e1"]], "metrics.acc > 0", max_results=1, order_by=["metrics.acc"],
                              page_token=token + "=" * (-len(token) % 4))
        assert len(runs) == 1


# --------------------------------------------------------------------------- keyset paging under writes
def _seed_project(engine, project, n, start_times):
    with Session(engine) as s:
        exp = _experiment(s, project, 1, "paging")
        for i in range(n):
            run = Run(run_uuid=uuid.uuid4().hex, project_id=project, experiment_id=exp.id, iid=i + 1, name=f"r{i}",
                      status="RUNNING", start_time=start_times(i), lifecycle_stage="active")
            s.add(run)
            s.flush()
            s.add(LatestMetric(run_id=run.id, key="m", value=float(i % 7), is_nan=False, timestamp=0, step=0))
            s.add(Param(run_id=run.id, key="p", value=f"v{i % 5}"))
        s.commit()
        return exp.id


def _insert_runs(engine, project, exp_pk, start, specs):
    """Commit new runs from another session (another writer)."""
    with Session(engine) as s:
        for i, (start_time, metric, uuid_hex, name, param) in enumerate(specs):
            run = Run(run_uuid=uuid_hex, project_id=project, experiment_id=exp_pk, iid=start + i, name=name,
                      status="RUNNING", start_time=start_time, lifecycle_stage="active")
            s.add(run)
            s.flush()
            if metric is not None:
                s.add(LatestMetric(run_id=run.id, key="m", value=metric, is_nan=False, timestamp=0, step=0))
            if param is not None:
                s.add(Param(run_id=run.id, key="p", value=param))
        s.commit()


@pytest.mark.parametrize("order_by", [None, ["metrics.m DESC"], ["params.p", "start_time ASC"], ["run_name DESC"]])
def test_keyset_paging_under_concurrent_inserts(engine, order_by):
    project = "paging-" + uuid.uuid4().hex[:8]
    exp_pk = _seed_project(engine, project, 40, lambda i: 1000 + (i // 3) * 10)  # ties of three
    with Session(engine) as s:
        everything, _ = search_runs(s, project, [exp_pk], order_by=order_by, max_results=1000)
        original = [r.run_uuid for r in everything]

    seen, token, iid, rnd_step = [], None, 1000, 0
    while True:
        with Session(engine) as s:  # each page in its own transaction, as HTTP requests are
            runs, token = search_runs(s, project, [exp_pk], order_by=order_by, max_results=7, page_token=token)
            seen += [r.run_uuid for r in runs]
            last_start = runs[-1].start_time
        if token is None:
            break
        rnd_step += 1
        # New runs before the cursor in every order tested (which would shift an
        # offset and repeat a run), at the cursor's own sort values, and after it.
        _insert_runs(engine, project, exp_pk, iid, [
            (5000 + rnd_step, 100.0, uuid.uuid4().hex, f"zz{iid}", "a"),
            (last_start, 3.0, "0000" + uuid.uuid4().hex[4:], f"r{iid}", "v3"),
            (last_start, 3.0, "ffff" + uuid.uuid4().hex[4:], f"r{iid}x", "v3"),
            (1, -1.0, uuid.uuid4().hex, f"a{iid}", "z"),
            (last_start - 1, None, uuid.uuid4().hex, f"new{iid}", None),
        ])
        iid += 5
    assert len(seen) == len(set(seen)), "a run was returned twice"
    assert set(original) <= set(seen), "a run that existed before the first page was skipped"
    # the original runs keep their relative order
    assert [u for u in seen if u in set(original)] == original


def test_keyset_paging_when_rows_are_deleted_between_pages(engine):
    project = "paging-" + uuid.uuid4().hex[:8]
    exp_pk = _seed_project(engine, project, 20, lambda i: 1000 + i)
    with Session(engine) as s:
        first, token = search_runs(s, project, [exp_pk], max_results=5)
        first = [r.start_time for r in first]
        # the cursor row itself disappears: the next page still starts right after it
        cursor_row = s.query(Run).filter(Run.project_id == project, Run.start_time == first[-1])
        cursor_row.update({"lifecycle_stage": "deleted"})
        s.commit()
    with Session(engine) as s:
        rest = []
        while token:
            runs, token = search_runs(s, project, [exp_pk], max_results=5, page_token=token)
            rest += [r.start_time for r in runs]
    assert first == [1019, 1018, 1017, 1016, 1015]
    assert rest == list(range(1014, 999, -1))


def test_paging_a_larger_experiment(engine):
    """300 runs with few distinct values: every order pages to the same sequence as one big page."""
    project = "paging-" + uuid.uuid4().hex[:8]
    exp_pk = _seed_project(engine, project, 300, lambda i: 1000 + (i % 11))
    for order_by in (None, ["metrics.m"], ["params.p DESC", "metrics.m"], ["start_time ASC"], ["status"]):
        with Session(engine) as s:
            whole, none = search_runs(s, project, [exp_pk], order_by=order_by)
            assert none is None and len(whole) == 300
            paged, token = [], None
            while True:
                runs, token = search_runs(s, project, [exp_pk], order_by=order_by, max_results=37, page_token=token)
                paged += runs
                if not token:
                    break
        assert [r.run_uuid for r in paged] == [r.run_uuid for r in whole]


# --------------------------------------------------------------------------- experiments
def _exp_names(engine, filter_string="", order_by=None, view="ACTIVE_ONLY", page=1000, project="p1"):
    names, token = [], None
    with Session(engine) as s:
        while True:
            exps, token = search_experiments(s, project, filter_string, view, page, order_by, token)
            names += [e.name for e in exps]
            if token is None:
                break
            assert len(exps) == page
    assert len(names) == len(set(names))
    return names


EXPERIMENT_FILTERS = [
    ("", {"exp-one", "Exp-two", "four"}),
    ("name = 'exp-one'", {"exp-one"}),
    ("name LIKE 'exp%'", {"exp-one"}),
    ("name ILIKE 'exp%'", {"exp-one", "Exp-two"}),
    ("attributes.name != 'four'", {"exp-one", "Exp-two"}),
    ("name LIKE '_xp-%'", {"exp-one", "Exp-two"}),
    ("tags.team = 'vision'", {"exp-one"}),
    ("tags.team IS NULL", {"four"}),
    ("tags.prio IS NOT NULL", {"Exp-two"}),
    ("tags.team != 'NLP'", {"exp-one"}),
    ("tags.team ILIKE '%i%'", {"exp-one"}),
    ("tags.team LIKE 'nlp'", set()),
    ("creation_time > 100", {"Exp-two"}),
    ("creation_time >= 100", {"exp-one", "Exp-two"}),
    ("last_update_time < 400", {"Exp-two", "four"}),
    ("experiment_id = '2'", {"Exp-two"}),
    ("experiment_id != '1'", {"Exp-two", "four"}),
    ("experiment_id IN ('1', '4', '99')", {"exp-one", "four"}),
    ("experiment_id NOT IN ('1')", {"Exp-two", "four"}),
    ("name = 'four' OR tags.prio = 'high'", {"four", "Exp-two"}),
    ("name ILIKE 'e%' AND (tags.team = 'NLP' OR creation_time < 150)", {"exp-one", "Exp-two"}),
]


@pytest.mark.parametrize("filter_string,expected", EXPERIMENT_FILTERS,
                         ids=[f[0] or "empty" for f in EXPERIMENT_FILTERS])
def test_experiment_filters(engine, data, filter_string, expected):
    assert set(_exp_names(engine, filter_string)) == expected


EXPERIMENT_ORDERS = [
    (None, ["Exp-two", "three", "exp-one", "four"]),
    (["name"], ["Exp-two", "exp-one", "four", "three"]),
    (["name DESC"], ["three", "four", "exp-one", "Exp-two"]),
    (["creation_time"], ["four", "exp-one", "three", "Exp-two"]),
    (["last_update_time DESC"], ["three", "exp-one", "Exp-two", "four"]),
    (["experiment_id DESC"], ["four", "three", "Exp-two", "exp-one"]),
    (["attribute.experiment_id"], ["exp-one", "Exp-two", "three", "four"]),
    (["creation_time DESC", "experiment_id DESC"], ["three", "Exp-two", "exp-one", "four"]),
    (["creation_time DESC", "name"], ["Exp-two", "three", "exp-one", "four"]),
]


@pytest.mark.parametrize("order_by,expected", EXPERIMENT_ORDERS, ids=[str(o[0]) for o in EXPERIMENT_ORDERS])
@pytest.mark.parametrize("page", [1000, 1, 3])
def test_experiment_orders_and_pages(engine, data, order_by, expected, page):
    assert _exp_names(engine, order_by=order_by, view="ALL", page=page) == expected


def test_experiment_view_types_and_projects(engine, data):
    assert _exp_names(engine, view="DELETED_ONLY") == ["three"]
    assert set(_exp_names(engine, view="ALL")) == {"exp-one", "Exp-two", "three", "four"}
    assert _exp_names(engine, project="p2") == ["exp-one"]
    assert _exp_names(engine, project="none") == []
    with Session(engine) as s:
        exps, _ = search_experiments(s, "p1", "tags.team = 'vision'")
        assert [t.key for t in exps[0].tags] == ["team"]


def test_experiment_page_token_bound_to_search(engine, data):
    with Session(engine) as s:
        _, token = search_experiments(s, "p1", max_results=1)
        assert token
        with pytest.raises(InvalidParameter, match="other arguments"):
            search_experiments(s, "p1", "name != 'x'", max_results=1, page_token=token)
        with pytest.raises(InvalidParameter, match="other arguments"):
            search_experiments(s, "p2", max_results=1, page_token=token)
        with pytest.raises(InvalidParameter, match="page token"):
            search_experiments(s, "p1", max_results=1, page_token="%%%")


EQUALITY_FILTERS = [(f, e) for f, e in RUN_FILTERS if ("params." in f or "tags." in f) and " = '" in f]
# Metric comparisons (infinities, NaN, a missing key, two on one key) drive from the
# (key, value) index of latest metrics on SQLite when few runs match, as equalities do.
EQUALITY_FILTERS += [(f, e) for f, e in RUN_FILTERS if "metrics." in f]


@pytest.mark.parametrize("driving_max", [0, 10 ** 9], ids=["probe-each-run", "drive-from-index"])
def test_equality_filters_give_the_same_runs_either_way(engine, data, monkeypatch, driving_max):
    """On SQLite an equality filter on a param or tag, or a metric comparison, either
    drives the query from the (key, value) index or probes each run, by how many rows
    match: both forms must find the same runs, in the same order, page after page."""
    from gl_ml_tracking.services import run_search_sql

    assert EQUALITY_FILTERS
    monkeypatch.setattr(run_search_sql, "SQLITE_DRIVING_FILTER_MAX_ROWS", driving_max)
    for filter_string, expected in EQUALITY_FILTERS:
        assert set(_names(engine, data, filter_string)) == expected, filter_string
        by_name = _names(engine, data, filter_string, order_by=["attributes.run_name"], page=1)
        assert by_name == sorted(expected, key=lambda n: n.encode()), filter_string


def test_a_rare_metric_filter_reads_the_value_index_on_sqlite(engine, data, monkeypatch):
    """SQLite has no value statistics: a metric comparison that few runs pass
    (metrics.acc > 0.92: one run) reads the (key, value) index of latest metrics
    instead of probing every run of the experiment in page order; many matches keep
    the probe, which stops at the page size. The query plan says which."""
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's planner picks from its own statistics")
    from gl_ml_tracking.services import run_search_sql

    captured = []

    def keep(conn, cursor, statement, parameters, *args):
        if statement.lstrip().upper().startswith("SELECT GLML_RUNS.ID"):
            captured.append((statement, parameters))

    def plan(filter_string: str) -> str:
        captured.clear()
        event.listen(engine, "before_cursor_execute", keep)
        try:
            with Session(engine) as s:
                runs, _ = search_runs(s, "p1", [data["e1"], data["e2"]], filter_string, max_results=10)
        finally:
            event.remove(engine, "before_cursor_execute", keep)
        statement, parameters = captured[-1]
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
        return " | ".join(str(row[-1]) for row in rows), [r.name for r in runs]

    steps, names = plan("metrics.acc > 0.92")
    assert "ix_glml_latest_metrics_key_value" in steps and names == ["Epsilon_1"], steps
    monkeypatch.setattr(run_search_sql, "SQLITE_DRIVING_FILTER_MAX_ROWS", 0)  # "many" matches
    steps, names = plan("metrics.acc > 0.92")
    assert "ix_glml_latest_metrics_key_value" not in steps and names == ["Epsilon_1"], steps
