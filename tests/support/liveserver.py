"""The example forge with the extension, served for real on a free loopback
port in a background thread, with a seeded demo (two projects, two users)."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

from werkzeug.serving import make_server

from tests.support import environ_set
from tests.support.mlflow_state import forget_fluent_state

OWNER_TOKEN = "glpat-test-owner-token-000000000001"
OUTSIDER_TOKEN = "glpat-test-outsider-token-0000000002"


@dataclass
class LiveForge:
    app: Any
    base_url: str
    owner_token: str = OWNER_TOKEN
    outsider_token: str = OUTSIDER_TOKEN
    extra: dict = field(default_factory=dict)
    _server: Any = None
    _thread: Optional[threading.Thread] = None

    def tracking_uri(self, project_ref: Any = 1) -> str:
        return f"{self.base_url}/api/v4/projects/{project_ref}/ml/mlflow"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._server = None
            # A stopped server must not stay MLflow's tracking URI: the next module (or the
            # other database's half of this one) configures the client through the environment.
            forget_fluent_state(self.base_url)


def build_app(database_url: str, storage_path: str, extra_config: Optional[dict] = None):
    from examples.forge import create_app

    config = {
        "SQLALCHEMY_DATABASE_URI": database_url,
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "GL_ML_TRACKING_STORAGE_PATH": storage_path,
    }
    config.update(extra_config or {})
    return create_app(config)


def migrate_and_seed(app, base_url: str = "http://127.0.0.1") -> Any:
    from examples.forge.models import create_forge_tables
    from examples.forge.seed import seed
    from gl_ml_tracking import migrate

    with environ_set(DEMO_TOKEN=OWNER_TOKEN, DEMO_OUTSIDER_TOKEN=OUTSIDER_TOKEN, DEMO_PASSWORD="demo-password"), \
            app.app_context():
        create_forge_tables()
        migrate.upgrade()
        return seed(base_url, say=lambda *_: None)


def serve(app) -> LiveForge:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    port = server.server_port
    thread = threading.Thread(target=server.serve_forever, name=f"forge-{port}", daemon=True)
    thread.start()
    return LiveForge(app=app, base_url=f"http://127.0.0.1:{port}", _server=server, _thread=thread)


@contextmanager
def another_forge(database_url: str, storage_path: str, extra_config: Optional[dict] = None,
                  seed: bool = True) -> Iterator[LiveForge]:
    """One more forge served on ``database_url`` with settings of its own (another
    SECRET_KEY, S3, trusted proxies...): built, migrated and seeded, stopped and its
    engine disposed afterwards."""
    app = build_app(database_url, storage_path, extra_config)
    if seed:
        migrate_and_seed(app)
    live = serve(app)
    try:
        yield live
    finally:
        live.stop()
        with app.app_context():
            from gl_ml_tracking import get_state

            get_state(app).db.engine.dispose()
