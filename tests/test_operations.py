"""What operators poll and read: the health check (200 with the database, 503 with
Retry-After without), one JSON log line per request with a request id, route, status and
duration, and the optional Prometheus metrics (requests by route and status, latency,
pool use); all off the projects' URLs and off by default where optional."""
from __future__ import annotations

import json
import logging

import pytest
import requests

from tests.support.liveserver import another_forge, build_app

OPS = "/-/gl-ml-tracking"


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(record.getMessage()))


@pytest.fixture(scope="module")
def observed(database_url, tmp_path_factory):
    with another_forge(database_url, str(tmp_path_factory.mktemp("ops")),
                       {"GL_ML_TRACKING_REQUEST_LOG": True, "GL_ML_TRACKING_METRICS": True}) as live:
        yield live


def test_health_answers_with_the_database(forge):
    answer = requests.get(forge.base_url + OPS + "/health", timeout=30)
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}


def test_health_without_the_database_is_503_with_retry_after(tmp_path):
    app = build_app("postgresql+psycopg://postgres@127.0.0.1:1/nothing", str(tmp_path))
    answer = app.test_client().get(OPS + "/health")
    assert answer.status_code == 503 and answer.get_json() == {"status": "unavailable"}
    assert answer.headers["Retry-After"] == "2"


def test_one_json_line_per_request(observed):
    handler = Lines()
    logger = logging.getLogger("gl_ml_tracking.requests")
    logger.addHandler(handler)
    try:
        api = observed.tracking_uri(1) + "/api/2.0/mlflow"
        ok = requests.get(f"{api}/experiments/search", params={"max_results": 1}, timeout=30,
                          headers={"Authorization": f"Bearer {observed.owner_token}", "X-Request-Id": "lb-42"})
        refused = requests.get(f"{api}/experiments/search", timeout=30)
        requests.get(observed.base_url + "/", timeout=30)  # the host's own page: not ours, not logged
    finally:
        logger.removeHandler(handler)
    assert ok.headers["X-Request-Id"] == "lb-42" and len(refused.headers["X-Request-Id"]) == 32
    assert [(line["request_id"], line["status"]) for line in handler.lines] == [
        ("lb-42", 200), (refused.headers["X-Request-Id"], 401)]
    first = handler.lines[0]
    assert first["method"] == "GET" and first["route"].endswith("/api/2.0/mlflow/experiments/search")
    assert "<path:project_ref>" in first["route"] and first["duration_ms"] > 0


def test_prometheus_metrics(observed, forge):
    api = observed.tracking_uri(1) + "/api/2.0/mlflow"
    for _ in range(3):
        requests.get(f"{api}/experiments/search", params={"max_results": 1}, timeout=30,
                     headers={"Authorization": f"Bearer {observed.owner_token}"})
    text = requests.get(observed.base_url + OPS + "/metrics", timeout=30).text
    route = "/api/v4/projects/<path:project_ref>/ml/mlflow/api/2.0/mlflow/experiments/search"
    counted = [line for line in text.splitlines()
               if line.startswith("glml_http_requests_total{") and f'route="{route}"' in line and 'status="200"' in line]
    assert len(counted) == 1 and float(counted[0].rsplit(" ", 1)[1]) >= 3
    assert f'glml_http_request_duration_seconds_bucket{{le="0.005",method="GET",route="{route}"}}' in text
    assert "glml_db_pool_checked_out " in text and "glml_db_pool_size " in text
    # Off by default: the default forge has no metrics endpoint.
    assert requests.get(forge.base_url + OPS + "/metrics", timeout=30).status_code == 404
