"""Side-by-side benchmark of our example forge against the reference ``mlflow server``.

Run it with ``make bench`` (or ``python -m benchmarks.run --help``); it writes
``benchmarks/RESULTS.md``. Nothing here is imported by the extension or the tests,
except the smoke test that runs the harness at a tiny scale.
"""
