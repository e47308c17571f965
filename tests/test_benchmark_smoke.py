"""The benchmark harness (``make bench``) works end to end: at a tiny scale, on
SQLite, it starts the reference ``mlflow server`` and our forge under gunicorn,
drives both with the MLflow client and writes a table with figures for both.

Timings are not asserted (they belong in benchmarks/RESULTS.md, not in tests);
only that every figure was measured, for both servers.
"""
from __future__ import annotations

import json
import subprocess
import sys
import pytest

from tests.support import ROOT, child_env

WORKLOADS = ["log_metric", "log_batch", "search", "history", "pages"]


@pytest.mark.slow
def test_benchmark_harness_produces_a_table_for_both_servers(tmp_path):
    results = tmp_path / "RESULTS.md"
    data = tmp_path / "results.json"
    cmd = [sys.executable, "-m", "benchmarks.run", "--scale", "0.002", "--db", "sqlite", "--ref-workers", "1",
           "--only", *WORKLOADS, "--results", str(results), "--json", str(data), "--work-dir", str(tmp_path / "work")]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env=child_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    figures = json.loads(data.read_text())["figures"]
    assert not [f for f in figures if f["skipped"] and f["skipped"].startswith("failed")], proc.stdout[-3000:]
    measured = {f["workload"].split()[0] for f in figures if not f["skipped"]}
    assert {"1", "2", "4", "5"} <= measured

    # Every API workload has a number for the reference and for ours.
    for f in figures:
        if f["skipped"] or f["workload"].startswith("8"):
            continue
        for server in ("ref-w1", "ours"):
            value = f["values"].get(server)
            assert isinstance(value, (int, float)) and value == value, (f["name"], server, value)
    throughputs = [f for f in figures if f["unit"] in ("calls/s", "metrics/s")]
    assert throughputs and all(f["values"]["ours"] > 0 and f["values"]["ref-w1"] > 0 for f in throughputs)
    assert all(f["speedup"] is not None for f in throughputs)
    # The client alone (null server) is measured beside them: the largest reachable ratio.
    assert all(f["client_alone"] > 0 and f["ceiling_speedup"] > 0 for f in throughputs)
    # For the reads, it reads our own answers replayed at once; a null server is never a "server".
    reads = [f for f in figures if f["workload"][0] in "45" and f.get("target_text", "").startswith("≥")]
    assert len(reads) == 3 and all(f["client_alone"] > 0 and f["ceiling_speedup"] > 0 for f in reads)
    assert not [f for f in figures if "null-server" in f["values"]]

    text = results.read_text()
    assert "| db | workload | figure | reference (best config) | ours | ours vs ref | target | met? |" in text
    assert "client alone (null server) vs ref" in text
    assert "sequential log_metric" in text and "get_metric_history" in text
    assert "nproc" in text and "python -m benchmarks.run" in text
