"""Creating a project, three ways a new user expects: the "New project" page
(``/projects/new``), GitLab's ``POST /api/v4/projects`` and
``flask forge create-project``. The creator becomes the project's owner.

Where a project goes (GitLab's rule, simplified for this example): the
caller's own namespace (named after their user name, made on first use), or a
group (``namespace_id`` / ``--namespace``) in which the caller already
maintains a project."""
from __future__ import annotations

import re
from typing import Any, Optional

import click
from flask import Blueprint, jsonify, redirect, render_template, request, url_for
from flask.cli import with_appcontext
from sqlalchemy import select

from . import csrf
from .models import Membership, Namespace, Project, Role, User, db
from .views import current_identity

bp = Blueprint("forge_projects", __name__)

VISIBILITIES = ("private", "public")


class ProjectError(ValueError):
    """A project that cannot be made as asked; ``field`` names the argument."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field} {message}")
        self.field = field
        self.message = message


def path_from_name(name: str) -> str:
    """GitLab's default path for a name: lower case, runs of other characters as '-'."""
    return re.sub(r"[^a-z0-9_.]+", "-", name.strip().lower()).strip("-._")[:100]


def _own_namespace(user: User) -> Namespace:
    found = db.session.scalar(select(Namespace).where(Namespace.full_path == user.username))
    if found is None:
        found = Namespace.build(user.username, user.name or user.username)
        db.session.add(found)
        db.session.flush()
    return found


def _maintains_in(user: User, namespace: Namespace) -> bool:
    role = db.session.scalar(
        select(Membership.role).join(Project, Project.id == Membership.project_id)
        .where(Membership.user_id == user.id, Project.namespace_id == namespace.id)
        .order_by(Membership.role.desc()).limit(1))
    return role is not None and role >= Role.MAINTAINER


def target_namespace(user: User, namespace_ref: Any = None) -> Namespace:
    """The namespace a new project of ``user`` goes to: an id, a full path, or None (their own)."""
    if namespace_ref in (None, ""):
        return _own_namespace(user)
    ref = str(namespace_ref).strip()
    namespace = db.session.get(Namespace, int(ref)) if ref.isdecimal() else db.session.scalar(
        select(Namespace).where(Namespace.full_path == ref))
    if namespace is None:
        raise ProjectError("namespace", "is not valid")
    if namespace.full_path != user.username and not _maintains_in(user, namespace):
        raise ProjectError("namespace", "is not valid")  # as GitLab: no hint that it exists
    return namespace


def create_project(user: User, name: str, path: Optional[str] = None, namespace_ref: Any = None,
                   visibility: str = "private", description: Optional[str] = None) -> Project:
    """A new project owned by ``user`` (not committed)."""
    name = (name or "").strip()
    path = (path or "").strip() or path_from_name(name)
    name = name or path
    if not name:
        raise ProjectError("name", "can't be blank")
    if len(name) > 255:
        raise ProjectError("name", "is too long (maximum is 255 characters)")
    if visibility not in VISIBILITIES:
        raise ProjectError("visibility", "does not have a valid value")
    namespace = target_namespace(user, namespace_ref)
    try:
        project = Project.build(namespace, path, name, visibility, (description or "").strip() or None)
    except ValueError:
        raise ProjectError("path", "can contain only letters, digits, '_', '-' and '.', and cannot start "
                           "with '-' or end in '.git' or '.atom'") from None
    taken = db.session.scalar(select(Project.id).where(Project.full_path == project.full_path))
    if taken is not None:
        raise ProjectError("path", "has already been taken")
    db.session.add(project)
    db.session.flush()
    db.session.add(Membership(user_id=user.id, project_id=project.id, role=int(Role.OWNER)))
    return project


def project_json(project: Project) -> dict:
    """The fields of GitLab's project entity that matter here."""
    namespace = project.namespace
    return {
        "id": project.id,
        "name": project.name,
        "path": project.path,
        "path_with_namespace": project.full_path,
        "name_with_namespace": f"{namespace.name} / {project.name}",
        "description": project.description,
        "visibility": project.visibility,
        "web_url": request.host_url.rstrip("/") + project.web_url,
        "created_at": project.created_at.isoformat() + "Z" if project.created_at else None,
        "namespace": {"id": namespace.id, "name": namespace.name, "path": namespace.path,
                      "full_path": namespace.full_path},
    }


# -- the API -------------------------------------------------------------------------
@bp.post("/api/v4/projects")
def api_create_project():
    identity = current_identity()
    if identity is None or identity.via == "session":  # the API takes tokens; pages use the form
        return jsonify({"message": "401 Unauthorized"}), 401
    if identity.ci_project_id is not None or "api" not in identity.scopes:
        return jsonify({"message": "403 Forbidden"}), 403  # job tokens and read_api tokens cannot create
    args = request.get_json(silent=True) if request.is_json else None
    args = args if isinstance(args, dict) else request.form.to_dict()
    if not args.get("name") and not args.get("path"):
        return jsonify({"error": "name is missing, path is missing, name, path are missing, at least one "
                                 "parameter must be provided"}), 400
    user = db.session.get(User, identity.id)
    try:
        project = create_project(user, str(args.get("name") or ""), str(args.get("path") or ""),
                                 args.get("namespace_id"), str(args.get("visibility") or "private"),
                                 str(args.get("description") or ""))
        db.session.commit()
    except ProjectError as exc:
        db.session.rollback()
        return jsonify({"message": {exc.field: [exc.message]}}), 400
    return jsonify(project_json(project)), 201


# -- the page ------------------------------------------------------------------------
@bp.route("/projects/new", methods=["GET", "POST"])
def new_project():
    identity = current_identity()
    if identity is None or identity.via != "session":
        return redirect(url_for("forge.sign_in", next=request.path))
    user = db.session.get(User, identity.id)
    error, form = None, {"visibility": "private"}
    if request.method == "POST":
        csrf.check_csrf()
        form = request.form.to_dict()
        try:
            project = create_project(user, form.get("name", ""), form.get("path", ""), form.get("namespace") or None,
                                     form.get("visibility", "private"), form.get("description", ""))
            db.session.commit()
            return redirect(project.web_url, code=303)
        except ProjectError as exc:
            db.session.rollback()
            error = f"The project could not be created: {exc.field} {exc.message}."
    namespaces = [user.username] + [
        ns.full_path for ns in db.session.scalars(select(Namespace).order_by(Namespace.full_path))
        if ns.full_path != user.username and _maintains_in(user, ns)]
    return render_template("forge/new_project.html", error=error, form=form, namespaces=namespaces,
                           visibilities=VISIBILITIES), 400 if error else 200


# -- the command ---------------------------------------------------------------------
@click.command("create-project")
@click.argument("username")
@click.argument("name")
@click.option("--path", default="", help="URL path (default: from the name).")
@click.option("--namespace", default="", help="Group full path (default: the user's own namespace).")
@click.option("--visibility", type=click.Choice(VISIBILITIES), default="private", show_default=True)
@click.option("--description", default="")
@with_appcontext
def create_project_command(username: str, name: str, path: str, namespace: str, visibility: str,
                           description: str) -> None:
    """Create project NAME owned by USERNAME and print its full path and id."""
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.ClickException(f"no user {username!r}")
    try:
        project = create_project(user, name, path, namespace or None, visibility, description)
        db.session.commit()
    except ProjectError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{project.full_path} (id {project.id})")
