"""The forge's own tables: users, groups, projects, members, tokens and CI.

Every table is prefixed ``forge_`` and lives on the forge's metadata, so it
never collides with the tracking extension's ``glml_`` tables even when both
share one database and one Flask-SQLAlchemy session.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from enum import IntEnum
from typing import Optional

from flask import has_request_context, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Named constraints: PostgreSQL and SQLite then agree on names, and a later
# Alembic setup for the forge would autogenerate stable scripts.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class ForgeBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=ForgeBase)

# One segment of a user name or a group/project path, as GitLab allows them:
# it cannot start with '-' so the '/-/' separator can never be a path segment.
PATH_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
# Top-level names that would clash with the forge's own routes.
RESERVED_TOP_LEVEL = frozenset({"api", "users", "groups", "static", "help", "admin"})


class Role(IntEnum):
    GUEST = 10
    REPORTER = 20
    DEVELOPER = 30
    MAINTAINER = 40
    OWNER = 50


def utcnow() -> datetime:
    # Naive UTC everywhere: SQLite drops time zones, so storing naive UTC keeps
    # comparisons identical on SQLite and PostgreSQL.
    return datetime.now(timezone.utc).replace(tzinfo=None)


def web_path(path: str) -> str:
    """``/path`` under the app's mount point (SCRIPT_NAME) when in a request."""
    root = request.script_root if has_request_context() else ""
    return f"{root}/{path.lstrip('/')}"


def check_segment(value: str, *, top_level: bool = False) -> str:
    if not PATH_SEGMENT.match(value or "") or value.endswith((".git", ".atom")):
        raise ValueError(f"invalid path segment: {value!r}")
    if top_level and value.lower() in RESERVED_TOP_LEVEL:
        raise ValueError(f"reserved name: {value!r}")
    return value


class User(db.Model):
    __tablename__ = "forge_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    avatar_url: Mapped[Optional[str]] = mapped_column(String(1024))
    # A blocked user can neither sign in nor use any of their tokens.
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    @property
    def web_url(self) -> str:
        return web_path(self.username)


class Namespace(db.Model):
    """A group; ``parent_id`` nests it, ``full_path`` is ``group/sub``."""

    __tablename__ = "forge_namespaces"
    __table_args__ = (UniqueConstraint("parent_id", "path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    parent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("forge_namespaces.id"))
    path: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(255))
    full_path: Mapped[str] = mapped_column(String(1024), unique=True)

    parent: Mapped[Optional["Namespace"]] = relationship(remote_side="Namespace.id")

    @classmethod
    def build(cls, path: str, name: Optional[str] = None, parent: Optional["Namespace"] = None) -> "Namespace":
        check_segment(path, top_level=parent is None)
        full_path = f"{parent.full_path}/{path}" if parent else path
        return cls(path=path, name=name or path, parent=parent, full_path=full_path)

    @property
    def web_url(self) -> str:
        return web_path(f"groups/{self.full_path}")


class Project(db.Model):
    """What the extension's ``project_loader`` hands out: ``id``, ``full_path``,
    ``name``, ``web_url`` and ``visibility`` (read by the default checker)."""

    __tablename__ = "forge_projects"
    __table_args__ = (
        UniqueConstraint("namespace_id", "path"),
        CheckConstraint("visibility IN ('public', 'private')", name="visibility"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    namespace_id: Mapped[int] = mapped_column(ForeignKey("forge_namespaces.id"))
    path: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(255))
    full_path: Mapped[str] = mapped_column(String(1024), unique=True)
    visibility: Mapped[str] = mapped_column(String(16), default="private")
    description: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    namespace: Mapped[Namespace] = relationship()

    @classmethod
    def build(cls, namespace: Namespace, path: str, name: Optional[str] = None, visibility: str = "private",
              description: Optional[str] = None) -> "Project":
        check_segment(path)
        if visibility not in ("public", "private"):
            raise ValueError(f"invalid visibility: {visibility!r}")
        return cls(namespace=namespace, path=path, name=name or path, visibility=visibility,
                   full_path=f"{namespace.full_path}/{path}", description=description)

    @property
    def web_url(self) -> str:
        return web_path(self.full_path)


class Membership(db.Model):
    __tablename__ = "forge_memberships"
    __table_args__ = (
        UniqueConstraint("user_id", "project_id"),
        CheckConstraint("role IN (10, 20, 30, 40, 50)", name="role"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("forge_users.id"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("forge_projects.id"), index=True)
    role: Mapped[int] = mapped_column(Integer)

    user: Mapped[User] = relationship()
    project: Mapped[Project] = relationship()


class PersonalAccessToken(db.Model):
    """Only the SHA-256 digest of the token is kept; the token itself is shown
    once, when created, and cannot be recovered from the database."""

    __tablename__ = "forge_personal_access_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("forge_users.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    scopes: Mapped[str] = mapped_column(String(255))  # comma list: "api", "read_api"
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    last_used_at: Mapped[Optional[datetime]] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    user: Mapped[User] = relationship()

    @property
    def scope_list(self) -> tuple[str, ...]:
        return tuple(s.strip() for s in self.scopes.split(",") if s.strip())

    def is_active(self, now: Optional[datetime] = None) -> bool:
        now = now or utcnow()
        return not self.revoked and (self.expires_at is None or self.expires_at > now)


class MergeRequest(db.Model):
    __tablename__ = "forge_merge_requests"
    __table_args__ = (UniqueConstraint("project_id", "iid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("forge_projects.id"), index=True)
    iid: Mapped[int] = mapped_column(Integer)  # per project, as in GitLab URLs
    title: Mapped[str] = mapped_column(String(255))
    source_branch: Mapped[str] = mapped_column(String(255))
    target_branch: Mapped[str] = mapped_column(String(255))
    author_id: Mapped[Optional[int]] = mapped_column(ForeignKey("forge_users.id"))

    project: Mapped[Project] = relationship()
    author: Mapped[Optional[User]] = relationship()

    @property
    def web_url(self) -> str:
        return web_path(f"{self.project.full_path}/-/merge_requests/{self.iid}")


class Pipeline(db.Model):
    __tablename__ = "forge_ci_pipelines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("forge_projects.id"), index=True)
    ref: Mapped[str] = mapped_column(String(255))
    sha: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32), default="running")
    merge_request_id: Mapped[Optional[int]] = mapped_column(ForeignKey("forge_merge_requests.id"))
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("forge_users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    project: Mapped[Project] = relationship()
    merge_request: Mapped[Optional[MergeRequest]] = relationship()
    user: Mapped[Optional[User]] = relationship()

    @property
    def web_url(self) -> str:
        return web_path(f"{self.project.full_path}/-/pipelines/{self.id}")


JOB_STATUSES = ("running", "success", "failed")


class Job(db.Model):
    """A CI job. Its token (``glcbt-...``) authenticates as ``user`` for this
    project only, and only while the job is running."""

    __tablename__ = "forge_ci_jobs"
    __table_args__ = (CheckConstraint("status IN ('running', 'success', 'failed')", name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("forge_projects.id"), index=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("forge_ci_pipelines.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32), default="running")
    token_digest: Mapped[Optional[str]] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("forge_users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    project: Mapped[Project] = relationship()
    pipeline: Mapped[Pipeline] = relationship()
    user: Mapped[User] = relationship()

    @property
    def web_url(self) -> str:
        return web_path(f"{self.project.full_path}/-/jobs/{self.id}")


FORGE_TABLES = [
    User.__table__,
    Namespace.__table__,
    Project.__table__,
    Membership.__table__,
    PersonalAccessToken.__table__,
    MergeRequest.__table__,
    Pipeline.__table__,
    Job.__table__,
]


def create_forge_tables() -> None:
    """Create the forge's tables only (the extension's come from its migrations)."""
    ForgeBase.metadata.create_all(bind=db.engine, tables=FORGE_TABLES)
