"""Serve the example forge in a process of its own, so a test can measure the server's memory.

    python -m tests.support.forge_process <database url> <storage path> [extra config as JSON]

with the repository root on PYTHONPATH (``tests.support.child_env``). The database must
already be migrated and seeded (``tests.support.liveserver.migrate_and_seed``).
Prints ``PORT <n>`` on stdout once listening, then serves until killed.
"""
from __future__ import annotations

import json
import sys

from werkzeug.serving import make_server

from tests.support.liveserver import build_app


def main() -> None:
    database_url, storage_path = sys.argv[1], sys.argv[2]
    extra = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    app = build_app(database_url, storage_path, extra)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(f"PORT {server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
