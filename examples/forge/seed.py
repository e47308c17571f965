"""Demo data: users ``demo`` and ``outsider``, group ``demo``, a public project
``demo/mnist`` and a private ``demo/secret``. Safe to run again: what exists
is kept, and the output always ends with working export lines."""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from typing import Callable, Optional

from sqlalchemy import select
from werkzeug.security import check_password_hash

from . import auth, urls
from .models import Membership, Namespace, PersonalAccessToken, Project, Role, User, db

SEED_TOKEN_NAME = "seed"


@dataclass
class SeedResult:
    project_ids: dict[str, int] = field(default_factory=dict)
    demo_token: Optional[str] = None
    lines: list[str] = field(default_factory=list)


def _user(username: str, name: str, password_env: str, say: Callable[[str], None]) -> User:
    wanted = os.environ.get(password_env)
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        password = wanted or secrets.token_urlsafe(12)
        user = User(username=username, name=name, email=f"{username}@example.com",
                    password_hash=auth.hash_password(password))
        db.session.add(user)
        if not wanted:
            say(f"Created user {username} with password: {password}  (shown once; set {password_env} to choose)")
    elif wanted and not check_password_hash(user.password_hash, wanted):
        # The environment says what the password is; follow it.
        user.password_hash = auth.hash_password(wanted)
    return user


def _namespace(path: str, name: str) -> Namespace:
    found = db.session.scalar(select(Namespace).where(Namespace.full_path == path))
    if found is None:
        found = Namespace.build(path, name)
        db.session.add(found)
    return found


def _project(namespace: Namespace, path: str, name: str, visibility: str, description: str) -> Project:
    found = db.session.scalar(select(Project).where(Project.full_path == f"{namespace.full_path}/{path}"))
    if found is None:
        found = Project.build(namespace, path, name, visibility, description)
        db.session.add(found)
        db.session.flush()  # ids in creation order: demo/mnist 1, demo/secret 2 on a fresh database
    return found


def _member(user: User, project: Project, role: Role) -> None:
    found = db.session.scalar(select(Membership).where(Membership.user_id == user.id,
                                                       Membership.project_id == project.id))
    if found is None:
        db.session.add(Membership(user=user, project=project, role=int(role)))


def _seed_token(user: User, token_env: str, say: Callable[[str], None], *, always_known: bool) -> Optional[str]:
    """Make sure ``user`` has the seed token and return its value when known.

    With ``token_env`` set, the stored token is made to match it. Without, a
    new random one is made the first time; on later runs the old value cannot
    be recovered (only its hash is kept), so when ``always_known`` a fresh one
    replaces it.
    """
    wanted = os.environ.get(token_env) or None
    row = db.session.scalar(select(PersonalAccessToken).where(PersonalAccessToken.user_id == user.id,
                                                              PersonalAccessToken.name == SEED_TOKEN_NAME))
    if row is not None and (row.revoked or not row.is_active()):
        row.revoked, row.expires_at = False, None  # the demo token never expires
    if wanted:
        if len(wanted) > auth.MAX_TOKEN_LENGTH:
            raise ValueError(f"{token_env} is longer than {auth.MAX_TOKEN_LENGTH} characters")
        clash = db.session.scalar(select(PersonalAccessToken).where(
            PersonalAccessToken.token_digest == auth.token_digest(wanted)))
        if clash is not None and clash is not row:
            raise ValueError(f"{token_env} is already the token of another user or token")
        if row is None:
            auth.create_personal_access_token(user, SEED_TOKEN_NAME, ("api",), token=wanted)
        elif not auth.digest_matches(wanted, row.token_digest):
            row.token_digest = auth.token_digest(wanted)
            row.scopes = "api"
            say(f"Replaced {user.username}'s seed token with the value of {token_env}.")
        return wanted
    if row is None:
        _row, token = auth.create_personal_access_token(user, SEED_TOKEN_NAME, ("api",))
        say(f"Created a token for {user.username} (shown once; set {token_env} to choose it).")
        return token
    if not always_known:
        return None
    token = auth.new_token(auth.PAT_PREFIX)
    row.token_digest = auth.token_digest(token)
    row.scopes = "api"
    say(f"Note: {user.username}'s earlier seed token is stored only as a hash, so a new one was made;"
        f" the earlier one no longer works. Set {token_env} to keep a token across runs.")
    return token


def seed(base_url: str = "http://127.0.0.1:5000", say: Callable[[str], None] = print) -> SeedResult:
    result = SeedResult()
    demo = _user("demo", "Demo User", "DEMO_PASSWORD", say)
    outsider = _user("outsider", "Outside User", "DEMO_OUTSIDER_PASSWORD", say)
    group = _namespace("demo", "Demo")
    mnist = _project(group, "mnist", "MNIST", "public", "Digit classifiers: a public project to try tracking in.")
    secret = _project(group, "secret", "Secret", "private", "A private project: only its members see it.")
    for project in (mnist, secret):
        _member(demo, project, Role.OWNER)
    db.session.flush()
    result.demo_token = _seed_token(demo, "DEMO_TOKEN", say, always_known=True)
    outsider_token = _seed_token(outsider, "DEMO_OUTSIDER_TOKEN", say, always_known=False)
    db.session.commit()

    result.project_ids = {mnist.full_path: mnist.id, secret.full_path: secret.id}
    base = base_url.rstrip("/")
    password_hint = "from DEMO_PASSWORD" if os.environ.get("DEMO_PASSWORD") else "as printed when demo was created"
    result.lines = [
        f"export MLFLOW_TRACKING_URI={base}{urls.tracking_path(mnist)}",
        f"export MLFLOW_TRACKING_TOKEN={result.demo_token}",
        f"# UI: {base}/{mnist.full_path} (experiments: {base}{urls.experiments_path(mnist)};"
        f" private project: {base}/{secret.full_path})",
        f"# Sign in at {base}/users/sign_in as demo (password {password_hint}).",
    ]
    if outsider_token and not os.environ.get("DEMO_OUTSIDER_TOKEN"):
        result.lines.append(f"# outsider's token (member of no project): {outsider_token}")
    for line in result.lines:
        say(line)
    return result
