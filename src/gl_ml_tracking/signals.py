"""Signals a host can subscribe to (blinker, as Flask uses).

Each is sent with the Flask app as sender and keyword arguments naming what
happened, e.g. ``run_created.connect(fn)`` gets ``fn(app, project=..., run=...)``.
"""
from blinker import Namespace

_signals = Namespace()

experiment_created = _signals.signal("gl-ml-tracking.experiment-created")
run_created = _signals.signal("gl-ml-tracking.run-created")
run_finished = _signals.signal("gl-ml-tracking.run-finished")
artifact_stored = _signals.signal("gl-ml-tracking.artifact-stored")
