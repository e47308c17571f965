"""Who is calling: passwords, tokens, and the identity a request carries.

Tokens are stored as SHA-256 digests only. A token is found by its digest (an
indexed, unique column), so the database never compares attacker-chosen text
with a secret; the digest is compared once more with ``hmac.compare_digest``.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Optional

from flask import current_app, session
from sqlalchemy import bindparam, select
from sqlalchemy.orm import joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from .models import Job, PersonalAccessToken, User, db, utcnow

PAT_PREFIX = "glpat-"
JOB_TOKEN_PREFIX = "glcbt-"
SCOPES = ("api", "read_api")
# Longer values are not tokens; refusing them early bounds the hashing work.
MAX_TOKEN_LENGTH = 256
# last_used_at is refreshed at most this often, so API calls don't all write.
LAST_USED_RESOLUTION = timedelta(minutes=10)
SESSION_USER_KEY = "forge_user_id"


@dataclass(frozen=True)
class Identity:
    """What ``user_loader`` returns.

    ``scopes`` limits what the caller may do (a session counts as ``api``);
    ``ci_job_id`` and ``ci_project_id`` are set only for a CI job token, whose
    caller acts as the job's user but only in the job's project.
    """

    id: int
    username: str
    name: str
    scopes: tuple[str, ...]
    via: str  # "session" | "token" | "job"
    ci_job_id: Optional[int] = None
    ci_project_id: Optional[int] = None


# -- passwords ---------------------------------------------------------------
def hash_password(password: str) -> str:
    # Tests pick a cheap method; real use keeps werkzeug's default (scrypt).
    method = current_app.config.get("FORGE_PASSWORD_HASH_METHOD", "scrypt")
    return generate_password_hash(password, method=method)


# Checked against when the user does not exist, so an unknown user name costs
# the same time as a wrong password and user names cannot be probed by timing.
_DUMMY_HASHES: dict[str, str] = {}


def authenticate(username: str, password: str) -> Optional[User]:
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        method = current_app.config.get("FORGE_PASSWORD_HASH_METHOD", "scrypt")
        dummy = _DUMMY_HASHES.setdefault(method, generate_password_hash(secrets.token_hex(8), method=method))
        check_password_hash(dummy, password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.active:
        return None
    return user


# -- tokens ------------------------------------------------------------------
def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def digest_matches(token: str, digest: str) -> bool:
    return hmac.compare_digest(token_digest(token), digest)


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(24)


def normalise_scopes(scopes: Iterable[str] | str) -> str:
    items = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    cleaned = sorted({s.strip() for s in items if s.strip()})
    if not cleaned or any(s not in SCOPES for s in cleaned):
        raise ValueError(f"scopes must be a non-empty subset of {', '.join(SCOPES)}")
    return ",".join(cleaned)


def create_personal_access_token(user: User, name: str, scopes: Iterable[str] | str = ("api",),
                                 expires_at: Optional[datetime] = None,
                                 token: Optional[str] = None) -> tuple[PersonalAccessToken, str]:
    """Store a new token for ``user``; returns the row and the token, which
    exists nowhere else afterwards."""
    token = token or new_token(PAT_PREFIX)
    row = PersonalAccessToken(user=user, name=name, scopes=normalise_scopes(scopes),
                              token_digest=token_digest(token), expires_at=expires_at)
    db.session.add(row)
    return row, token


# Every API call runs this lookup: the statement is built once, and the token's
# user comes in the same query (one round trip, not two).
_PAT_BY_DIGEST = (
    select(PersonalAccessToken)
    .where(PersonalAccessToken.token_digest == bindparam("digest"))
    .options(joinedload(PersonalAccessToken.user))
)


def find_personal_access_token(token: str) -> Optional[PersonalAccessToken]:
    """The active token row for ``token`` (not revoked, not expired, user active)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    digest = token_digest(token)
    row = db.session.scalar(_PAT_BY_DIGEST, {"digest": digest})
    if row is None or not hmac.compare_digest(row.token_digest, digest):
        return None
    if not row.is_active() or not row.user.active:
        return None
    return row


def find_running_job(token: str) -> Optional[Job]:
    """The job whose token this is, only while that job is running."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    digest = token_digest(token)
    job = db.session.scalar(select(Job).where(Job.token_digest == digest))
    if job is None or not hmac.compare_digest(job.token_digest or "", digest):
        return None
    if job.status != "running" or not job.user.active:
        return None
    return job


def _touch(row: PersonalAccessToken) -> None:
    """Record when the token was last used.

    Skipped when the session holds someone else's unsaved changes: committing
    here would save them half-done. The next request records it instead.
    """
    now = utcnow()
    if row.last_used_at is not None and now - row.last_used_at < LAST_USED_RESOLUTION:
        return
    session_ = db.session
    if session_.new or session_.dirty or session_.deleted:
        return
    row.last_used_at = now
    session_.commit()


# -- identities --------------------------------------------------------------
# What an API call needs to know about its token and user, in one query of plain
# columns: no ORM objects are built per request. The token's ORM row is loaded
# only when its last_used_at is due an update (every LAST_USED_RESOLUTION).
_PAT_IDENTITY = (
    select(
        PersonalAccessToken.id, PersonalAccessToken.token_digest, PersonalAccessToken.scopes,
        PersonalAccessToken.expires_at, PersonalAccessToken.revoked, PersonalAccessToken.last_used_at,
        User.id.label("user_id"), User.username.label("user_username"), User.name.label("user_name"),
        User.active.label("user_active"),
    )
    .join(User, User.id == PersonalAccessToken.user_id)
    .where(PersonalAccessToken.token_digest == bindparam("digest"))
)


def identity_from_pat(token: str) -> Optional[Identity]:
    """``find_personal_access_token`` + ``_touch``, as an Identity."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    digest = token_digest(token)
    # Columns only: the session's connection, without the ORM's statement and row handling.
    found = db.session.connection().execute(_PAT_IDENTITY, {"digest": digest}).first()
    if found is None or not hmac.compare_digest(found.token_digest, digest):
        return None
    now = utcnow()
    if found.revoked or (found.expires_at is not None and found.expires_at <= now) or not found.user_active:
        return None
    if found.last_used_at is None or now - found.last_used_at >= LAST_USED_RESOLUTION:
        row = db.session.get(PersonalAccessToken, found.id)
        if row is not None:
            _touch(row)
    scopes = tuple(s.strip() for s in found.scopes.split(",") if s.strip())  # PersonalAccessToken.scope_list
    return Identity(id=found.user_id, username=found.user_username, name=found.user_name, scopes=scopes, via="token")


def identity_from_job_token(token: str) -> Optional[Identity]:
    job = find_running_job(token)
    if job is None:
        return None
    user = job.user
    return Identity(id=user.id, username=user.username, name=user.name, scopes=("api",), via="job",
                    ci_job_id=job.id, ci_project_id=job.project_id)


def identity_from_any_token(token: str) -> Optional[Identity]:
    # The prefix says which table to try first; tokens set by hand (DEMO_TOKEN)
    # may carry no prefix, so the other table is tried too.
    finders = [identity_from_pat, identity_from_job_token]
    if token.startswith(JOB_TOKEN_PREFIX):
        finders.reverse()
    for finder in finders:
        found = finder(token)
        if found is not None:
            return found
    return None


def identity_from_session() -> Optional[Identity]:
    user_id = session.get(SESSION_USER_KEY)
    if user_id is None:
        return None
    user = db.session.get(User, user_id)
    if user is None or not user.active:
        return None
    return Identity(id=user.id, username=user.username, name=user.name, scopes=("api",), via="session")


def _basic_auth_password(header: str) -> Optional[str]:
    try:
        decoded = base64.b64decode(header, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _username, sep, password = decoded.partition(":")
    # The user name is not checked: as with GitLab's package endpoints the
    # token alone identifies the caller (MLflow sends MLFLOW_TRACKING_USERNAME).
    return password if sep else None


def identity_from_request(request) -> Optional[Identity]:
    """The ``user_loader`` hook: token headers first, then the browser session.

    Credentials that were sent but are invalid give ``None`` and do not fall
    back to the session: a request that names a bad token is anonymous.
    """
    headers = request.headers
    if "JOB-TOKEN" in headers:
        return identity_from_job_token(headers["JOB-TOKEN"].strip())
    if "PRIVATE-TOKEN" in headers:
        return identity_from_pat(headers["PRIVATE-TOKEN"].strip())
    authorization = headers.get("Authorization", "").strip()
    if authorization:
        kind, _, value = authorization.partition(" ")
        kind, value = kind.lower(), value.strip()
        if kind == "bearer":
            return identity_from_any_token(value)
        if kind == "basic":
            password = _basic_auth_password(value)
            return identity_from_any_token(password) if password else None
        return None
    return identity_from_session()


def log_in(user: User) -> None:
    # Start from an empty session: nothing set before sign-in (a CSRF token
    # someone else saw, a stale user id) carries over into the signed-in one.
    session.clear()
    session[SESSION_USER_KEY] = user.id


def log_out() -> None:
    session.clear()
