"""Serve the example forge in a process of its own, so a test can measure the server's memory.

    python tests/forge_process.py <database url> <storage path> [extra config as JSON]

The database must already be migrated and seeded (tests/liveserver.py migrate_and_seed).
Prints ``PORT <n>`` on stdout once listening, then serves until killed.
"""
from __future__ import annotations

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

from werkzeug.serving import make_server  # noqa: E402

from liveserver import build_app  # noqa: E402


def main() -> None:
    database_url, storage_path = sys.argv[1], sys.argv[2]
    extra = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    app = build_app(database_url, storage_path, extra)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(f"PORT {server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
