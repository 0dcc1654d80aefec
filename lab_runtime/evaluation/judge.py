"""A candidate version judged against another on the same rows (pure): overall figures with paired bootstrap
intervals, per-slice accuracy with a regression flag, output-policy violations, and the verdict with its reasons.

A slice is flagged when its accuracy falls by more than `SLICE_MAX_DROP` (five points: the intervals of slices of
a few hundred rows are a few points wide, so a smaller drop says little) and its 95 % interval lies wholly below 0,
on at least `MIN_SLICE_ROWS` rows. The verdict is no-go when the overall accuracy falls by more than the
promotion gate's `MAX_DROP`, when any slice is flagged, or when the candidate breaks the output policy more often
than the version it is compared with by over `MAX_EXTRA_VIOLATIONS` of the rows (half a point: the unsafe-output
alert fires at 2 %). Without a version to compare with, only the figures are given: go.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel

from lab_runtime.evaluation.slices import Slice
from lab_runtime.evaluation.stats import LEVEL, METRICS, paired_bootstrap
from lab_runtime.modeling.model import THRESHOLD, scores
from lab_runtime.registry.path import GO, NO_GO
from lab_runtime.service.policy import Policy

MAX_DROP = 0.02  # overall accuracy: the promotion gate's default (`lab model promote --max-drop`)
SLICE_MAX_DROP = 0.05  # a slice's accuracy drop beyond which (interval excluding 0) it is flagged
MIN_SLICE_ROWS = 30  # a smaller slice is shown, never flagged
MAX_EXTRA_VIOLATIONS = 0.005  # policy-breaking decisions beyond the compared version's, as a share of the rows


class Figure(BaseModel):
    """One metric of the candidate and of the version compared, their difference and its interval."""

    metric: str
    candidate: float | None
    against: float | None = None
    difference: float | None = None  # candidate - against: below 0, the candidate is worse
    low: float | None = None
    high: float | None = None


class SliceFigure(BaseModel):
    name: str
    feature: str
    rows: int
    candidate: float | None  # accuracy
    against: float | None = None
    difference: float | None = None
    low: float | None = None
    high: float | None = None
    flagged: bool = False


class Violations(BaseModel):
    """A version's decisions on the test set under the output policy, and the rules they break."""

    version: str
    decisions: dict[str, int]  # approve, refer, decline: how many
    rows: int  # decisions that break at least one rule
    by_rule: dict[str, int]  # rule id: decisions that break it


class Judgement(BaseModel):
    overall: list[Figure]
    slices: list[SliceFigure]
    violations: list[Violations]  # the candidate's, then the compared version's
    verdict: str
    reasons: list[str]  # why no-go, one line each (none for a go)


class Evaluation(Judgement):
    """One evaluation as recorded (`eval-<version>.json` beside its report) and reported."""

    model: str
    version: str
    against: str | None  # the version compared with (None: none)
    against_how: str  # why that one: "@champion", "given", or why there is none
    test_set: str
    rows: int
    at: float  # when the command that ran it started
    policy: str  # "built-in", or the learner's policy file
    run_id: str  # the version's source run, where MLflow's evaluation is logged
    mlflow_metrics: dict[str, float]
    mlflow_artifacts: list[str]
    queue: int  # rows in its review queue
    recorded: bool = True  # the version's record (full, against @champion); False: a partial one, no tags
    report: str


@dataclass(frozen=True)
class Scored:
    """A version's probabilities of default on the test set's rows."""

    version: str
    proba: np.ndarray


def decide(policy: Policy, proba: np.ndarray) -> list[str]:
    """The decision the policy makes of each probability."""
    return [policy.decide(float(p)) for p in proba]


def count_violations(policy: Policy, version: str, records: Sequence[dict[str, Any]], decided: list[str]) -> Violations:
    """How many of `decided` (one per row of `records`) break the policy's rules, in all and by rule."""
    by_rule = {rule.id: 0 for rule in policy.never}
    rows = 0
    for features, decision in zip(records, decided, strict=True):
        broken = policy.violations(decision, features)
        rows += bool(broken)
        for rule in broken:
            by_rule[rule] += 1
    counts = {d: decided.count(d) for d in ("approve", "refer", "decline")}
    return Violations(version=version, decisions=counts, rows=rows, by_rule=by_rule)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def overall(y: np.ndarray, candidate: Scored, against: Scored | None, seed: int) -> list[Figure]:
    """Accuracy, F1 and AUC of each version, the difference and its paired bootstrap interval."""
    mine = scores(y, candidate.proba)
    if against is None:
        return [Figure(metric=m, candidate=_rounded(mine.get(m))) for m in METRICS]
    theirs = scores(y, against.proba)
    intervals = paired_bootstrap(y, candidate.proba, against.proba, seed=[seed, 0])
    figures = []
    for m in METRICS:
        a, b, ci = mine.get(m), theirs.get(m), intervals[m]
        figures.append(
            Figure(
                metric=m,
                candidate=_rounded(a),
                against=_rounded(b),
                difference=None if a is None or b is None else _rounded(a - b),
                low=None if ci is None else _rounded(ci.low),
                high=None if ci is None else _rounded(ci.high),
            )
        )
    return figures


def slice_figures(
    y: np.ndarray, frame: pd.DataFrame, slices: Sequence[Slice], candidate: Scored, against: Scored | None, seed: int
) -> list[SliceFigure]:
    """Each slice's accuracy for both versions, the difference with its interval, and whether it is flagged."""
    correct = (candidate.proba >= THRESHOLD) == (y == 1)
    theirs = None if against is None else (against.proba >= THRESHOLD) == (y == 1)
    figures = []
    for i, piece in enumerate(slices, start=1):
        rows = piece.mask(frame)
        n = int(rows.sum())
        accuracy = float(correct[rows].mean()) if n else None
        figure = SliceFigure(name=piece.name, feature=piece.feature, rows=n, candidate=_rounded(accuracy))
        if against is not None and theirs is not None and n:
            other = float(theirs[rows].mean())
            pair = (candidate.proba[rows], against.proba[rows])
            ci = paired_bootstrap(y[rows], *pair, seed=[seed, i], metrics=("accuracy",))["accuracy"]
            difference = (accuracy or 0.0) - other
            figure = figure.model_copy(
                update={
                    "against": _rounded(other),
                    "difference": _rounded(difference),
                    "low": None if ci is None else _rounded(ci.low),
                    "high": None if ci is None else _rounded(ci.high),
                    "flagged": n >= MIN_SLICE_ROWS and difference < -SLICE_MAX_DROP and ci is not None and ci.high < 0,
                }
            )
        figures.append(figure)
    return figures


def verdict(
    figures: Sequence[Figure], slices: Sequence[SliceFigure], violations: Sequence[Violations], against: str | None
) -> tuple[str, list[str]]:
    """Go or no-go, and each reason for a no-go in a line."""
    if against is None:
        return GO, []
    reasons = []
    accuracy = next(f for f in figures if f.metric == "accuracy")
    if accuracy.difference is not None and -accuracy.difference > MAX_DROP:
        reasons.append(
            f"accuracy {accuracy.candidate:.3f} against version {against}'s {accuracy.against:.3f}: "
            f"{-accuracy.difference:.3f} lower, more than the {MAX_DROP:g} the promotion gate allows"
        )
    for s in slices:
        if s.flagged:
            reasons.append(
                f"slice {s.name}: accuracy {s.candidate:.3f} against {s.against:.3f} "
                f"({s.difference:+.3f}, {LEVEL:.0%} CI {s.low:+.3f} to {s.high:+.3f}, {s.rows} rows)"
            )
    mine, theirs = violations[0], violations[1]
    total = sum(mine.decisions.values())
    if mine.rows - theirs.rows > MAX_EXTRA_VIOLATIONS * total:
        reasons.append(
            f"{mine.rows} decisions against the output policy, version {against}'s {theirs.rows} "
            f"(more than {MAX_EXTRA_VIOLATIONS:.1%} of the {total} rows apart)"
        )
    return (NO_GO if reasons else GO), reasons


def judge(
    frame: pd.DataFrame,
    y: np.ndarray,
    candidate: Scored,
    against: Scored | None,
    *,
    slices: Sequence[Slice],
    policy: Policy,
    seed: int,
) -> Judgement:
    """The whole comparison of `candidate` with `against` (None: no comparison) on the rows of `frame` (features)
    labelled `y`; every interval seeded from `seed`."""
    records = frame.to_dict("records")
    scored = [candidate] + ([against] if against is not None else [])
    counts = [count_violations(policy, s.version, records, decide(policy, s.proba)) for s in scored]
    figures = overall(y, candidate, against, seed)
    pieces = slice_figures(y, frame, slices, candidate, against, seed)
    result, reasons = verdict(figures, pieces, counts, None if against is None else against.version)
    return Judgement(overall=figures, slices=pieces, violations=counts, verdict=result, reasons=reasons)
