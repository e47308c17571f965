"""The example forge (examples/forge): tokens, identities, permissions, pages, seed."""
from __future__ import annotations

import base64
import hashlib
import re
from datetime import timedelta

import pytest
from flask import current_app, request
from sqlalchemy import func, select, text

from examples.forge import create_app, normalise_database_url
from examples.forge import auth, hooks, permissions
from examples.forge.models import (
    Job,
    Membership,
    MergeRequest,
    Namespace,
    PersonalAccessToken,
    Pipeline,
    Project,
    Role,
    User,
    create_forge_tables,
    db,
    utcnow,
)
from gl_ml_tracking import hooks as perms
from gl_ml_tracking.hooks import CiJob

READS = (perms.READ_MODEL_EXPERIMENTS, perms.READ_PACKAGE, perms.READ_MODEL_REGISTRY)
WRITES = (perms.WRITE_MODEL_EXPERIMENTS, perms.WRITE_PACKAGE, perms.WRITE_MODEL_REGISTRY)


@pytest.fixture
def app(tmp_path, monkeypatch):
    for name in ("DEMO_PASSWORD", "DEMO_TOKEN", "DEMO_OUTSIDER_TOKEN", "DEMO_OUTSIDER_PASSWORD", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'forge.db'}",
        "TESTING": True,
        "GL_ML_TRACKING_STORAGE_PATH": str(tmp_path / "storage"),
        # Password hashing is not what these tests measure: keep it cheap.
        "FORGE_PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
    })
    with app.app_context():
        create_forge_tables()
        yield app
        db.session.remove()
        db.engine.dispose()


def make_user(username: str, password: str = "pw") -> User:
    user = User(username=username, name=username.title(), email=f"{username}@example.test",
                password_hash=auth.hash_password(password))
    db.session.add(user)
    db.session.flush()
    return user


@pytest.fixture
def world(app):
    """Group ``acme`` with subgroup ``acme/ml``; projects ``acme/ml/public``
    (public) and ``acme/ml/private``; one user per role on both projects."""
    top = Namespace.build("acme")
    sub = Namespace.build("ml", parent=top)
    public = Project.build(sub, "public", visibility="public")
    private = Project.build(sub, "private", visibility="private")
    db.session.add_all([top, sub, public, private])
    users = {"outsider": make_user("outsider")}
    for role in Role:
        user = make_user(role.name.lower())
        users[role.name.lower()] = user
        for project in (public, private):
            db.session.add(Membership(user=user, project=project, role=int(role)))
    db.session.commit()
    return {"public": public, "private": private, "users": users}


def identity_for(headers: dict) -> auth.Identity | None:
    with current_app.test_request_context(headers=headers):
        return auth.identity_from_request(request)


def basic(username: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def make_job(project: Project, user: User, status: str = "running") -> tuple[Job, str]:
    pipeline = Pipeline(project=project, ref="main", sha="a" * 40, status="running", user=user)
    token = auth.new_token(auth.JOB_TOKEN_PREFIX)
    job = Job(project=project, pipeline=pipeline, name="train", status=status, user=user,
              token_digest=auth.token_digest(token))
    db.session.add_all([pipeline, job])
    db.session.commit()
    return job, token


# -- tokens -----------------------------------------------------------------------
def test_token_is_stored_only_as_its_sha256_digest(world):
    user = world["users"]["developer"]
    row, token = auth.create_personal_access_token(user, "laptop", "api")
    db.session.commit()
    assert token.startswith("glpat-") and len(token) > 30
    assert row.token_digest == hashlib.sha256(token.encode()).hexdigest()
    dump = " ".join(str(v) for r in db.session.execute(text("SELECT * FROM forge_personal_access_tokens"))
                    for v in r)
    assert token not in dump and token[len("glpat-"):] not in dump
    assert auth.find_personal_access_token(token).id == row.id
    assert auth.find_personal_access_token(token + "x") is None
    assert auth.find_personal_access_token("x" * 10_000) is None


@pytest.mark.parametrize("style", ["bearer", "private-token", "basic"])
def test_user_loader_accepts_token_headers(world, style):
    user = world["users"]["developer"]
    _row, token = auth.create_personal_access_token(user, "t", "api")
    db.session.commit()
    headers = {
        "bearer": {"Authorization": f"Bearer {token}"},
        "private-token": {"PRIVATE-TOKEN": token},
        "basic": basic("whoever", token),  # MLFLOW_TRACKING_USERNAME/PASSWORD
    }[style]
    who = identity_for(headers)
    assert (who.id, who.username, who.name, who.scopes, who.via, who.ci_job_id) == (
        user.id, "developer", "Developer", ("api",), "token", None)


def test_bad_credentials_are_anonymous(world):
    assert identity_for({"Authorization": "Bearer glpat-nope"}) is None
    assert identity_for({"PRIVATE-TOKEN": ""}) is None
    assert identity_for({"Authorization": "Basic !!!not-base64"}) is None
    assert identity_for({"Authorization": "Token abc"}) is None
    assert identity_for({}) is None


def test_last_used_at_is_recorded(world):
    row, token = auth.create_personal_access_token(world["users"]["developer"], "t", "api")
    db.session.commit()
    assert row.last_used_at is None
    identity_for({"PRIVATE-TOKEN": token})
    assert db.session.get(PersonalAccessToken, row.id).last_used_at is not None


def test_expired_and_revoked_tokens_are_refused(world):
    user = world["users"]["developer"]
    _a, expired = auth.create_personal_access_token(user, "old", "api", expires_at=utcnow() - timedelta(seconds=1))
    _b, future = auth.create_personal_access_token(user, "new", "api", expires_at=utcnow() + timedelta(days=1))
    revoked_row, revoked = auth.create_personal_access_token(user, "gone", "api")
    revoked_row.revoked = True
    db.session.commit()
    assert identity_for({"PRIVATE-TOKEN": expired}) is None
    assert identity_for({"PRIVATE-TOKEN": revoked}) is None
    assert identity_for({"PRIVATE-TOKEN": future}).id == user.id
    user.active = False  # a blocked user's tokens stop working too
    db.session.commit()
    assert identity_for({"PRIVATE-TOKEN": future}) is None


def test_scopes_are_validated():
    assert auth.normalise_scopes("read_api, api") == "api,read_api"
    for bad in ("", "sudo", ["api", "write_repository"]):
        with pytest.raises(ValueError):
            auth.normalise_scopes(bad)


def test_read_api_token_can_read_but_never_write(world):
    maintainer = world["users"]["maintainer"]
    _row, token = auth.create_personal_access_token(maintainer, "ro", "read_api")
    db.session.commit()
    who = identity_for({"Authorization": f"Bearer {token}"})
    assert who.scopes == ("read_api",)
    for project in (world["public"], world["private"]):
        assert all(permissions.is_allowed(who, project, p) for p in READS)
        assert not any(permissions.is_allowed(who, project, p) for p in WRITES)


# -- CI job tokens ------------------------------------------------------------------
def test_job_token_is_valid_only_while_the_job_runs(world):
    job, token = make_job(world["private"], world["users"]["developer"])
    for headers in ({"JOB-TOKEN": token}, {"Authorization": f"Bearer {token}"}, basic("gitlab-ci-token", token)):
        who = identity_for(headers)
        assert (who.id, who.via, who.ci_job_id, who.ci_project_id) == (
            world["users"]["developer"].id, "job", job.id, world["private"].id)
    assert identity_for({"PRIVATE-TOKEN": token}) is None  # not a personal access token
    for status in ("success", "failed"):
        job.status = status
        db.session.commit()
        assert identity_for({"JOB-TOKEN": token}) is None


def test_job_token_acts_with_its_users_role_in_its_own_project_only(world):
    users = world["users"]
    dev_job, dev_token = make_job(world["private"], users["developer"])
    guest_job, guest_token = make_job(world["private"], users["guest"])
    dev, guest = identity_for({"JOB-TOKEN": dev_token}), identity_for({"JOB-TOKEN": guest_token})
    assert permissions.is_allowed(dev, world["private"], perms.WRITE_MODEL_EXPERIMENTS)
    assert permissions.is_allowed(guest, world["private"], perms.READ_MODEL_EXPERIMENTS)
    assert not permissions.is_allowed(guest, world["private"], perms.WRITE_MODEL_EXPERIMENTS)
    # Another project, even a public one the user belongs to, is out of reach.
    for permission in READS + WRITES:
        assert not permissions.is_allowed(dev, world["public"], permission)


def test_ci_job_loader_describes_job_pipeline_mr_and_user(world):
    project, user = world["private"], world["users"]["developer"]
    mr = MergeRequest(project=project, iid=7, title="Better model", source_branch="feat", target_branch="main")
    db.session.add(mr)
    job, _token = make_job(project, user)
    job.pipeline.merge_request = mr
    db.session.commit()
    with db.session.no_autoflush:
        found = hooks.load_ci_job(project, str(job.id))
    assert isinstance(found, CiJob)
    assert (found.id, found.project_id, found.name, found.status) == (job.id, project.id, "train", "running")
    assert found.url == f"/acme/ml/private/-/jobs/{job.id}"
    assert found.pipeline.url == f"/acme/ml/private/-/pipelines/{job.pipeline.id}"
    assert (found.merge_request.iid, found.merge_request.url) == (7, "/acme/ml/private/-/merge_requests/7")
    assert (found.user.username, found.user.url) == ("developer", "/developer")
    assert hooks.load_ci_job(world["public"], job.id) is None  # not this project's job
    assert hooks.load_ci_job(project, "nope") is None
    assert hooks.load_ci_job(project, 999) is None


def test_user_presenter(world):
    user = world["users"]["owner"]
    user.avatar_url = "https://example.test/a.png"
    ref = hooks.present_user(user.id)
    assert (ref.id, ref.username, ref.name, ref.url, ref.avatar_url) == (
        user.id, "owner", "Owner", "/owner", "https://example.test/a.png")
    assert hooks.present_user(world["users"]["guest"].id).avatar_url is None
    assert hooks.present_user(12345) is None
    assert hooks.present_user("x") is None


# -- projects and permissions ------------------------------------------------------------
def test_project_loader_by_id_and_full_path(world):
    private = world["private"]

    def seen(project):  # what the extension reads of a project
        return (project.id, project.full_path, project.name, project.visibility, project.web_url)

    assert seen(hooks.find_project(str(private.id))) == seen(private)
    assert seen(hooks.find_project("acme/ml/private")) == seen(private)  # nested group path
    assert seen(hooks.find_project("acme/ml/public")) == seen(world["public"])
    assert hooks.find_project(str(2**31)) is None  # past the id column's range: no database error
    assert hooks.find_project("acme/private") is None
    assert hooks.find_project("acme/ml") is None  # a group, not a project
    assert hooks.find_project("999") is None
    assert hooks.find_project("") is None
    assert (private.full_path, private.name, private.web_url) == ("acme/ml/private", "private", "/acme/ml/private")


def test_paths_are_validated(app):
    top = Namespace.build("acme")
    for bad in ("-", "a/b", "", "x.git", "has space"):
        with pytest.raises(ValueError):
            Project.build(top, bad)
    with pytest.raises(ValueError):
        Namespace.build("api")  # would shadow the API routes


EXPECTED_PRIVATE = {
    # role: (reads, read_build, writes)
    "outsider": (False, False, False),
    "guest": (True, False, False),
    "reporter": (True, True, False),
    "developer": (True, True, True),
    "maintainer": (True, True, True),
    "owner": (True, True, True),
}


@pytest.mark.parametrize("who", list(EXPECTED_PRIVATE))
def test_permission_matrix(world, who):
    user = world["users"][who]
    identity = auth.Identity(id=user.id, username=user.username, name=user.name, scopes=("api",), via="session")
    reads, read_build, writes = EXPECTED_PRIVATE[who]
    private, public = world["private"], world["public"]
    assert all(permissions.is_allowed(identity, private, p) is reads for p in READS)
    assert permissions.is_allowed(identity, private, perms.READ_BUILD) is read_build
    assert all(permissions.is_allowed(identity, private, p) is writes for p in WRITES)
    # Public: everyone reads (builds too); writing still needs developer.
    assert all(permissions.is_allowed(identity, public, p) for p in READS + (perms.READ_BUILD,))
    assert all(permissions.is_allowed(identity, public, p) is writes for p in WRITES)
    assert not permissions.is_allowed(identity, public, "admin_everything")


def test_anonymous_reads_public_only(world):
    assert all(permissions.is_allowed(None, world["public"], p) for p in READS + (perms.READ_BUILD,))
    assert not any(permissions.is_allowed(None, world["public"], p) for p in WRITES)
    assert not any(permissions.is_allowed(None, world["private"], p) for p in READS + WRITES)


# -- pages --------------------------------------------------------------------------------
def csrf_from(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_sign_in_refuses_a_post_without_the_csrf_token(world):
    client = current_app.test_client()
    assert client.post("/users/sign_in", data={"username": "owner", "password": "pw"}).status_code == 400
    token = csrf_from(client.get("/users/sign_in").get_data(as_text=True))
    assert client.post("/users/sign_in", data={"username": "owner", "password": "pw",
                                               "csrf_token": token + "x"}).status_code == 400
    wrong = client.post("/users/sign_in", data={"username": "owner", "password": "no", "csrf_token": token})
    assert wrong.status_code == 401 and "Invalid username or password" in wrong.get_data(as_text=True)
    ok = client.post("/users/sign_in", data={"username": "owner", "password": "pw", "csrf_token": token,
                                             "next": "//evil.example/"})
    assert ok.status_code == 302 and ok.headers["Location"] == "/"
    with client.session_transaction() as sess:
        assert sess[auth.SESSION_USER_KEY] == world["users"]["owner"].id
    page = client.get("/acme/ml/private")
    assert page.status_code == 200 and "/api/v4/projects/%d/ml/mlflow" % world["private"].id in page.get_data(True)
    # Sign-out is a POST with the (new) session's token.
    assert client.post("/users/sign_out").status_code == 400
    token = csrf_from(page.get_data(as_text=True))
    assert client.post("/users/sign_out", data={"csrf_token": token}).status_code == 302
    assert client.get("/acme/ml/private").status_code == 404


def test_pages_hide_private_projects(world):
    client = current_app.test_client()
    home = client.get("/").get_data(as_text=True)
    assert "acme/ml/public" in home and "acme/ml/private" not in home
    public = client.get("/acme/ml/public")
    assert public.status_code == 200
    body = public.get_data(as_text=True)
    assert 'href="/acme/ml/public/-/ml/experiments"' in body and 'href="/acme/ml/public/-/packages"' in body
    assert client.get("/acme/ml/private").status_code == 404
    assert client.get("/acme/ml/private", headers=basic("x", "glpat-wrong")).status_code == 404
    assert client.get("/developer").status_code == 200
    assert client.get("/groups/acme/ml").status_code == 200
    assert client.get("/nobody").status_code == 404


def test_ci_pages_need_read_build(world):
    project, users = world["private"], world["users"]
    job, _token = make_job(project, users["developer"])
    mr = MergeRequest(project=project, iid=1, title="MR", source_branch="a", target_branch="main")
    db.session.add(mr)
    db.session.commit()
    client = current_app.test_client()
    guest_token = auth.create_personal_access_token(users["guest"], "g", "api")[1]
    reporter_token = auth.create_personal_access_token(users["reporter"], "r", "api")[1]
    db.session.commit()
    job_url = f"/acme/ml/private/-/jobs/{job.id}"
    pipeline_url = f"/acme/ml/private/-/pipelines/{job.pipeline_id}"
    assert client.get(job_url, headers={"PRIVATE-TOKEN": guest_token}).status_code == 404
    assert client.get(job_url, headers={"PRIVATE-TOKEN": reporter_token}).status_code == 200
    assert client.get(pipeline_url, headers={"PRIVATE-TOKEN": reporter_token}).status_code == 200
    assert client.get("/acme/ml/private/-/merge_requests/1", headers={"PRIVATE-TOKEN": guest_token}).status_code == 200
    assert client.get(f"/acme/ml/public/-/jobs/{job.id}").status_code == 404  # job of another project


def test_token_page_shows_a_new_token_once_and_stores_its_digest(world):
    client = current_app.test_client()
    assert client.get("/-/user_settings/personal_access_tokens").status_code == 302
    token = csrf_from(client.get("/users/sign_in").get_data(as_text=True))
    client.post("/users/sign_in", data={"username": "developer", "password": "pw", "csrf_token": token})
    page = client.get("/-/user_settings/personal_access_tokens").get_data(as_text=True)
    csrf = csrf_from(page)
    assert client.post("/-/user_settings/personal_access_tokens",
                       data={"name": "x", "scopes": "api"}).status_code == 400
    created = client.post("/-/user_settings/personal_access_tokens",
                          data={"csrf_token": csrf, "action": "create", "name": "ci", "scopes": ["read_api"]})
    assert created.status_code == 200
    new_token = re.search(r'<pre id="new-token">([^<]+)</pre>', created.get_data(as_text=True)).group(1)
    assert identity_for({"PRIVATE-TOKEN": new_token}).scopes == ("read_api",)
    assert new_token not in client.get("/-/user_settings/personal_access_tokens").get_data(as_text=True)
    row = db.session.scalar(select(PersonalAccessToken).where(PersonalAccessToken.name == "ci"))
    client.post("/-/user_settings/personal_access_tokens",
                data={"csrf_token": csrf, "action": "revoke", "token_id": row.id})
    assert identity_for({"PRIVATE-TOKEN": new_token}) is None


SAMPLE_ARGS = {"project_ref": "acme%2Fml%2Fprivate", "project_path": "acme/ml/private"}
SAMPLE_BY_CONVERTER = {"int": "7", "path": "dir/file.txt", "default": "x", "string": "x", "uuid": "0" * 32}


def sample_url(rule) -> str:
    """A concrete URL that ``rule`` matches (nested project paths included)."""
    def fill(match: re.Match) -> str:
        converter, name = match.group(1) or "default", match.group(2)
        return SAMPLE_ARGS.get(name) or SAMPLE_BY_CONVERTER.get(converter, "x")

    return re.sub(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>", fill, rule.rule)


def test_forge_routes_do_not_shadow_the_extension(app):
    """Every URL the extension mounts (API, packages, UI: whatever this build
    has) reaches the extension, not the forge's catch-all project route."""
    adapter = app.url_map.bind("localhost")
    extension_rules = [r for r in app.url_map.iter_rules() if not r.endpoint.startswith(("forge.", "static"))]
    assert any(r.rule.startswith("/api/v4/projects/") for r in extension_rules)
    for rule in extension_rules:
        method = sorted(rule.methods - {"HEAD", "OPTIONS"})[0]
        endpoint, _args = adapter.match(sample_url(rule), method=method)
        assert not endpoint.startswith("forge."), (rule.rule, endpoint)
    assert adapter.match("/acme/ml/private/-/jobs/3")[0] == "forge.job"
    assert adapter.match("/acme/ml/private")[0] == "forge.path_page"


def test_database_url_rewrites_postgres_to_psycopg3():
    assert normalise_database_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalise_database_url("postgres://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalise_database_url("postgresql+psycopg://h/db") == "postgresql+psycopg://h/db"
    assert normalise_database_url("sqlite:///x.db") == "sqlite:///x.db"


# -- seed ------------------------------------------------------------------------------
def run_cli(app, *args, env=None):
    result = app.test_cli_runner().invoke(args=list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


def test_seed_is_idempotent_and_honours_demo_token(app, monkeypatch):
    monkeypatch.setenv("DEMO_TOKEN", "glpat-demo-token-for-tests")
    monkeypatch.setenv("DEMO_PASSWORD", "demo-pass")
    first = run_cli(app, "forge", "seed")
    second = run_cli(app, "forge", "seed", "--base-url", "http://forge.test:8080")
    assert "export MLFLOW_TRACKING_URI=http://127.0.0.1:5000/api/v4/projects/1/ml/mlflow" in first
    assert "export MLFLOW_TRACKING_URI=http://forge.test:8080/api/v4/projects/1/ml/mlflow" in second
    for output in (first, second):
        assert "export MLFLOW_TRACKING_TOKEN=glpat-demo-token-for-tests" in output
    ids = dict(db.session.execute(select(Project.full_path, Project.id)).all())
    assert ids == {"demo/mnist": 1, "demo/secret": 2}
    assert db.session.get(Project, 1).visibility == "public" and db.session.get(Project, 2).visibility == "private"
    assert db.session.scalar(select(func.count()).select_from(User)) == 2
    assert db.session.scalar(select(func.count()).select_from(PersonalAccessToken)) == 2
    demo = identity_for({"Authorization": "Bearer glpat-demo-token-for-tests"})
    assert demo.username == "demo"
    assert all(permissions.is_allowed(demo, db.session.get(Project, 2), p) for p in READS + WRITES)
    outsider = db.session.scalar(select(User).where(User.username == "outsider"))
    assert permissions.role_in(outsider.id, 2) is None
    assert auth.authenticate("demo", "demo-pass") is not None

    # A different DEMO_TOKEN replaces the stored one.
    monkeypatch.setenv("DEMO_TOKEN", "glpat-another-token")
    run_cli(app, "forge", "seed")
    db.session.expire_all()
    assert identity_for({"PRIVATE-TOKEN": "glpat-demo-token-for-tests"}) is None
    assert identity_for({"PRIVATE-TOKEN": "glpat-another-token"}).username == "demo"
    assert db.session.scalar(select(func.count()).select_from(PersonalAccessToken)) == 2


def test_seed_without_env_prints_a_usable_token_each_run(app):
    first = run_cli(app, "forge", "seed")
    assert "Created user demo with password:" in first
    token1 = re.search(r"export MLFLOW_TRACKING_TOKEN=(\S+)", first).group(1)
    second = run_cli(app, "forge", "seed")
    assert "Created user" not in second and "stored only as a hash" in second
    token2 = re.search(r"export MLFLOW_TRACKING_TOKEN=(\S+)", second).group(1)
    assert token2.startswith("glpat-") and token2 != token1
    db.session.expire_all()
    assert identity_for({"PRIVATE-TOKEN": token2}).username == "demo"
    assert db.session.scalar(select(func.count()).select_from(User)) == 2


def test_create_token_command(app):
    run_cli(app, "forge", "seed")
    token = run_cli(app, "forge", "create-token", "outsider", "--scopes", "read_api").strip()
    assert token.startswith("glpat-")
    db.session.expire_all()
    assert identity_for({"PRIVATE-TOKEN": token}).scopes == ("read_api",)
    bad = app.test_cli_runner().invoke(args=["forge", "create-token", "outsider", "--scopes", "sudo"])
    assert bad.exit_code != 0
    assert app.test_cli_runner().invoke(args=["forge", "create-token", "ghost"]).exit_code != 0
