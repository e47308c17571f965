"""A fresh project of the example forge, owned by ``demo``, for tests that need an
empty tracking server of their own (as MLflow's tests get a new server per test)."""
from __future__ import annotations

import uuid

from sqlalchemy import select


def new_project(forge, visibility: str = "private") -> int:
    """Create ``demo/<random>`` with ``demo`` as owner; return its id."""
    from examples.forge.models import Membership, Namespace, Project, Role, User, db

    with forge.app.app_context():
        group = db.session.scalar(select(Namespace).where(Namespace.full_path == "demo"))
        owner = db.session.scalar(select(User).where(User.username == "demo"))
        path = "p" + uuid.uuid4().hex[:12]
        project = Project.build(group, path, path, visibility, "")
        db.session.add(project)
        db.session.flush()
        db.session.add(Membership(user=owner, project=project, role=int(Role.OWNER)))
        db.session.commit()
        return project.id
