"""Reading the running monitor from other processes (the CLI, lab checks, drills)."""

from __future__ import annotations

from typing import Any

import httpx

from lab_runtime import loopback
from lab_runtime.errors import RuntimeNotReady
from lab_runtime.settings import Settings


def fetch_status(settings: Settings) -> dict[str, Any]:
    """The monitor's `GET /status`, or RuntimeNotReady naming how to start it."""
    try:
        answer = loopback.get(f"{settings.monitor_url}/status", timeout=5.0)
        answer.raise_for_status()
        return dict(answer.json())
    except httpx.HTTPError as exc:
        raise RuntimeNotReady(
            f"the monitor does not answer at {settings.monitor_url} ({type(exc).__name__}); "
            "start the sandbox with `lab up`, or read `lab logs monitor`"
        ) from None
