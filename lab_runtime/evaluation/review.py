"""The human review of an evaluation (pure): which test rows go to people, and how well the people did.

The queue is a seeded sample of the rows where the candidate and the version it was compared with decide
differently, or where the candidate is unsure (its probability within `UNSURE_MARGIN` of one of the policy's
thresholds): up to half each, the rest from the other pool when one runs short. A reviewer's label is judged
against the truth: approve is right when the applicant repaid (label 0), decline when they defaulted (1); refer
is neither right nor wrong. Two reviewers who labelled the same items get Cohen's kappa on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np

from lab_runtime.evaluation.stats import cohens_kappa

QUEUE_SIZE = 20
UNSURE_MARGIN = 0.05
MIN_VERDICT_LABELS = 10  # items of the queue labelled before a review verdict (the whole queue when smaller)
LABELS = ("approve", "decline", "refer")
TRUTH_OF = {"approve": 0, "decline": 1}  # the label that makes a reviewer's decision right
DISAGREE, UNSURE = "disagree", "unsure"


@dataclass(frozen=True)
class Pick:
    row: int  # the test set's row
    why: str  # "disagree", "unsure" or "disagree, unsure"


def unsure(proba: np.ndarray, thresholds: Sequence[float], margin: float = UNSURE_MARGIN) -> np.ndarray:
    """Whether each probability is within `margin` of one of `thresholds`."""
    near = np.zeros(len(proba), dtype=bool)
    for t in thresholds:
        near |= np.abs(proba - t) <= margin
    return near


def select_queue(
    decisions: Sequence[str],
    proba: np.ndarray,
    others: Sequence[str] | None,
    thresholds: Sequence[float],
    *,
    seed: int | Sequence[int],
    size: int = QUEUE_SIZE,
) -> list[Pick]:
    """The rows to review, by row: the candidate's `decisions` and probabilities `proba`, the compared version's
    decisions `others` (None: no comparison, so only unsure rows); the same arguments give the same rows."""
    if others is None:
        split = np.zeros(len(decisions), dtype=bool)
    else:
        split = np.array([a != b for a, b in zip(decisions, others, strict=True)], dtype=bool)
    near = unsure(proba, thresholds)
    disagreeing, only_unsure = np.flatnonzero(split), np.flatnonzero(near & ~split)
    take = min(len(disagreeing), max(size - len(only_unsure), size // 2))
    rest = min(len(only_unsure), size - take)
    rng = np.random.default_rng(seed)
    rows = [*rng.choice(disagreeing, take, replace=False), *rng.choice(only_unsure, rest, replace=False)]
    return [
        Pick(int(r), ", ".join(w for w, on in ((DISAGREE, split[r]), (UNSURE, near[r])) if on)) for r in sorted(rows)
    ]


@dataclass(frozen=True)
class Item:
    """A queued row: what a reviewer sees (features, both versions' decisions) and the truth they do not."""

    id: int
    version: str
    test_set: str
    row: int
    features: dict[str, Any]
    truth: int  # 0 repaid, 1 defaulted
    probability: float  # the candidate's
    decision: str
    against: str | None  # the version compared (None: none)
    against_probability: float | None
    against_decision: str | None
    why: str


@dataclass(frozen=True)
class Label:
    item: int
    reviewer: str
    label: str
    note: str
    at: float


@dataclass(frozen=True)
class ReviewVerdict:
    version: str
    reviewer: str
    verdict: str
    note: str
    labels: int  # items of the queue labelled when it was given
    at: float


def right(label: str, truth: int) -> bool | None:
    """Whether a reviewer's label matches the truth; None for refer (neither)."""
    return None if label not in TRUTH_OF else TRUTH_OF[label] == truth


@dataclass(frozen=True)
class ReviewerFigures:
    reviewer: str
    labelled: int
    counts: dict[str, int]  # approve, decline, refer
    accuracy: float | None  # right among approvals and declines (None: none yet)
    agreement: float | None  # labels equal to the candidate's decision, among all labels


@dataclass(frozen=True)
class PairAgreement:
    reviewers: tuple[str, str]
    items: int  # labelled by both
    kappa: float | None


@dataclass(frozen=True)
class ReviewSummary:
    version: str
    queue: int  # items in the queue
    labelled: int  # items labelled by at least one reviewer
    reviewers: list[ReviewerFigures] = field(default_factory=list)
    pairs: list[PairAgreement] = field(default_factory=list)
    verdict: ReviewVerdict | None = None


def reviewer_figures(reviewer: str, items: dict[int, Item], labels: Iterable[Label]) -> ReviewerFigures:
    """One reviewer's labels of `items`: how many, of which kind, how right, and how often as the model decided."""
    mine = [lab for lab in labels if lab.reviewer == reviewer and lab.item in items]
    judged = [ok for lab in mine if (ok := right(lab.label, items[lab.item].truth)) is not None]
    agreed = [lab.label == items[lab.item].decision for lab in mine]
    return ReviewerFigures(
        reviewer=reviewer,
        labelled=len(mine),
        counts={name: sum(lab.label == name for lab in mine) for name in LABELS},
        accuracy=sum(judged) / len(judged) if judged else None,
        agreement=sum(agreed) / len(agreed) if agreed else None,
    )


def summarize(
    version: str, items: Sequence[Item], labels: Sequence[Label], verdict: ReviewVerdict | None = None
) -> ReviewSummary:
    """The review of `version`'s queue so far: per reviewer, and kappa for each pair who labelled common items."""
    by_id = {item.id: item for item in items}
    labels = [lab for lab in labels if lab.item in by_id]
    reviewers = sorted({lab.reviewer for lab in labels})
    given = {(lab.reviewer, lab.item): lab.label for lab in labels}
    pairs = []
    for a, b in combinations(reviewers, 2):
        common = sorted(i for (r, i) in given if r == a and (b, i) in given)
        kappa = cohens_kappa([given[(a, i)] for i in common], [given[(b, i)] for i in common])
        pairs.append(PairAgreement((a, b), len(common), kappa))
    return ReviewSummary(
        version=version,
        queue=len(items),
        labelled=len({lab.item for lab in labels}),
        reviewers=[reviewer_figures(r, by_id, labels) for r in reviewers],
        pairs=pairs,
        verdict=verdict,
    )


def verdict_refusal(summary: ReviewSummary) -> str | None:
    """Why the review of `summary` cannot give a verdict yet (too few items labelled), or None."""
    needed = min(MIN_VERDICT_LABELS, summary.queue)
    if summary.queue == 0:
        return f"the review queue of version {summary.version} is empty: there is nothing to review"
    if summary.labelled < needed:
        return (
            f"only {summary.labelled} of the {summary.queue} items of version {summary.version}'s review queue are "
            f"labelled; a verdict needs at least {needed} (`lab review next`)"
        )
    return None
