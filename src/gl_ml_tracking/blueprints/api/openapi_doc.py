"""``GET <tracking URI>/api/2.0/mlflow/openapi.json``: the OpenAPI 3 document of
the MLflow API this forge serves, with the project's tracking URI as server.

It needs the same credentials as any read of the project: the document itself
is not secret, but answering it would confirm that a private project exists.
"""
from __future__ import annotations

import copy

from flask import request

from ..openapi import build_openapi
from .api_framework import EXPERIMENTS_READ, ApiContext, api_route

OPENAPI_PATH = "openapi.json"
_cache: dict = {}  # the routing table is fixed once imported: build the document once


@api_route(OPENAPI_PATH, "GET", EXPERIMENTS_READ, ajax=False)
def openapi_document(ctx: ApiContext):
    if "doc" not in _cache:
        _cache["doc"] = build_openapi()
    document = copy.deepcopy(_cache["doc"])
    # The tracking URI is this request's URL less the endpoint's own path.
    suffix = "/api/2.0/mlflow/" + OPENAPI_PATH
    base = request.base_url[: -len(suffix)] if request.base_url.endswith(suffix) else request.host_url.rstrip("/")
    document["servers"] = [{"url": base, "description": "the project's MLflow tracking URI"}]
    return document
