"""`python -m lab_runtime.backends.healthcheck TARGET`: a container's health check (stdlib only, so it starts fast).

TARGET is a URL that must answer 200, or a heartbeat file that must be fresh (the same rule as the local runtime).
"""

from __future__ import annotations

import os
import sys
import time
import urllib.request

HEARTBEAT_MAX_AGE = 5.0  # seconds; the services write theirs every second


def healthy(target: str) -> bool:
    if target.startswith("http"):
        try:
            with urllib.request.urlopen(target, timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False
    try:
        return time.time() - os.stat(target).st_mtime < HEARTBEAT_MAX_AGE
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(0 if len(sys.argv) == 2 and healthy(sys.argv[1]) else 1)
