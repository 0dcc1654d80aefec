"""Observing the running sandbox as probe signals: the runtime's own state plus the monitor's signals."""

from __future__ import annotations

import time
from typing import Any

import httpx

from lab_runtime.backends.base import Backend
from lab_runtime.settings import Settings

TIMEOUT = 1.5
STALE_AFTER = 3  # monitor evaluations older than this many intervals are not trusted
MONITOR_EVALUATED_AT = "monitor.evaluated_at"  # not a signal conditions may name: when the monitor's values are from


def _get(url: str) -> dict[str, Any] | None:
    try:
        answer = httpx.get(url, timeout=TIMEOUT, trust_env=False)
    except httpx.HTTPError:
        return None
    if answer.status_code != 200:
        return None
    try:
        body: dict[str, Any] = answer.json()
    except ValueError:
        return None
    return body


def observe(settings: Settings, backend: Backend) -> dict[str, float]:
    """Every probe signal that has a value now (a signal nobody can measure is left out, not guessed)."""
    observed: dict[str, float] = {f"up.{s.name}": float(s.healthy) for s in backend.status()}
    model = _get(f"{settings.service_url}/model")
    if model is not None:
        observed["ready"] = float(model.get("champion") is not None)
        observed["registry_reachable"] = float(bool(model.get("registry_reachable")))
        observed["challenger"] = float(model.get("challenger") is not None)
        observed["canary_weight"] = float(model.get("canary_weight") or 0.0)
    else:
        observed["ready"] = 0.0
    status = _get(f"{settings.monitor_url}/status")
    evaluated = status.get("evaluated_at") if status else None
    if status and evaluated and time.time() - evaluated < STALE_AFTER * settings.monitor_interval + 2:
        observed |= {k: float(v) for k, v in status.get("signals", {}).items() if isinstance(v, int | float)}
        observed[MONITOR_EVALUATED_AT] = float(evaluated)
    return observed
