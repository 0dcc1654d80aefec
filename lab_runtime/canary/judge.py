"""The canary, judged: live figures per variant, and the automated analysis's decisions. Pure: no I/O.

`variant_stats` reads frames of the prediction log (requests and labelled predictions) for one variant and
version. An `AnalysisSpec` (YAML, like Flagger's analysis) says how to step the challenger's share up;
`decide` takes one interval's figures to the next move: step up, hold, abort or promote.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lab_runtime.durations import Seconds

if TYPE_CHECKING:  # numpy and pandas only where figures are computed: a lab check that reads a verdict loads neither
    import numpy as np
    import pandas as pd


@dataclass(frozen=True)
class VariantStats:
    """One variant's traffic over a window: calls, errors, latency of successful calls, quality on labelled rows."""

    variant: str
    version: str | None
    requests: int
    errors: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    labelled: int
    accuracy: float | None  # None below the minimum of labelled rows

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "error_rate": self.error_rate}


def percentile(values: np.ndarray, q: float) -> float | None:
    """The `q` (0 to 100) percentile of `values`, or None when there are none."""
    import numpy as np

    return float(np.percentile(values, q)) if len(values) else None


def variant_stats(
    requests: pd.DataFrame, labelled: pd.DataFrame, variant: str, version: str | None, min_labels: int
) -> VariantStats:
    """The figures of `variant` served by `version` (rows of other versions, e.g. a replaced challenger, ignored)."""
    calls = requests[(requests["variant"] == variant) & (requests["model_version"] == version)]
    ok = calls.loc[calls["status"] == 200, "latency_ms"].to_numpy()
    rows = labelled[(labelled["variant"] == variant) & (labelled["model_version"] == version)]
    accuracy = float((rows["prediction"] == rows["label"]).mean()) if len(rows) >= max(min_labels, 1) else None
    return VariantStats(
        variant,
        version,
        requests=len(calls),
        errors=int((calls["status"] != 200).sum()),
        latency_p50_ms=percentile(ok, 50),
        latency_p99_ms=percentile(ok, 99),
        labelled=len(rows),
        accuracy=accuracy,
    )


def accuracy_drop(champion: VariantStats, challenger: VariantStats) -> float | None:
    """How far the challenger's accuracy is below the champion's on the same window (None: too few labels)."""
    if champion.accuracy is None or challenger.accuracy is None:
        return None
    return champion.accuracy - challenger.accuracy


class Thresholds(BaseModel):
    """What a healthy challenger stays within over one interval. A threshold left out is not checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_error_rate: float | None = Field(0.02, ge=0, le=1, description="share of the challenger's calls failing")
    max_latency_p99_ms: float | None = Field(250.0, gt=0, description="the challenger's p99 latency")
    # About 150 labelled rows judge accuracy within +-0.035 (one standard error at 80 %), so a 0.08 drop is
    # rarely sampling noise; fewer rows or a tighter threshold abort healthy canaries.
    max_accuracy_drop: float | None = Field(
        0.08, ge=0, le=1, description="champion accuracy minus challenger accuracy, on the same labelled window"
    )
    min_labels: int = Field(150, ge=1, description="labelled rows per variant needed before quality is judged")


class AnalysisSpec(BaseModel):
    """The automated canary analysis: every `interval`, judge the challenger; step up while healthy."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    interval: Seconds = Field(10.0, gt=0, description="time between two decisions")
    step_weight: float = Field(0.1, gt=0, le=1, description="how much the share grows per healthy interval")
    max_weight: float = Field(0.5, gt=0, le=1, description="the share at which a healthy canary is promoted")
    failure_limit: int = Field(2, ge=1, description="failed checks (in all) that abort the canary")
    min_requests: int = Field(10, ge=1, description="challenger calls per interval needed for a verdict")
    quality_window: Seconds = Field(300.0, gt=0, description="labelled rows this far back judge quality")
    thresholds: Thresholds = Field(default_factory=Thresholds)

    @model_validator(mode="after")
    def _reachable(self) -> AnalysisSpec:
        if self.step_weight > self.max_weight:
            raise ValueError(f"step_weight {self.step_weight:g} is above max_weight {self.max_weight:g}")
        return self


Action = Literal["step", "hold", "abort", "promote"]


@dataclass(frozen=True)
class Decision:
    action: Action
    weight: float  # the share after this decision
    failures: int  # failed checks so far, this one included
    failed: tuple[str, ...]  # why this interval's check failed (empty: healthy)
    measured: dict[str, float | None]

    @property
    def line(self) -> str:
        figures = ", ".join(f"{k} {_fmt(v)}" for k, v in self.measured.items())
        why = f"; failed: {'; '.join(self.failed)}" if self.failed else ""
        return f"{self.action} at share {self.weight:g} ({figures}){why}"


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4g}"


def check(spec: AnalysisSpec, champion: VariantStats, challenger: VariantStats) -> tuple[list[str], dict[str, Any]]:
    """Why the challenger fails this interval (empty: healthy), and the figures it was judged on."""
    t = spec.thresholds
    drop = accuracy_drop(champion, challenger)
    measured = {
        "requests": float(challenger.requests),
        "error_rate": challenger.error_rate,
        "latency_p99_ms": challenger.latency_p99_ms,
        "labelled": float(challenger.labelled),
        "accuracy": challenger.accuracy,
        "champion_accuracy": champion.accuracy,
        "accuracy_drop": drop,
    }
    if challenger.requests < spec.min_requests:
        return [f"only {challenger.requests} challenger calls, {spec.min_requests} needed for a verdict"], measured
    failed = []
    rate = challenger.error_rate or 0.0
    if t.max_error_rate is not None and rate > t.max_error_rate:
        failed.append(f"error rate {rate:.3f} > {t.max_error_rate:g}")
    p99 = challenger.latency_p99_ms
    if t.max_latency_p99_ms is not None and p99 is not None and p99 > t.max_latency_p99_ms:
        failed.append(f"p99 latency {p99:.0f} ms > {t.max_latency_p99_ms:g} ms")
    if t.max_accuracy_drop is not None and drop is not None and drop > t.max_accuracy_drop:
        failed.append(f"accuracy {drop:.3f} below the champion's (at most {t.max_accuracy_drop:g})")
    return failed, measured


def decide(
    spec: AnalysisSpec, weight: float, failures: int, champion: VariantStats, challenger: VariantStats
) -> Decision:
    """The next move after one interval at share `weight`, with `failures` failed checks before it."""
    failed, measured = check(spec, champion, challenger)
    if failed:
        failures += 1
        action: Action = "abort" if failures >= spec.failure_limit else "hold"
        return Decision(action, 0.0 if action == "abort" else weight, failures, tuple(failed), measured)
    if weight >= spec.max_weight - 1e-9:
        return Decision("promote", 1.0, failures, (), measured)
    return Decision("step", _round(min(weight + spec.step_weight, spec.max_weight)), failures, (), measured)


def _round(weight: float) -> float:
    """Shares such as 0.1 + 0.2 stay 0.3, not 0.30000000000000004."""
    return math.floor(weight * 1e6 + 0.5) / 1e6
