"""Reading the running model service from other processes (the CLI, lab checks)."""

from __future__ import annotations

from typing import Any

from lab_runtime import loopback
from lab_runtime.settings import Settings


def served_model(settings: Settings) -> dict[str, Any] | None:
    """The service's `GET /model` (what it serves now, the aliases it follows), or None when it does not answer."""
    try:
        return dict(loopback.get(f"{settings.service_url}/model", timeout=3.0).json())
    except (loopback.LoopbackError, ValueError):
        return None


def policy_in_force(settings: Settings) -> dict[str, Any] | None:
    """The service's `GET /policy` (the output policy it applies now), or None when it does not answer."""
    try:
        answer = loopback.get(f"{settings.service_url}/policy", timeout=3.0)
        return dict(answer.json()) if answer.status_code == 200 else None
    except (loopback.LoopbackError, ValueError):
        return None
