"""The shadow, judged: figures per window of the records mirrored to `@staging`, and a verdict. Pure: no I/O.

`window_stats` reads a frame of the prediction log's `shadow` table (`PredictionLog.shadow`): each row one record the
champion answered, with the shadow's outcome and answer beside the champion's. Agreement, latency, violations and
accuracy compare the two on the same records: the ones the shadow scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from lab_runtime.canary.judge import percentile
from lab_runtime.predlog import DROPPED, ERROR, SCORED

GO, NO_GO, NO_DATA = "go", "no-go", "no data"


@dataclass(frozen=True)
class Limits:
    """What a shadow ready for a canary stays within (error rate, p99 and accuracy drop as the canary analysis's)."""

    max_error_rate: float = 0.02
    max_drop_rate: float = 0.02  # more dropped: the shadow does not keep up with production traffic
    max_latency_p99_ms: float = 250.0
    min_agreement: float = 0.9  # the share of decisions the same as the champion's
    max_accuracy_drop: float = 0.08
    min_compared: int = 20  # records scored by both before a shadow without problems is a go
    max_extra_violations: float = 0.01  # policy-breaking decisions beyond the champion's, as a share of compared


@dataclass(frozen=True)
class ShadowStats:
    """The records mirrored with `start <= ts < end`: what became of them, and the shadow against the champion on
    the ones it scored. Latency: the shadow's model call; the champion's /predict call, as the service timed it."""

    start: float
    end: float
    mirrored: int
    compared: int  # scored by the shadow
    errors: int
    dropped: int
    decision_agreement: float | None  # share of compared records with the champion's decision
    class_agreement: float | None  # ... with the champion's predicted class
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    champion_latency_p50_ms: float | None
    champion_latency_p99_ms: float | None
    violations: int  # the shadow's decisions that break an output-policy rule
    champion_violations: int  # the champion's, on the same records
    labelled: int  # compared records with a label
    accuracy: float | None  # None below the minimum of labelled records
    champion_accuracy: float | None

    @property
    def error_rate(self) -> float | None:
        """Errors among the records the shadow took up (dropped ones never reached it)."""
        tried = self.compared + self.errors
        return self.errors / tried if tried else None

    @property
    def drop_rate(self) -> float | None:
        return self.dropped / self.mirrored if self.mirrored else None

    @property
    def accuracy_drop(self) -> float | None:
        if self.accuracy is None or self.champion_accuracy is None:
            return None
        return self.champion_accuracy - self.accuracy

    def as_dict(self) -> dict[str, Any]:
        """The figures of both sides on the same records, each under `shadow` and `champion`."""
        return {
            "start": self.start,
            "end": self.end,
            "mirrored": self.mirrored,
            "compared": self.compared,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "dropped": self.dropped,
            "drop_rate": self.drop_rate,
            "decision_agreement": self.decision_agreement,
            "class_agreement": self.class_agreement,
            "labelled": self.labelled,
            "accuracy_drop": self.accuracy_drop,
            "shadow": {
                "latency_p50_ms": self.latency_p50_ms,
                "latency_p99_ms": self.latency_p99_ms,
                "violations": self.violations,
                "accuracy": self.accuracy,
            },
            "champion": {
                "latency_p50_ms": self.champion_latency_p50_ms,
                "latency_p99_ms": self.champion_latency_p99_ms,
                "violations": self.champion_violations,
                "accuracy": self.champion_accuracy,
            },
        }


def window_stats(rows: pd.DataFrame, start: float, end: float, min_labels: int) -> ShadowStats:
    """The figures of the rows with `start <= ts < end` (columns as `PredictionLog.shadow` reads them)."""
    rows = rows[(rows["ts"] >= start) & (rows["ts"] < end)]
    scored = rows[rows["outcome"] == SCORED]
    labelled = scored[scored["label"].notna()]
    enough = len(labelled) >= max(min_labels, 1)

    def share(same: pd.Series) -> float | None:
        return float(same.mean()) if len(same) else None

    def accuracy(column: str) -> float | None:
        return float((labelled[column] == labelled["label"]).mean()) if enough else None

    return ShadowStats(
        start,
        end,
        mirrored=len(rows),
        compared=len(scored),
        errors=int((rows["outcome"] == ERROR).sum()),
        dropped=int((rows["outcome"] == DROPPED).sum()),
        decision_agreement=share(scored["decision"] == scored["champion_decision"]),
        class_agreement=share(scored["prediction"] == scored["champion_prediction"]),
        latency_p50_ms=percentile(scored["latency_ms"].to_numpy(), 50),
        latency_p99_ms=percentile(scored["latency_ms"].to_numpy(), 99),
        champion_latency_p50_ms=percentile(scored["champion_latency_ms"].to_numpy(), 50),
        champion_latency_p99_ms=percentile(scored["champion_latency_ms"].to_numpy(), 99),
        violations=int((scored["violations"] != "").sum()),
        champion_violations=int((scored["champion_violations"] != "").sum()),
        labelled=len(labelled),
        accuracy=accuracy("prediction"),
        champion_accuracy=accuracy("champion_prediction"),
    )


def windows(rows: pd.DataFrame, now: float, window: float, count: int, min_labels: int) -> list[ShadowStats]:
    """`count` consecutive windows of `window` seconds ending at `now`, newest first."""
    return [window_stats(rows, now - (k + 1) * window, now - k * window, min_labels) for k in range(count)]


def problems(stats: ShadowStats, limits: Limits) -> list[str]:
    """What keeps the shadow from a canary, one phrase each (empty: nothing)."""
    found = []
    if stats.error_rate is not None and stats.error_rate > limits.max_error_rate:
        found.append(f"errors on {stats.error_rate:.1%} of the records it took (at most {limits.max_error_rate:.0%})")
    if stats.drop_rate is not None and stats.drop_rate > limits.max_drop_rate:
        found.append(f"{stats.drop_rate:.1%} of mirrored records dropped: it does not keep up with the traffic")
    if stats.latency_p99_ms is not None and stats.latency_p99_ms > limits.max_latency_p99_ms:
        found.append(f"p99 latency {stats.latency_p99_ms:.0f} ms (at most {limits.max_latency_p99_ms:g} ms)")
    if stats.decision_agreement is not None and stats.decision_agreement < limits.min_agreement:
        found.append(
            f"the champion's decision on only {stats.decision_agreement:.1%} of records "
            f"(at least {limits.min_agreement:.0%})"
        )
    if stats.violations - stats.champion_violations > max(1.0, limits.max_extra_violations * stats.compared):
        theirs = stats.champion_violations
        found.append(f"{stats.violations} decisions break the output policy (the champion's: {theirs})")
    drop = stats.accuracy_drop
    if drop is not None and drop > limits.max_accuracy_drop:
        found.append(f"accuracy {drop:.3f} below the champion's (at most {limits.max_accuracy_drop:g})")
    return found


def verdict(stats: ShadowStats, limits: Limits) -> tuple[str, list[str]]:
    """NO_GO with its problems; else NO_DATA below `min_compared` records compared; else GO."""
    found = problems(stats, limits)
    if found:
        return NO_GO, found
    if stats.compared < limits.min_compared:
        return NO_DATA, [f"{stats.compared} records compared, {limits.min_compared} needed for a verdict"]
    return GO, []
