"""A gradebook an LMS can import: one row per learner, one numeric column per lab and per assessment. Pure."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from statistics import fmean

from grader.results import Bundle

FIXED = ("learner", "labs_completed", "drill_runs", "drills_remediated", "mean_drill_score", "capstone")


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def gradebook_csv(bundles: Sequence[Bundle], labs: Sequence[str]) -> str:
    """The gradebook of `bundles` (one per learner) with a column per lab of `labs` (the share of its steps passed,
    0 to 100; empty when the learner never started it); the capstone's score when one finished."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*FIXED, *labs])
    for b in sorted(bundles, key=lambda x: x.learner):
        runs = [r for r in b.runs if r.finished]
        done = {lab.lab: lab for lab in b.labs}
        cap = b.scored_capstone
        writer.writerow(
            [
                b.learner,
                sum(lab.completed for lab in b.labs),
                len(runs),
                sum(r.ttr is not None for r in runs),
                _number(round(fmean(r.score for r in runs), 1) if runs else None),
                _number(float(cap["score"]) if cap else None),
                *(
                    _number(round(100 * done[lab].passed / max(done[lab].total, 1), 1) if lab in done else None)
                    for lab in labs
                ),
            ]
        )
    return buffer.getvalue()
