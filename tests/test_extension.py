"""Extension wiring: config defaults, state, hooks, several apps, the host's db."""
from __future__ import annotations

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from gl_ml_tracking import MLTracking, get_state, migrate
from gl_ml_tracking.config import DEFAULTS
from gl_ml_tracking.hooks import UserRef


class P:
    def __init__(self, id, full_path, visibility="private"):
        self.id, self.full_path, self.name, self.visibility = id, full_path, full_path, visibility


class U:
    id, username = 7, "ann"


def make_app(tmp_path, name, db=None):
    app = Flask(name, instance_path=str(tmp_path / name))
    app.config["GL_ML_TRACKING_DATABASE_URI"] = f"sqlite:///{tmp_path / name}.db"
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / name}.db"
    ml = MLTracking()
    if db is not None:
        db.init_app(app)
    ml.init_app(app, db=db)
    with app.app_context():
        migrate.upgrade()
    return app, ml


def test_config_defaults_and_state(tmp_path):
    app, ml = make_app(tmp_path, "one")
    for key, value in DEFAULTS.items():
        assert key.startswith("GL_ML_TRACKING_")
        if key != "GL_ML_TRACKING_DATABASE_URI":
            assert app.config[key] == value
    state = app.extensions["gl_ml_tracking"]
    assert state.extension is ml and get_state(app) is state
    # Read once into the state: every key is an attribute, with the effective value.
    assert state.config.max_file_size == DEFAULTS["GL_ML_TRACKING_MAX_FILE_SIZE"]
    assert state.config.api_prefix == app.config["GL_ML_TRACKING_API_PREFIX"]


def test_a_second_init_app_on_the_same_app_is_refused(tmp_path):
    app, ml = make_app(tmp_path, "twice")
    rules = len(list(app.url_map.iter_rules()))
    with pytest.raises(RuntimeError, match="already registered"):
        ml.init_app(app)
    with pytest.raises(RuntimeError, match="already registered"):
        MLTracking(app)
    assert len(list(app.url_map.iter_rules())) == rules  # nothing mounted twice


def test_host_db_is_reused(tmp_path):
    db = SQLAlchemy()
    app, _ = make_app(tmp_path, "host", db=db)
    assert get_state(app).db is db


def test_default_hooks_deny_everything(tmp_path):
    app, _ = make_app(tmp_path, "bare")
    r = app.test_client().post("/api/v4/projects/1/ml/mlflow/api/2.0/mlflow/experiments/search", json={})
    # No user loader: every API call is unauthenticated, with MLflow's JSON.
    assert r.status_code == 401 and r.json["error_code"] == "UNAUTHENTICATED"


def test_hooks_called_with_the_right_arguments(tmp_path):
    app, ml = make_app(tmp_path, "hooked")
    calls = []
    project = P(42, "grp/sub/proj")

    @ml.user_loader
    def load_user(request):
        calls.append(("user", request.headers.get("Authorization")))
        return U()

    @ml.project_loader
    def load_project(ref):
        calls.append(("project", ref))
        return project if ref in ("42", "grp/sub/proj") else None

    @ml.permission_checker
    def check(user, proj, permission):
        calls.append(("perm", user.username, proj.id, permission))
        return True

    @ml.user_presenter
    def present(user_id):
        return UserRef(id=user_id, username="ann")

    client = app.test_client()
    r = client.post(
        "/api/v4/projects/grp%2Fsub%2Fproj/ml/mlflow/api/2.0/mlflow/experiments/create",
        json={"name": "e1"},
        headers={"Authorization": "Bearer t0k"},
    )
    assert r.status_code == 200, r.json
    assert ("user", "Bearer t0k") in calls
    assert ("project", "grp/sub/proj") in calls
    assert ("perm", "ann", 42, "read_model_experiments") in calls
    assert ("perm", "ann", 42, "write_model_experiments") in calls
    r = client.get("/api/v4/projects/42/ml/mlflow/api/2.0/mlflow/experiments/get-by-name?experiment_name=e1",
                   headers={"Authorization": "Bearer t0k"})
    assert r.status_code == 200 and r.json["experiment"]["experiment_id"] == "1"


def test_two_apps_side_by_side(tmp_path):
    apps = []
    for name in ("left", "right"):
        app, ml = make_app(tmp_path, name)
        ml.user_loader(lambda request: U())
        ml.project_loader(lambda ref: P(1, "p/q") if ref == "1" else None)
        ml.permission_checker(lambda user, project, permission: True)
        apps.append(app)
    left, right = (a.test_client() for a in apps)
    url = "/api/v4/projects/1/ml/mlflow/api/2.0/mlflow/experiments/"
    assert left.post(url + "create", json={"name": "only-left"}).status_code == 200
    assert left.get(url + "get-by-name?experiment_name=only-left").status_code == 200
    assert right.get(url + "get-by-name?experiment_name=only-left").status_code == 404
    assert get_state(apps[0]).db is not get_state(apps[1]).db or apps[0].config["SQLALCHEMY_DATABASE_URI"] != apps[1].config["SQLALCHEMY_DATABASE_URI"]


def test_prefixes_are_configurable(tmp_path):
    app = Flask("pref", instance_path=str(tmp_path / "pref"))
    app.config.update(
        GL_ML_TRACKING_DATABASE_URI=f"sqlite:///{tmp_path}/pref.db",
        GL_ML_TRACKING_API_PREFIX="/ml/<path:project_ref>/tracking",
    )
    ml = MLTracking(app)
    with app.app_context():
        migrate.upgrade()
    ml.user_loader(lambda request: U())
    ml.project_loader(lambda ref: P(5, ref))
    ml.permission_checker(lambda user, project, permission: True)
    client = app.test_client()
    assert client.post("/ml/a/b/tracking/api/2.0/mlflow/experiments/create", json={"name": "x"}).status_code == 200
    assert client.post("/api/v4/projects/5/ml/mlflow/api/2.0/mlflow/experiments/create", json={"name": "x"}).status_code == 404
