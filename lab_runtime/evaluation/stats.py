"""Statistics of an evaluation (pure): paired bootstrap intervals of a metric's difference between two versions
scored on the same rows, and Cohen's kappa between two reviewers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from lab_runtime.modeling.model import THRESHOLD

METRICS = ("accuracy", "f1", "roc_auc")
RESAMPLES = 1_000  # resamples of the rows per interval
LEVEL = 0.95  # the intervals' confidence level (percentile intervals)
_CHUNK = 200  # resamples drawn at once: bounds the memory (200 x rows x 8 bytes per array)


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def _metric(name: str, y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """`name` per row of `y` and `proba` (each row a resample); NaN where it is undefined (AUC of one class)."""
    predicted = proba >= THRESHOLD
    if name == "accuracy":
        return np.asarray((predicted == (y == 1)).mean(axis=1))
    positive = y == 1
    if name == "f1":
        tp = (predicted & positive).sum(axis=1)
        wrong = (predicted != positive).sum(axis=1)  # false positives and false negatives
        f1: np.ndarray = np.divide(2 * tp, 2 * tp + wrong, out=np.zeros(len(y)), where=(2 * tp + wrong) > 0)
        return f1
    if name == "roc_auc":  # Mann-Whitney: the chance a defaulter is ranked above a payer (ties count half)
        ranks = rankdata(proba, axis=1)
        n_pos = positive.sum(axis=1).astype(float)
        n_neg = y.shape[1] - n_pos
        rank_sum = (ranks * positive).sum(axis=1) - n_pos * (n_pos + 1) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where((n_pos > 0) & (n_neg > 0), rank_sum / (n_pos * n_neg), np.nan)
    raise ValueError(f"unknown metric {name!r}; metrics: {', '.join(METRICS)}")


def paired_bootstrap(
    y: Sequence[int] | np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    *,
    seed: int | Sequence[int],
    metrics: Sequence[str] = METRICS,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> dict[str, Interval | None]:
    """Percentile intervals of metric(a) - metric(b), probabilities of default `a` and `b` scored against labels
    `y`, over `resamples` resamples of the rows drawn with replacement; both versions are scored on the same
    resampled rows (paired), so what the rows share cancels out. None for a metric no resample defines."""
    labels = np.asarray(y, dtype=int)
    if len(labels) == 0:
        return dict.fromkeys(metrics)
    rng = np.random.default_rng(seed)
    diffs: dict[str, list[np.ndarray]] = {m: [] for m in metrics}
    for start in range(0, resamples, _CHUNK):
        rows = rng.integers(0, len(labels), size=(min(_CHUNK, resamples - start), len(labels)))
        sample = labels[rows]
        for name in metrics:
            diffs[name].append(_metric(name, sample, a[rows]) - _metric(name, sample, b[rows]))
    tail = (1 - level) / 2 * 100
    intervals: dict[str, Interval | None] = {}
    for name, parts in diffs.items():
        values = np.concatenate(parts)
        values = values[~np.isnan(values)]
        low, high = np.percentile(values, [tail, 100 - tail]) if len(values) else (None, None)
        intervals[name] = None if low is None or high is None else Interval(float(low), float(high))
    return intervals


def cohens_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters' labels of the same items (`a[i]` and `b[i]` label item i): their agreement
    beyond what their own label shares would give by chance, (p_o - p_e) / (1 - p_e). None without items, or when
    chance agreement is certain (both gave every item the same one label)."""
    if len(a) != len(b):
        raise ValueError(f"two raters label the same items: {len(a)} labels against {len(b)}")
    if not a:
        return None
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    expected = sum((list(a).count(c) / n) * (list(b).count(c) / n) for c in set(a) | set(b))
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)
