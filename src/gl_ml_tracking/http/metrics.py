"""Prometheus metrics of the extension (``GL_ML_TRACKING_METRICS``, off by default; needs
the ``metrics`` extra, ``prometheus-client``): requests by route, method and status, a
latency histogram by route, and the database pool's use, at ``/-/gl-ml-tracking/metrics``.

Each app has a registry of its own (several apps per process work). Under gunicorn each
worker counts its own requests; set ``PROMETHEUS_MULTIPROC_DIR`` (an empty directory, the
same for all workers, emptied at each start) to have the endpoint add up every worker's,
as ``prometheus_client``'s multiprocess mode does.
"""
from __future__ import annotations

import os
import time
from typing import Any

from flask import Flask, Response, request

from .request_log import ours, route_label, started

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """The collectors of one app, and how its pool is read at scrape time."""

    def __init__(self, engine_of: Any) -> None:
        try:
            import prometheus_client as prom
        except ImportError as exc:  # the optional "metrics" extra
            raise RuntimeError("GL_ML_TRACKING_METRICS needs prometheus-client: "
                               "pip install 'gl-ml-tracking[metrics]'") from exc
        self.prom = prom
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = prom.CollectorRegistry(auto_describe=True)
        registry = None if self.multiprocess else self.registry
        self.requests = prom.Counter("glml_http_requests_total", "Requests answered by the extension",
                                     ("route", "method", "status"), registry=registry)
        self.latency = prom.Histogram("glml_http_request_duration_seconds", "Time to answer a request",
                                      ("route", "method"), buckets=BUCKETS, registry=registry)
        mode = {"multiprocess_mode": "livesum"} if self.multiprocess else {}
        self.pool_in_use = prom.Gauge("glml_db_pool_checked_out", "Database connections in use", registry=registry,
                                      **mode)
        self.pool_size = prom.Gauge("glml_db_pool_size", "Database connections the pool keeps", registry=registry,
                                    **mode)
        self._engine_of = engine_of

    def observe(self, response: Response) -> Response:
        if ours() and started() is not None:
            route = route_label()
            self.requests.labels(route, request.method, str(response.status_code)).inc()
            self.latency.labels(route, request.method).observe(time.perf_counter() - started())
        return response

    def exposition(self) -> Response:
        pool = getattr(self._engine_of(), "pool", None)
        if pool is not None and hasattr(pool, "checkedout"):
            self.pool_in_use.set(pool.checkedout())
            self.pool_size.set(pool.size())
        registry = self.registry
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = self.prom.CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        return Response(self.prom.generate_latest(registry), mimetype=self.prom.CONTENT_TYPE_LATEST)


def install_metrics(app: Flask, engine_of: Any) -> Metrics:
    metrics = Metrics(engine_of)
    app.after_request(metrics.observe)
    return metrics
