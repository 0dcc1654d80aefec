"""The shadow, live: figures per window read from the prediction log, for the version `@staging` names now.

`measure` serves `lab shadow status`: the registry says which version is the shadow and its share, the prediction
log's `shadow` table gives the records mirrored to it, and the service's `/model` (when it answers) says what it
mirrors now, its queue, and why it cannot load the staging version if it cannot.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from lab_runtime.events import LEARNER_ACTION, SHADOW_START
from lab_runtime.journal import Journal
from lab_runtime.predlog import PredictionLog
from lab_runtime.registry.rest import STAGING, Registry
from lab_runtime.service.client import served_model
from lab_runtime.settings import Settings
from lab_runtime.shadow.judge import NO_DATA, NO_GO, Limits, ShadowStats, verdict, window_stats, windows


@dataclass(frozen=True)
class ShadowReport:
    """One reading of the shadow: `windows` newest first, `total` over all of them, and the verdict on `total`."""

    at: float
    window: float
    staging: str | None
    share: float
    windows: list[ShadowStats]
    total: ShadowStats
    verdict: str
    reasons: list[str]
    service: dict[str, Any] | None = field(default=None)  # /model's `shadow`, or None when the service is down

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "window_s": self.window,
            "staging": self.staging,
            "share": self.share,
            "windows": [w.as_dict() for w in self.windows],
            "total": self.total.as_dict(),
            "verdict": self.verdict,
            "reasons": self.reasons,
            "service": self.service,
        }


def measure(
    settings: Settings, window: float, count: int, min_labels: int, limits: Limits | None = None
) -> ShadowReport:
    """The shadow of the version `@staging` names now over `count` windows of `window` seconds."""
    registry = Registry(settings.mlflow_url)
    try:
        state = registry.model(settings.model_name)
    finally:
        registry.close()
    staging = state.aliases.get(STAGING) if state else None
    share = state.shadow_share if state else 0.0
    now = time.time()
    log = PredictionLog(settings.prediction_log_path)
    try:
        rows = log.shadow(now - count * window, now, version=staging or "")
    finally:
        log.close()
    total = window_stats(rows, now - count * window, now, min_labels)
    said, reasons = verdict(total, limits or Limits())
    model = served_model(settings)
    service = dict(model["shadow"]) if model and "shadow" in model else None
    load_error = (model or {}).get("load_errors", {}).get(staging) if staging and share > 0 else None
    if load_error:
        said, reasons = NO_GO, [f"the service cannot load version {staging}: {load_error}", *reasons]
    if staging is None:
        said, reasons = NO_DATA, [f"there is no @{STAGING} (`lab model stage VERSION` puts a version there)"]
    return ShadowReport(now, window, staging, share, windows(rows, now, window, count, min_labels), total, said,
                        reasons, service)  # fmt: skip


def run_so_far(settings: Settings, journal: Journal, min_labels: int = 30) -> ShadowReport:
    """The running shadow judged over the whole run of `@staging`'s shadow so far (since its last `shadow.start`)."""
    began = max(
        (e.ts for e in journal.events([LEARNER_ACTION]) if e.payload.get("action") == SHADOW_START),
        default=time.time() - 60.0,
    )
    return measure(settings, max(time.time() - began, 1.0), 1, min_labels)
