"""Sequential change detection: CUSUM charts fed every row once, as it arrives. Pure: no I/O.

A window test asks every few seconds "do the last 60 s look like the reference?", so it must use a tiny
threshold to stay quiet over thousands of overlapping evaluations, and it forgets the evidence of rows that left
its window. A CUSUM chart instead adds up, row by row, how much better "the data changed by this much" explains
each new row than "nothing changed" (a log-likelihood ratio), never below zero, and alarms when the sum reaches
the threshold `h`. Clean traffic reaches `h` about once in e^h rows per chart, so the false-alarm rate is fixed
per row, not per evaluation, and a change is caught after about h / (evidence per row) changed rows.

Charts per feature (each also has a `missing` chart for null values):
- numbers: each value becomes its normal score against the reference (its rank there, mapped through the normal
  quantile function, so skewed and integer features look alike); charts for a mean moved by 0.5 or 0.25
  standard deviations up or down, and for a spread 1.5 times wider or narrower;
- categories: per category, its share's odds up or down 1.5 times; a `new` chart for values the reference
  never had.
The score of a feature is its highest chart over `h` (1 or more: changed). A chart is capped just above `h`, so
once the change stops its score falls back under 1 within a few hundred rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtri

from lab_runtime.modeling.columns import CATEGORICAL_FEATURES, FEATURES

MEAN_SHIFTS = (0.5, 0.25)  # in standard deviations, largest first: on a tie the larger names the change
SCALES = (1.5, 1 / 1.5)
ODDS = 1.5  # a category's odds moved up or down this many times
RARE_SHARE = 0.02  # the `new` and `missing` charts look for this share of rows more than the reference has
CAP = 1.25  # a chart never exceeds CAP * h
MARGIN = 3.0  # standard errors of the reference's own estimate a chart gives clean traffic before it counts
ERROR_RISE = 0.06  # the quality chart looks for the error rate this much above the version's baseline


@dataclass(frozen=True)
class Change:
    """A feature's strongest chart: its score (its sum over h) and what it looks for."""

    feature: str
    score: float
    chart: str

    @property
    def changed(self) -> bool:
        return self.score >= 1.0


def _cusum(sums: np.ndarray, evidence: np.ndarray, cap: float) -> np.ndarray:
    """The charts `sums` after `evidence` (rows x charts, oldest row first): S = min(cap, max(0, S + llr)) row by
    row, every chart at once."""
    for row in evidence:
        sums = np.minimum(cap, np.maximum(0.0, sums + row))
    return sums


def _bernoulli(p0: np.ndarray, p1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per chart, the log-likelihood ratio of a row that is (x=1) or is not (x=0) the event."""
    return np.log(p1 / p0), np.log((1 - p1) / (1 - p0))


@dataclass(frozen=True)
class Reading:
    """What the charts say at one evaluation: each feature's change, and the quality chart's score (None before
    a labelled row of the serving version)."""

    changes: list[Change]
    quality: float | None = None
    threshold: float | None = None  # the feature charts' h


class _Numeric:
    """Normal scores of a numeric feature against its reference, and its mean, spread and missing charts."""

    def __init__(self, name: str, reference: pd.Series) -> None:
        self.name = name
        self.sorted = np.sort(reference.dropna().to_numpy(dtype=float))
        ref_z = self._raw(self.sorted)
        self.centre, self.spread = float(ref_z.mean()), float(ref_z.std()) or 1.0
        n = max(len(self.sorted), 1)
        # the reference's own error: its mean is off by about 1/sqrt(n) sd, its variance by sqrt(2/n) of itself
        self.mean_margin, self.var_margin = MARGIN / np.sqrt(n), MARGIN * np.sqrt(2 / n)
        self.charts = [f"mean up {d:g} sd" for d in MEAN_SHIFTS] + [f"mean down {d:g} sd" for d in MEAN_SHIFTS]
        self.charts += ["spread wider", "spread narrower", "missing values"]
        p0 = np.array([(reference.isna().sum() + 0.5) / (len(reference) + 1)])
        self.missing = _bernoulli(p0, p0 + RARE_SHARE)

    def _raw(self, values: np.ndarray) -> np.ndarray:
        n = len(self.sorted)
        below = np.searchsorted(self.sorted, values, side="left")
        ties = np.searchsorted(self.sorted, values, side="right") - below
        result: np.ndarray = ndtri((below + 0.5 * ties + 0.5) / (n + 1))
        return result

    def evidence(self, values: pd.Series) -> np.ndarray:
        """Rows x charts: each row's log-likelihood ratio for each chart."""
        raw = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)  # a value that is no number: a null
        missing = np.isnan(raw)
        z = (self._raw(np.where(missing, 0.0, raw)) - self.centre) / self.spread
        up, down = z - self.mean_margin, z + self.mean_margin
        columns = [d * up - d * d / 2 for d in MEAN_SHIFTS] + [-d * down - d * d / 2 for d in MEAN_SHIFTS]
        wider, narrower = z * z / (1 + self.var_margin), z * z / (1 - min(self.var_margin, 0.5))
        columns += [-np.log(s) + v / 2 * (1 - 1 / s**2) for s, v in zip(SCALES, (wider, narrower), strict=True)]
        out = np.column_stack(columns)
        out[missing] = 0.0  # a null row says nothing about the values
        hit, miss = self.missing
        return np.column_stack([out, np.where(missing, hit[0], miss[0])])


class _Categorical:
    """Per category of the reference, its share's odds up or down; a chart for new categories and one for nulls."""

    def __init__(self, name: str, reference: pd.Series) -> None:
        self.name = name
        counts = reference.dropna().astype(str).value_counts()
        self.categories = list(counts.index)
        n, k = len(reference), len(self.categories)
        p0 = (counts.to_numpy(dtype=float) + 0.5) / (n + 0.5 * k)
        odds = p0 / (1 - p0)
        up, down = odds * ODDS / (1 + odds * ODDS), odds / ODDS / (1 + odds / ODDS)
        # the reference's own error: a share estimated from n rows is off by about sqrt(p (1 - p) / n)
        se = MARGIN * np.sqrt(p0 * (1 - p0) / n)
        p0_up, p0_down = np.minimum(p0 + se, (p0 + up) / 2), np.maximum(p0 - se, (p0 + down) / 2)
        rare_new = np.array([0.5 / (n + 1)])
        rare_null = np.array([(reference.isna().sum() + 0.5) / (n + 1)])
        p0_all = np.concatenate([p0_up, p0_down, rare_new, rare_null])
        p1_all = np.concatenate([up, down, rare_new + RARE_SHARE, rare_null + RARE_SHARE])
        self.hit, self.miss = _bernoulli(p0_all, p1_all)
        self.charts = [f"more {c!r}" for c in self.categories] + [f"fewer {c!r}" for c in self.categories]
        self.charts += ["new categories", "missing values"]

    def evidence(self, values: pd.Series) -> np.ndarray:
        missing = values.isna().to_numpy()
        text = values.astype(str).to_numpy()
        is_cat = np.column_stack([text == c for c in self.categories]) & ~missing[:, None]
        new = ~missing & ~is_cat.any(axis=1)
        events = np.column_stack([is_cat, is_cat, new, missing])
        return np.where(events, self.hit, self.miss)


class ChangeDetector:
    """CUSUM charts for every feature against one reference set; `update` feeds new rows, oldest first."""

    def __init__(self, reference: pd.DataFrame, threshold: float) -> None:
        self.threshold = threshold
        self.features = [
            _Categorical(n, reference[n]) if n in CATEGORICAL_FEATURES else _Numeric(n, reference[n]) for n in FEATURES
        ]
        self.sizes = [len(f.charts) for f in self.features]
        self.sums = np.zeros(sum(self.sizes))
        self.rows = 0

    def update(self, rows: pd.DataFrame) -> None:
        """Add the evidence of `rows` (in arrival order) to every chart."""
        if rows.empty:
            return
        evidence = np.hstack([f.evidence(self._column(rows, f.name)) for f in self.features])
        self.sums = _cusum(self.sums, evidence, CAP * self.threshold)
        self.rows += len(rows)

    @staticmethod
    def _column(rows: pd.DataFrame, name: str) -> pd.Series:
        return rows[name] if name in rows else pd.Series([None] * len(rows), dtype=object)

    def reading(self, quality: float | None = None) -> Reading:
        """What the feature charts say now, with the quality chart's score."""
        return Reading(self.changes(), quality, self.threshold)

    def changes(self) -> list[Change]:
        """Each feature's strongest chart, in feature order."""
        out, start = [], 0
        for feature, size in zip(self.features, self.sizes, strict=True):
            charts = self.sums[start : start + size]
            best = int(np.argmax(charts))
            out.append(Change(feature.name, float(charts[best]) / self.threshold, feature.charts[best]))
            start += size
        return out


class QualityChart:
    """A CUSUM on the serving version's mistakes on labelled rows, in the order their labels arrive, against its
    error rate on the reference set: it sees a fall in accuracy as soon as enough labels say so, where a window's
    accuracy must cross a fixed floor. A new version starts a new chart."""

    def __init__(self, threshold: float, reference_rows: int) -> None:
        self.threshold, self.reference_rows = threshold, reference_rows
        self.version: str | None = None
        self.total = 0.0
        self.rows = 0

    def update(self, version: str, accuracy: float, labelled: pd.DataFrame) -> None:
        """Add the evidence of `labelled` rows (prediction, label, model_version) of `version`, whose accuracy on the
        reference set is `accuracy`."""
        if version != self.version:
            self.version, self.total, self.rows = version, 0.0, 0
        rows = labelled[labelled["model_version"] == version]
        if rows.empty:
            return
        p0 = min(max(1.0 - accuracy, 0.005), 0.9)
        p0 += MARGIN * np.sqrt(p0 * (1 - p0) / self.reference_rows)  # the baseline's own error
        (hit,), (miss,) = _bernoulli(np.array([p0]), np.array([min(p0 + ERROR_RISE, 0.99)]))
        wrong = (rows["prediction"].to_numpy() != rows["label"].to_numpy()).astype(float)
        evidence = (wrong * hit + (1 - wrong) * miss)[:, None]
        self.total = float(_cusum(np.array([self.total]), evidence, CAP * self.threshold)[0])
        self.rows += len(rows)

    @property
    def score(self) -> float | None:
        return self.total / self.threshold if self.rows else None
