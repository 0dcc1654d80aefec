"""The promotion path's gates and a version's path, judged from tags, live figures and journal events (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from lab_runtime.canary.judge import VariantStats
from lab_runtime.events import ALIAS_CHANGED, LEARNER_ACTION
from lab_runtime.journal import Event
from lab_runtime.registry.alias_history import OUTSIDE
from lab_runtime.registry.path import (
    EVAL_AGAINST_TAG,
    EVAL_REASONS_TAG,
    EVAL_VERDICT_TAG,
    GO,
    NO_GO,
    REVIEW_VERDICT_TAG,
    analysis_refusal,
    evaluation_refusal,
    version_path,
)


@pytest.mark.parametrize(
    ("tags", "review", "refusal"),
    [
        ({}, False, "version 3 has no evaluation; a canary needs one (`lab eval run 3`)"),
        ({EVAL_VERDICT_TAG: NO_GO, EVAL_REASONS_TAG: "slice region=east accuracy -0.12"}, False,
         "the evaluation of version 3 says no-go: slice region=east accuracy -0.12"),
        ({EVAL_VERDICT_TAG: NO_GO}, False, "the evaluation of version 3 says no-go: see its report"),
        ({EVAL_VERDICT_TAG: GO}, False, None),
        ({EVAL_VERDICT_TAG: GO}, True, "this lab needs a human review of version 3 before its canary"),
        ({EVAL_VERDICT_TAG: GO, REVIEW_VERDICT_TAG: NO_GO}, True, "the human review of version 3 says no-go"),
        ({EVAL_VERDICT_TAG: GO, REVIEW_VERDICT_TAG: GO}, True, None),
    ],
)  # fmt: skip
def test_a_canary_needs_an_evaluation_that_says_go_and_a_review_when_the_lab_asks(
    tags: dict[str, str], review: bool, refusal: str | None
) -> None:
    said = evaluation_refusal("3", {EVAL_AGAINST_TAG: "1", **tags}, "1", require_review=review)
    assert said == refusal if refusal is None else said is not None and said.startswith(refusal)


def test_a_go_against_an_earlier_champion_is_stale() -> None:
    said = evaluation_refusal("3", {EVAL_VERDICT_TAG: GO, EVAL_AGAINST_TAG: "1"}, "2", require_review=False)
    assert said == (
        "the evaluation of version 3 compared it with version 1, not with the champion now (version 2); "
        "evaluate it again (`lab eval run 3`)"
    )


def stats(variant: str, requests: int, labelled: int, accuracy: float | None, p99: float = 20.0) -> VariantStats:
    return VariantStats(variant, "3" if variant == "challenger" else "1", requests, 0, 5.0, p99, labelled, accuracy)


@pytest.mark.parametrize(
    ("champion", "challenger", "refusal"),
    [
        (stats("champion", 900, 400, 0.81), stats("challenger", 99, 60, None),
         "the canary analysis of version 3 does not pass: only 99 challenger calls, 100 needed for a verdict"),
        (stats("champion", 900, 400, 0.81), stats("challenger", 150, 60, None),
         "the canary analysis of version 3 cannot judge accuracy yet: 60 labelled calls of the 100 each variant needs"),
        (stats("champion", 900, 400, 0.81), stats("challenger", 150, 120, 0.70),
         "the canary analysis of version 3 does not pass: accuracy 0.110 below the champion's (at most 0.08)"),
        (stats("champion", 900, 400, 0.81), stats("challenger", 150, 120, 0.80, p99=400.0),
         "the canary analysis of version 3 does not pass: p99 latency 400 ms > 250 ms"),
        (stats("champion", 900, 400, 0.81, p99=300.0), stats("challenger", 150, 120, 0.80, p99=400.0), None),
        (stats("champion", 900, 400, 0.81, p99=300.0), stats("challenger", 150, 120, 0.80, p99=460.0),
         "the canary analysis of version 3 does not pass: p99 latency 460 ms > 450 ms"),
        (stats("champion", 900, 400, 0.81), stats("challenger", 150, 120, 0.80), None),
    ],
)  # fmt: skip
def test_production_needs_a_canary_with_enough_calls_and_labels_that_is_no_worse(
    champion: VariantStats, challenger: VariantStats, refusal: str | None
) -> None:
    assert analysis_refusal(champion, challenger) == refusal


def action(ts: float, **payload: Any) -> Event:
    return Event(int(ts), ts, "cli", LEARNER_ACTION, payload, learner="ada")


def test_a_versions_path_lists_its_moves_in_order_and_changes_made_outside_the_lab() -> None:
    events = [
        action(1, action="model.retrain", version="3", promoted=False),
        action(2, action="model.stage", version="3", **{"from": None}),
        action(3, action="eval.run", version="3", against="1", verdict="go", report="r.html"),
        action(4, action="eval.run", version="4", against="1", verdict="no-go", report="r4.html"),  # another version
        action(5, action="shadow.start", version="3", share=0.5),
        action(6, action="shadow.stop", version="3", verdict="go", **{"from": 0.5}),
        action(7, action="canary.start", version="3", weight=0.1, via="lab canary start"),
        Event(8, 8.0, "registry-watcher", ALIAS_CHANGED,
              {"model": "m", "alias": "challenger", "before": None, "after": "3", "via": "lab canary start"}),
        action(9, action="canary.promote", version="3", forced=True, via="lab canary promote"),
        Event(10, 10.0, "registry-watcher", ALIAS_CHANGED,
              {"model": "m", "alias": "champion", "before": "3", "after": "2", "via": OUTSIDE}),
        action(11, action="model.rollback", **{"from": "2", "to": "3"}),
    ]  # fmt: skip
    path = version_path(events, "3", "m")
    assert [(m.ts, m.stage, m.what) for m in path] == [
        (1, "registered", "retrained on recent traffic"),
        (2, "staging", "staged"),
        (3, "evaluation", "evaluated against version 1: go"),
        (5, "shadow", "shadow started on 50% of the requests"),
        (6, "shadow", "shadow stopped: the run says go"),
        (7, "canary", "canary started at 10%"),
        (9, "production", "canary promoted to @champion (forced)"),
        (10, "champion", f"left @champion ({OUTSIDE})"),
        (11, "production", "back as @champion by a rollback"),
    ]
    assert path[0].learner == "ada" and path[7].learner is None
