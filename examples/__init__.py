"""Example hosts for gl-ml-tracking (importable as ``examples``)."""
