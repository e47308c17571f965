"""The forge's pages: sign in/out, home, groups, projects, CI objects, users
and personal access tokens. The tracking pages themselves come from the
extension, mounted under ``/<project full path>/-/ml`` and ``/-/packages``."""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from flask import Blueprint, abort, make_response, redirect, render_template, request, url_for
from sqlalchemy import or_, select

from . import auth, csrf, permissions, urls
from .models import (Job, Membership, MergeRequest, Namespace, PersonalAccessToken, Pipeline, Project, Role, User,
                     db)

bp = Blueprint("forge", __name__, template_folder="templates")


def current_identity() -> Optional[auth.Identity]:
    # Cached on the request, not on ``g``: ``g`` belongs to the app context,
    # which Flask reuses across requests when one is already pushed (tests).
    cache = request.environ
    if "forge.identity" not in cache:
        cache["forge.identity"] = auth.identity_from_request(request)
    return cache["forge.identity"]


@bp.app_context_processor
def template_globals() -> dict:
    # App-wide so the forge layout also works around the extension's pages;
    # prefixed so it never replaces a variable of the extension's templates.
    return {"forge_csrf_token": csrf.csrf_token, "forge_user": current_identity()}


@bp.app_template_filter("role_name")
def role_name(role: Optional[int]) -> str:
    return Role(role).name.capitalize() if role in set(Role) else ""


def tracking_uri(project: Project) -> str:
    return request.host_url.rstrip("/") + request.script_root + urls.tracking_path(project)


def _safe_next(target: Optional[str]) -> str:
    # Only same-site paths: "//host" and "/\host" would leave the site. Browsers drop tabs and
    # newlines from URLs ("/\t/host" is "//host"), so a target with control characters is refused.
    if target and target.startswith("/") and not target.startswith(("//", "/\\")) \
            and not any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return target
    return url_for("forge.home")


def _readable_project(full_path: str, permission: str = permissions.READ_PROJECT) -> Project:
    project = db.session.scalar(select(Project).where(Project.full_path == full_path))
    # Unreadable and missing look the same, so private projects are not revealed.
    if project is None or not permissions.is_allowed(current_identity(), project, permission):
        abort(404)
    return project


def visible_projects_query(identity: Optional[auth.Identity]):
    condition = Project.visibility == "public"
    if identity is not None and identity.ci_project_id is None:
        member_of = select(Membership.project_id).where(Membership.user_id == identity.id)
        condition = or_(condition, Project.id.in_(member_of))
    return select(Project).where(condition).order_by(Project.full_path)


# -- sign in / out -------------------------------------------------------------
@bp.route("/users/sign_in", methods=["GET", "POST"])
def sign_in():
    next_url = _safe_next(request.values.get("next"))
    error = None
    if request.method == "POST":
        csrf.check_csrf()
        user = auth.authenticate(request.form.get("username", "").strip(), request.form.get("password", ""))
        if user is not None:
            auth.log_in(user)
            return redirect(next_url)
        error = "Invalid username or password."
    status = 401 if error else 200
    return render_template("forge/sign_in.html", error=error, next_url=next_url), status


@bp.post("/users/sign_out")
def sign_out():
    csrf.check_csrf()
    auth.log_out()
    return redirect(url_for("forge.home"))


# -- personal access tokens ------------------------------------------------------
def _parse_expiry(text: str) -> Optional[datetime]:
    # As in GitLab, a token "expires on" a date: it stops working at 00:00 UTC.
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        return None


@bp.route("/-/user_settings/personal_access_tokens", methods=["GET", "POST"])
def personal_access_tokens():
    identity = current_identity()
    if identity is None or identity.via != "session":
        # Tokens are created by a signed-in person, never by another token.
        return redirect(url_for("forge.sign_in", next=request.path))
    user = db.session.get(User, identity.id)
    new_token = error = None
    if request.method == "POST":
        csrf.check_csrf()
        if request.form.get("action") == "revoke":
            row = db.session.get(PersonalAccessToken, request.form.get("token_id", type=int) or 0)
            if row is None or row.user_id != user.id:
                abort(404)
            row.revoked = True
            db.session.commit()
            return redirect(url_for("forge.personal_access_tokens"))
        name = request.form.get("name", "").strip()
        expires_text = request.form.get("expires_at", "").strip()
        expires_at = _parse_expiry(expires_text)
        try:
            if not name:
                raise ValueError("Give the token a name.")
            if expires_text and expires_at is None:
                raise ValueError("The expiry date must look like 2030-12-31.")
            _row, new_token = auth.create_personal_access_token(
                user, name, request.form.getlist("scopes"), expires_at=expires_at)
            db.session.commit()
        except ValueError as exc:
            db.session.rollback()
            error = str(exc)
    tokens = db.session.scalars(select(PersonalAccessToken).where(PersonalAccessToken.user_id == user.id)
                                .order_by(PersonalAccessToken.id.desc())).all()
    response = make_response(render_template("forge/tokens.html", tokens=tokens, new_token=new_token,
                                             error=error, scopes=auth.SCOPES), 400 if error else 200)
    # The page may show a token: keep it out of every cache and history.
    response.headers["Cache-Control"] = "no-store"
    return response


# -- browsing ------------------------------------------------------------------
@bp.get("/")
def home():
    projects = db.session.scalars(visible_projects_query(current_identity())).all()
    return render_template("forge/home.html", projects=projects)


@bp.get("/groups/<path:full_path>")
def group(full_path: str):
    namespace = db.session.scalar(select(Namespace).where(Namespace.full_path == full_path))
    if namespace is None:
        abort(404)
    subgroups = db.session.scalars(select(Namespace).where(Namespace.parent_id == namespace.id)
                                   .order_by(Namespace.path)).all()
    projects = db.session.scalars(visible_projects_query(current_identity())
                                  .where(Project.namespace_id == namespace.id)).all()
    return render_template("forge/group.html", namespace=namespace, subgroups=subgroups, projects=projects)


@bp.get("/<path:full_path>/-/jobs/<int:job_id>")
def job(full_path: str, job_id: int):
    project = _readable_project(full_path, permissions.perms.READ_BUILD)
    found = db.session.get(Job, job_id)
    if found is None or found.project_id != project.id:
        abort(404)
    return render_template("forge/job.html", project=project, job=found)


@bp.get("/<path:full_path>/-/pipelines/<int:pipeline_id>")
def pipeline(full_path: str, pipeline_id: int):
    project = _readable_project(full_path, permissions.perms.READ_BUILD)
    found = db.session.get(Pipeline, pipeline_id)
    if found is None or found.project_id != project.id:
        abort(404)
    jobs = db.session.scalars(select(Job).where(Job.pipeline_id == found.id).order_by(Job.id)).all()
    return render_template("forge/pipeline.html", project=project, pipeline=found, jobs=jobs)


@bp.get("/<path:full_path>/-/merge_requests/<int:iid>")
def merge_request(full_path: str, iid: int):
    project = _readable_project(full_path)
    found = db.session.scalar(select(MergeRequest).where(MergeRequest.project_id == project.id,
                                                         MergeRequest.iid == iid))
    if found is None:
        abort(404)
    return render_template("forge/merge_request.html", project=project, mr=found)


@bp.get("/<path:full_path>")
def path_page(full_path: str):
    """``/<username>`` or ``/<group>/<project>``: one route, since both are
    free-form paths. Paths with the ``/-/`` separator belong to sub-pages."""
    if "/-/" in f"/{full_path}/":
        abort(404)
    if "/" not in full_path:
        return _user_page(full_path)
    return _project_page(full_path)


def _user_page(username: str):
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        abort(404)
    member_of = select(Membership.project_id).where(Membership.user_id == user.id)
    projects = db.session.scalars(visible_projects_query(current_identity())
                                  .where(Project.id.in_(member_of))).all()
    return render_template("forge/user.html", user=user, projects=projects)


def _project_page(full_path: str):
    project = _readable_project(full_path)
    identity = current_identity()
    role = permissions.role_in(identity.id, project.id) if identity else None
    can_read_builds = permissions.is_allowed(identity, project, permissions.perms.READ_BUILD)
    pipelines = db.session.scalars(select(Pipeline).where(Pipeline.project_id == project.id)
                                   .order_by(Pipeline.id.desc()).limit(10)).all() if can_read_builds else []
    merge_requests = db.session.scalars(select(MergeRequest).where(MergeRequest.project_id == project.id)
                                        .order_by(MergeRequest.iid.desc()).limit(10)).all()
    return render_template(
        "forge/project.html",
        project=project,
        role=role,
        pipelines=pipelines,
        merge_requests=merge_requests,
        tracking_uri=tracking_uri(project),
        experiments_url=request.script_root + urls.experiments_path(project),
        packages_url=request.script_root + urls.packages_path(project),
    )
