"""What the model service serves, as the faults that move an alias wait for it."""

from __future__ import annotations

import time
from typing import Any

from drills.faults.base import FaultContext
from lab_runtime import loopback

SERVED_TIMEOUT = 60.0  # seconds the service may take to load the new version


def served(ctx: FaultContext) -> dict[str, Any] | None:
    """The service's `/model` (the versions it serves per alias), or None when it does not answer."""
    try:
        body = loopback.get(f"{ctx.settings.service_url}/model", timeout=2.0).json()
    except (loopback.LoopbackError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def serving(ctx: FaultContext, alias: str) -> str | None:
    version = (served(ctx) or {}).get(alias)
    return str(version) if version is not None else None


def wait_served(ctx: FaultContext, alias: str, version: str | None) -> bool:
    """Whether the service served `version` as `@alias` within SERVED_TIMEOUT."""
    deadline = time.monotonic() + SERVED_TIMEOUT
    while time.monotonic() < deadline:
        if serving(ctx, alias) == version:
            return True
        time.sleep(0.05)
    return False
