"""JSON responses in MLflow's shapes (the MLflow API and the CI JSON)."""
from __future__ import annotations

from typing import Any

from flask import Response

from ..errors import MlflowError
from ..schemas.mlflow_json import dumps


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(dumps(payload), status=status, mimetype="application/json")


def error_response(error: MlflowError) -> Response:
    """MLflow's error JSON: ``{"error_code": ..., "message": ...}``."""
    return json_response(error.to_dict(), error.status)
