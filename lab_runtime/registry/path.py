"""The promotion path, staging -> shadow -> canary -> production, and the evidence each move needs.

A version carries its evidence as registry tags (`EVAL_*` written by `lab eval run`, `REVIEW_*` by `lab review
verdict`), so every runtime and the MLflow UI see the same record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lab_runtime.canary.judge import AnalysisSpec, Thresholds, VariantStats, check
from lab_runtime.events import (
    ALIAS_CHANGED,
    CANARY_ABORT,
    CANARY_PROMOTE,
    CANARY_START,
    EVAL_RUN,
    LEARNER_ACTION,
    PROMOTE,
    RETRAIN,
    REVIEW_VERDICT,
    ROLLBACK,
    SHADOW_START,
    SHADOW_STOP,
    STAGE,
)
from lab_runtime.journal import Event
from lab_runtime.registry.alias_history import OUTSIDE

# Tags an evaluation writes on the version it scored.
EVAL_VERDICT_TAG = "lab.eval.verdict"  # "go" or "no-go"
EVAL_REASONS_TAG = "lab.eval.reasons"  # why, one line ("" for a clean go)
EVAL_AT_TAG = "lab.eval.at"  # when it ran (epoch seconds)
EVAL_AGAINST_TAG = "lab.eval.against"  # the version it was compared with ("" for none)
EVAL_TEST_SET_TAG = "lab.eval.test_set"  # the test set's name and version, e.g. "credit-v1"
EVAL_REPORT_TAG = "lab.eval.report"  # the HTML report's path
# Tags a human review writes on the version.
REVIEW_VERDICT_TAG = "lab.review.verdict"  # "go" or "no-go"
REVIEW_LABELS_TAG = "lab.review.labels"  # how many rows were labelled
REVIEW_AT_TAG = "lab.review.at"
GO, NO_GO = "go", "no-go"

# The production gate: a canary promoted by hand needs this much live evidence (`lab canary analyze` judges its own).
PRODUCTION_GATE = AnalysisSpec(min_requests=100, thresholds=Thresholds(min_labels=100))
SLOWER = 1.5  # the challenger's p99 may reach this many times the champion's (on a loaded machine both are slow)


def evaluation_refusal(
    version: str, tags: Mapping[str, str], champion: str | None, *, require_review: bool
) -> str | None:
    """Why `version` may not enter the canary (no evaluation against the `champion` now, a no-go, a missing
    review), or None."""
    verdict = tags.get(EVAL_VERDICT_TAG)
    if verdict is None:
        return f"version {version} has no evaluation; a canary needs one (`lab eval run {version}`)"
    against = tags.get(EVAL_AGAINST_TAG) or None
    if against != champion:
        return (
            f"the evaluation of version {version} compared it with version {against}, not with the champion now "
            f"(version {champion}); evaluate it again (`lab eval run {version}`)"
        )
    if verdict != GO:
        why = tags.get(EVAL_REASONS_TAG) or "see its report"
        return f"the evaluation of version {version} says {verdict}: {why}"
    if require_review:
        review = tags.get(REVIEW_VERDICT_TAG)
        if review is None:
            return (
                f"this lab needs a human review of version {version} before its canary "
                "(`lab review next`, `lab review label`, then `lab review verdict`)"
            )
        if review != GO:
            return f"the human review of version {version} says {review}"
    return None


def analysis_refusal(champion: VariantStats, challenger: VariantStats) -> str | None:
    """Why the canary may not go to production on these live figures (too little evidence, or worse than the
    champion: errors, accuracy, or a p99 over the analysis's limit and `SLOWER` times the champion's), or None."""
    limits = PRODUCTION_GATE.thresholds
    if limits.max_latency_p99_ms is not None and champion.latency_p99_ms is not None:
        p99 = max(limits.max_latency_p99_ms, SLOWER * champion.latency_p99_ms)
        limits = limits.model_copy(update={"max_latency_p99_ms": round(p99)})
    failed, _ = check(PRODUCTION_GATE.model_copy(update={"thresholds": limits}), champion, challenger)
    if failed:
        return f"the canary analysis of version {challenger.version} does not pass: {'; '.join(failed)}"
    needed = PRODUCTION_GATE.thresholds.min_labels
    if challenger.accuracy is None or champion.accuracy is None:
        fewest = min(challenger.labelled, champion.labelled)
        return (
            f"the canary analysis of version {challenger.version} cannot judge accuracy yet: {fewest} labelled calls "
            f"of the {needed} each variant needs"
        )
    return None


@dataclass(frozen=True)
class Milestone:
    """One move of a version along the path, as `lab model history --version` shows it."""

    ts: float
    stage: str  # registered, staging, shadow, evaluation, review, canary, production, ...
    what: str
    learner: str | None


def _action_milestone(p: Mapping[str, Any]) -> tuple[str, str] | None:
    action, forced = p.get("action"), " (forced)" if p.get("forced") else ""
    if action == RETRAIN:
        return "registered", "retrained on recent traffic" + (" and promoted" if p.get("promoted") else "")
    if action == STAGE:
        return "staging", f"staged{forced}"
    if action == SHADOW_START:
        return "shadow", f"shadow started on {float(p.get('share', 0)):.0%} of the requests"
    if action == SHADOW_STOP:
        return "shadow", "shadow stopped" + (f": the run says {p['verdict']}" if p.get("verdict") else "")
    if action == EVAL_RUN:
        against = f" against version {p['against']}" if p.get("against") else ""
        return "evaluation", f"evaluated{against}: {p.get('verdict')}"
    if action == REVIEW_VERDICT:
        return "review", f"human review: {p.get('verdict')}"
    if action == CANARY_START:
        return "canary", f"canary started at {float(p.get('weight', 0)):.0%}{forced}"
    if action == CANARY_PROMOTE:
        return "production", f"canary promoted to @champion{forced}"
    if action == CANARY_ABORT:
        return "canary", "canary aborted"
    if action == PROMOTE:
        return "production", f"promoted to @{p.get('alias')} directly, outside the canary{forced}"
    return None


def version_path(events: Iterable[Event], version: str, model: str) -> list[Milestone]:
    """The path `version` took, oldest first: the learner's moves on it and the alias changes that name it."""
    path: list[Milestone] = []
    for event in events:
        p: Mapping[str, Any] = event.payload
        if event.kind == LEARNER_ACTION and p.get("version") == version:
            found = _action_milestone(p)
            if found:
                path.append(Milestone(event.ts, *found, event.learner))
        elif event.kind == LEARNER_ACTION and p.get("action") == ROLLBACK and version in (p.get("from"), p.get("to")):
            what = "rolled back from @champion" if p.get("from") == version else "back as @champion by a rollback"
            path.append(Milestone(event.ts, "production", what, event.learner))
        elif event.kind == ALIAS_CHANGED and p.get("model") == model and version in (p.get("before"), p.get("after")):
            via = str(p.get("via") or OUTSIDE)
            if via.startswith("lab "):
                continue  # a lab command's move is told by its action above
            verb = "took" if p.get("after") == version else "left"
            path.append(Milestone(event.ts, p["alias"], f"{verb} @{p['alias']} ({via})", p.get("requested_by")))
    return path
