"""``python -m nas.backends``: one worker process (what the local backend starts and ``nas worker`` runs)."""

from __future__ import annotations

import sys

from nas.engine.worker import worker_main

if __name__ == "__main__":
    try:
        sys.exit(worker_main())
    except ValueError as exc:
        print(f"nas worker: error: {exc}", file=sys.stderr)
        sys.exit(2)
