"""Drift statistics: two-sample tests per feature, with a multiple-testing correction.

Testing a dozen features at p < 0.05 on every evaluation flags something by chance. Each feature here is
tested at `alpha / m` (Bonferroni over the m features tested), so the chance that a clean window flags any
feature is at most `alpha`. Numbers get the two-sample K-S test (scipy's `ks_2samp`, the very call behind
Evidently's "ks"). Categories get a contingency chi-square of the reference's counts against the window's: both
are samples, whereas Evidently's chi-square takes the reference's shares as exact and, once the window is as large
as the reference, flags clean traffic several times as often as its threshold says. Nulls and categories the
reference never saw are also measured as shares. Evidently itself is loaded only to render a report (`report`),
which registers the contingency test with it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency, ks_2samp

from lab_runtime.modeling.columns import CATEGORICAL_FEATURES, FEATURES

KS, CHI_SQUARE = "ks", "chisquare_contingency"
MIN_TESTED = 30  # fewer non-null values than this: the feature is not tested


@dataclass(frozen=True)
class FeatureDrift:
    name: str
    test: str
    p_value: float | None  # None: not tested (too few non-null values)
    threshold: float
    drifted: bool
    missing_share: float
    new_category_share: float | None  # categorical features only


@dataclass(frozen=True)
class DriftResult:
    features: list[FeatureDrift]
    alpha: float
    threshold: float  # per-feature p-value threshold: alpha / features tested

    @property
    def drifted(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    @property
    def tested(self) -> int:
        return sum(f.p_value is not None for f in self.features)


def contingency_p_value(reference: pd.Series, current: pd.Series) -> float:
    """The chi-square p-value of the 2 x k table of the two samples' category counts (nulls dropped)."""
    counts = pd.concat([reference.astype(str).value_counts(), current.astype(str).value_counts()], axis=1)
    table = counts.fillna(0).to_numpy().T
    if table.shape[1] < 2:  # one category on both sides: nothing to compare
        return 1.0
    return float(chi2_contingency(table, correction=False).pvalue)


def p_value(reference: pd.Series, current: pd.Series, categorical: bool) -> float:
    """The contingency chi-square (categories) or K-S (numbers) p-value of two samples without nulls."""
    if categorical:
        return contingency_p_value(reference, current)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        score = float(ks_2samp(reference, current).pvalue)
    return 0.0 if np.isnan(score) else score


def detect(reference: pd.DataFrame, current: pd.DataFrame, alpha: float) -> DriftResult:
    """Test every feature of `current` against `reference` at the corrected threshold."""
    measured: list[tuple[str, str, float | None, float, float | None]] = []
    for name in FEATURES:
        categorical = name in CATEGORICAL_FEATURES
        column = current[name] if name in current else pd.Series([None] * len(current), dtype=object)
        present = column.dropna()
        missing = 1.0 - len(present) / len(column) if len(column) else 0.0
        new_share = None
        if categorical:
            seen = set(reference[name].dropna().unique())
            new_share = float((~present.isin(seen)).sum() / len(column)) if len(column) else 0.0
        p = p_value(reference[name].dropna(), present, categorical) if len(present) >= MIN_TESTED else None
        measured.append((name, CHI_SQUARE if categorical else KS, p, missing, new_share))
    tested = sum(m[2] is not None for m in measured)
    threshold = alpha / max(tested, 1)
    features = [
        FeatureDrift(name, test, p, threshold, p is not None and p < threshold, missing, new_share)
        for name, test, p, missing, new_share in measured
    ]
    return DriftResult(features, alpha, threshold)
