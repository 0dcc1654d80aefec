"""The canary, live: figures per variant read from the prediction log, and the automated analysis that acts on them.

`measure` serves `lab canary status` and every interval of `run_analysis`: one reading of the live canary.
`run_analysis` steps the challenger's share up while it is healthy, aborts it after too many failed checks, and
promotes it at the top; every decision is journaled (`canary.analysis`) with the figures it was made on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab_runtime.canary.judge import AnalysisSpec, Decision, VariantStats, decide, variant_stats
from lab_runtime.errors import InvalidAnalysis, LabError
from lab_runtime.events import CANARY_ANALYSIS, CanaryAnalysis
from lab_runtime.files.yamlfile import load_model
from lab_runtime.journal import Journal
from lab_runtime.predlog import PredictionLog
from lab_runtime.registry import model_ops
from lab_runtime.registry.rest import CHALLENGER, CHAMPION, Registry
from lab_runtime.settings import Settings

VIA = "lab canary analyze"


@dataclass(frozen=True)
class CanaryReport:
    """One reading of the canary: each variant over `window` seconds (quality over `quality_window`)."""

    at: float
    window: float
    quality_window: float
    weight: float
    champion: VariantStats
    challenger: VariantStats | None

    def as_dict(self) -> dict[str, Any]:
        from lab_runtime.canary.judge import accuracy_drop

        challenger = self.challenger.as_dict() if self.challenger else None
        drop = accuracy_drop(self.champion, self.challenger) if self.challenger else None
        return {
            "at": self.at,
            "window_s": self.window,
            "quality_window_s": self.quality_window,
            "weight": self.weight,
            "champion": self.champion.as_dict(),
            "challenger": challenger,
            "accuracy_drop": drop,
        }


def measure(settings: Settings, window: float, quality_window: float, min_labels: int) -> CanaryReport:
    """Champion and challenger (the versions their aliases name now) over the last `window` seconds."""
    registry = Registry(settings.mlflow_url)
    try:
        state = registry.model(settings.model_name)
    finally:
        registry.close()
    aliases = state.aliases if state else {}
    now = time.time()
    log = PredictionLog(settings.prediction_log_path)
    try:
        requests = log.requests(now - window, now)
        labelled = log.labelled(now - quality_window, now)
    finally:
        log.close()
    champion = variant_stats(requests, labelled, CHAMPION, aliases.get(CHAMPION), min_labels)
    challenger = None
    if CHALLENGER in aliases:
        challenger = variant_stats(requests, labelled, CHALLENGER, aliases[CHALLENGER], min_labels)
    weight = state.canary_weight if state and challenger else 0.0
    return CanaryReport(now, window, quality_window, weight, champion, challenger)


def load_spec(path: Path) -> AnalysisSpec:
    """Read and validate a canary analysis file; errors name the file and the field."""
    return load_model(path, AnalysisSpec, InvalidAnalysis, "canary analysis")


def run_analysis(
    settings: Settings,
    journal: Journal,
    spec: AnalysisSpec,
    say: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> Decision:
    """Drive the running canary to a promotion or an abort; returns the last decision.

    Starts from the canary's share (or `step_weight` when it has none). Stops with a LabError when the
    challenger is changed by someone else or the registry fails, and on Ctrl-C; each stop is journaled
    (`stopped`, with the reason) and leaves the share where it is.
    """
    interval, quality_window = settings.scaled(spec.interval), settings.scaled(spec.quality_window)
    report = measure(settings, interval, quality_window, spec.thresholds.min_labels)
    if report.challenger is None:
        raise LabError("there is no @challenger to analyse; start a canary with `lab canary start VERSION` first")
    version, weight, failures = report.challenger.version, report.weight, 0

    if weight == 0.0:
        weight = spec.step_weight
        model_ops.set_canary(settings, journal, weight, via=VIA)
    journal.append(
        CANARY_ANALYSIS,
        CanaryAnalysis(decision="start", version=version, weight=weight, spec=spec.model_dump(mode="json")),
    )
    say(f"analysing the canary of version {version} from share {weight:g}, every {interval:g}s")
    try:
        while True:
            sleep(interval)
            report = measure(settings, interval, quality_window, spec.thresholds.min_labels)
            if report.challenger is None or report.challenger.version != version:
                now = report.challenger.version if report.challenger else None
                raise LabError(
                    f"@challenger is no longer version {version} (now {now or 'unset'}): someone else changed the "
                    "canary, so the analysis stopped; see `lab model history`"
                )
            decision = decide(spec, weight, failures, report.champion, report.challenger)
            judged = CanaryAnalysis(
                decision=decision.action,
                version=version,
                weight_before=weight,
                weight=decision.weight,
                failures=decision.failures,
                failed=list(decision.failed),
                measured=decision.measured,
            )
            journal.append(CANARY_ANALYSIS, judged)
            say(decision.line)
            if decision.action == "abort":
                model_ops.abort_canary(settings, journal, expected=version, via=VIA)
                return decision
            if decision.action == "promote":
                model_ops.promote_canary(settings, journal, expected=version, via=VIA)
                return decision
            if decision.weight != weight:
                model_ops.set_canary(settings, journal, decision.weight, via=VIA)
            weight, failures = decision.weight, decision.failures
    except (KeyboardInterrupt, LabError) as exc:  # Ctrl-C, the canary changed under it, the registry failed
        reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)  # the share stays where it is
        journal.append(
            CANARY_ANALYSIS, CanaryAnalysis(decision="stopped", version=version, weight=weight, reason=reason)
        )
        raise
