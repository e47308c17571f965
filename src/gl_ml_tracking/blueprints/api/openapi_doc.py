"""``GET <tracking URI>/api/2.0/mlflow/openapi.json``: the OpenAPI 3 document of
the MLflow API this forge serves, with the project's tracking URI as server.

It needs the same credentials as any read of the project: the document itself
is not secret, but answering it would confirm that a private project exists.
"""
from __future__ import annotations

import copy
from typing import Sequence

from flask import request

from ...openapi import build_openapi
from ...schemas.common import NoParameters
from .framework import EXPERIMENTS_READ, MLFLOW_PREFIX, ApiContext, Routes, RouteSpec

OPENAPI_PATH = "openapi.json"


def document_routes(documented: Sequence[RouteSpec]) -> Routes:
    """The document's own endpoint, describing ``documented`` and itself."""
    routes = Routes()
    cache: dict = {}  # the routes are fixed once the blueprint is made: build the document once

    @routes.route(OPENAPI_PATH, "GET", EXPERIMENTS_READ, ajax=False, schema=NoParameters)
    def openapi_document(ctx: ApiContext):
        if "doc" not in cache:
            cache["doc"] = build_openapi([*documented, *routes])
        document = copy.deepcopy(cache["doc"])
        # The tracking URI is this request's URL less the endpoint's own path.
        suffix = MLFLOW_PREFIX + OPENAPI_PATH
        base = request.base_url[: -len(suffix)] if request.base_url.endswith(suffix) else request.host_url.rstrip("/")
        document["servers"] = [{"url": base, "description": "the project's MLflow tracking URI"}]
        return document

    return routes
