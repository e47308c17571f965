"""A second host of another shape than the example forge: Flask-Login
sessions, its own SQLAlchemy models, its own URL prefixes and base template.
Everything between the two markers is the glue the extension needs."""
from __future__ import annotations

import os

from flask import Flask, request
from flask_login import LoginManager, UserMixin, current_user, login_user
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

db = SQLAlchemy()


class Member(UserMixin, db.Model):
    __tablename__ = "lab_members"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(unique=True)
    api_key: Mapped[str] = mapped_column(unique=True)


class Workspace(db.Model):
    __tablename__ = "lab_workspaces"
    id: Mapped[int] = mapped_column(primary_key=True)
    full_path: Mapped[str] = mapped_column(unique=True)
    name: Mapped[str]
    owner_id: Mapped[int]


def create_app(database_url: str, storage: str) -> Flask:
    app = Flask(__name__, template_folder=os.path.join(os.path.dirname(__file__), "templates"))
    app.config.update(SQLALCHEMY_DATABASE_URI=database_url, SECRET_KEY="lab", GL_ML_TRACKING_STORAGE_PATH=storage)
    db.init_app(app)
    logins = LoginManager(app)
    logins.user_loader(lambda uid: db.session.get(Member, int(uid)))

    @app.post("/login/<username>")
    def login(username):
        login_user(db.session.execute(db.select(Member).filter_by(username=username)).scalar_one())
        return "ok"

    # --- glue: the extension in this host -----------------------------------
    from gl_ml_tracking import MLTracking

    app.config.update(
        GL_ML_TRACKING_API_PREFIX="/lab/<path:project_ref>/mlflow",
        GL_ML_TRACKING_PACKAGES_PREFIX="/lab/<path:project_ref>/files",
        GL_ML_TRACKING_UI_PREFIX="/w/<path:project_path>/-",
        GL_ML_TRACKING_BASE_TEMPLATE="lab_base.html",
    )
    ml = MLTracking(app, db=db)

    @ml.user_loader
    def load_user(req):
        key = req.headers.get("Authorization", "").removeprefix("Bearer ")
        if key:
            return db.session.execute(db.select(Member).filter_by(api_key=key)).scalar_one_or_none()
        return current_user if current_user.is_authenticated else None

    @ml.project_loader
    def load_workspace(ref):
        column = Workspace.id if ref.isdigit() else Workspace.full_path
        return db.session.execute(db.select(Workspace).where(column == (int(ref) if ref.isdigit() else ref))).scalar_one_or_none()

    @ml.permission_checker
    def may(user, workspace, permission):
        return user is not None and user.id == workspace.owner_id
    # --- end of glue -----------------------------------------------------------
    return app
