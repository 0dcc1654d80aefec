"""A cohort's skill check, before and after the course: each learner's baseline paired with their final (MTTD,
MTTR, score), and per figure the mean change with a bootstrap confidence interval, a paired Wilcoxon signed-rank
test and the share of learners who improved. A learner with one form only is listed, never dropped. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.results import Bundle

FIGURES = ("mttd", "mttr", "score")
LOWER_IS_BETTER = {"mttd": True, "mttr": True, "score": False}
RESAMPLES = 2_000
LEVEL = 0.95


@dataclass(frozen=True)
class Pair:
    learner: str
    before: dict[str, float | None]  # figure -> the baseline's value
    after: dict[str, float | None]


@dataclass(frozen=True)
class Change:
    """One figure over the learners who have both forms with a value for it."""

    figure: str
    pairs: int
    before: float | None  # means
    after: float | None
    change: float | None  # mean of after - before
    interval: tuple[float, float] | None  # its bootstrap confidence interval (LEVEL)
    p_value: float | None  # Wilcoxon signed-rank, two-sided (None below 2 pairs)
    improved: float | None  # share of the pairs that improved (a lower time, a higher score)


@dataclass(frozen=True)
class BeforeAfter:
    pairs: tuple[Pair, ...]
    changes: tuple[Change, ...]
    baseline_only: tuple[str, ...]  # learners who have no final yet
    final_only: tuple[str, ...]  # learners who had no baseline
    incomplete: tuple[str, ...] = ()  # learners with a form that ended incomplete (aborted, a drill never ran)


def _figures(form: Mapping[str, Any] | None) -> dict[str, float | None] | None:
    """A complete form's figures, or None (not taken, still running, or incomplete)."""
    if not form or not form.get("finished") or not form.get("complete"):
        return None
    return {f: None if form.get(f) is None else float(form[f]) for f in FIGURES}


def _interval(diffs: np.ndarray, seed: int) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, len(diffs), size=(RESAMPLES, len(diffs)))].mean(axis=1)
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return round(float(low), 3), round(float(high), 3)


def _wilcoxon(diffs: np.ndarray) -> float | None:
    if len(diffs) < 2:
        return None
    if not np.any(diffs):
        return 1.0  # no learner changed at all
    from scipy.stats import wilcoxon

    return round(float(wilcoxon(diffs, zero_method="wilcox", alternative="two-sided").pvalue), 4)


def change(figure: str, pairs: Sequence[Pair], seed: int = 0) -> Change:
    both = [(p.before[figure], p.after[figure]) for p in pairs]
    values = np.array([(b, a) for b, a in both if b is not None and a is not None], dtype=float).reshape(-1, 2)
    if len(values) == 0:
        return Change(figure, 0, None, None, None, None, None, None)
    diffs = values[:, 1] - values[:, 0]
    better = diffs < 0 if LOWER_IS_BETTER[figure] else diffs > 0
    return Change(
        figure,
        len(values),
        round(float(values[:, 0].mean()), 3),
        round(float(values[:, 1].mean()), 3),
        round(float(diffs.mean()), 3),
        _interval(diffs, seed),
        _wilcoxon(diffs),
        round(float(better.mean()), 4),
    )


def before_after(bundles: Sequence[Bundle]) -> BeforeAfter | None:
    """The cohort's learners' pairs and changes (one bundle per learner); None when no learner took a form."""
    return pair_forms({b.learner: b.assessments for b in bundles})


def team_before_after(bundles: Sequence[Bundle]) -> BeforeAfter | None:
    """The same for the teams the learners took the skill check with: each team once, each of its forms from the
    latest export that holds it finished (else the latest that holds it at all)."""
    merged: dict[str, dict[str, dict[str, Any]]] = {}
    for b in sorted(bundles, key=lambda x: x.exported_at):
        for team, forms in b.team_assessments.items():
            held = merged.setdefault(team, {})
            for form, summary in forms.items():
                if form not in held or summary.get("finished") or not held[form].get("finished"):
                    held[form] = summary
    return pair_forms(merged)


def pair_forms(held: Mapping[str, Mapping[str, dict[str, Any]]]) -> BeforeAfter | None:
    """Baselines paired with finals of `held` (name -> form -> summary); None when nobody took a form."""
    forms = {name: {k: _figures(f.get(k)) for k in ("baseline", "final")} for name, f in held.items()}
    taken = {name: f for name, f in forms.items() if f["baseline"] is not None or f["final"] is not None}
    incomplete = tuple(
        sorted(name for name, f in held.items() if any(v.get("finished") and not v.get("complete") for v in f.values()))
    )
    if not taken and not incomplete:
        return None
    pairs = tuple(
        Pair(name, f["baseline"], f["final"])
        for name, f in sorted(taken.items())
        if f["baseline"] is not None and f["final"] is not None
    )
    return BeforeAfter(
        pairs,
        tuple(change(figure, pairs) for figure in FIGURES),
        tuple(sorted(n for n, f in taken.items() if f["final"] is None)),
        tuple(sorted(n for n, f in taken.items() if f["baseline"] is None)),
        incomplete,
    )
