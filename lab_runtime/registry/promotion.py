"""The promotion path's moves and gates on the live registry: staging a version, and the evidence the canary and
production need before a version enters them (`registry.path` judges it; this module reads it). Each refusal is
one `GateRefused` line with the reason and the figure; `--force` on the command skips it and is journaled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab_runtime.errors import GateRefused
from lab_runtime.events import LEARNER_ACTION, STAGE, LearnerAction
from lab_runtime.registry import model_ops
from lab_runtime.registry.path import (
    EVAL_REASONS_TAG,
    EVAL_VERDICT_TAG,
    NO_GO,
    REVIEW_VERDICT_TAG,
    analysis_refusal,
    evaluation_refusal,
)
from lab_runtime.registry.rest import CHAMPION, STAGING

if TYPE_CHECKING:
    from lab_runtime.journal import Journal
    from lab_runtime.settings import Settings

FORCE_HINT = "`--force` moves it anyway, and the journal records that you did"
ANALYSIS_WINDOW = 300.0  # seconds of live canary traffic (and labels) the production gate reads


def version_tags(settings: Settings, version: str) -> dict[str, str]:
    """The tags on `version` of the sandbox's model (an unknown version is refused, naming the known ones)."""
    version = model_ops.resolve_version(settings, version)
    with model_ops.mlflow_client(settings, f"read the tags of version {version}") as client:
        return dict(client.get_model_version(settings.model_name, version).tags)


def stage(settings: Settings, journal: Journal, version: str) -> tuple[str, str | None]:
    """`@staging` on `version`, the path's first stage; journaled. Returns (the version, the one staged before)."""
    version = model_ops.resolve_version(settings, version)
    before = model_ops.aliases(settings).get(STAGING)
    if before != version:
        began = journal.began_now()
        model_ops.set_alias(settings, STAGING, version, journal=journal, via="lab model stage")
        action = LearnerAction({"action": STAGE, "version": version, "from": before})
        journal.append(LEARNER_ACTION, action, began=began)
    return version, before


def require_evaluation(settings: Settings, version: str, *, require_review: bool = False) -> None:
    """Refuse a canary of `version` without a go from its evaluation (and from a human review, when required)."""
    tags = version_tags(settings, version)
    champion = model_ops.aliases(settings).get(CHAMPION)
    refusal = evaluation_refusal(version, tags, champion, require_review=require_review)
    if refusal:
        raise GateRefused(f"canary refused: {refusal}; nothing changed ({FORCE_HINT})")


def refuse_a_no_go(settings: Settings, version: str) -> None:
    """Refuse to make `version` @champion directly while its evaluation or its human review says no-go."""
    tags = version_tags(settings, version)
    for what, tag in (("evaluation", EVAL_VERDICT_TAG), ("human review", REVIEW_VERDICT_TAG)):
        if tags.get(tag) == NO_GO:
            why = f": {tags[EVAL_REASONS_TAG]}" if tag == EVAL_VERDICT_TAG and tags.get(EVAL_REASONS_TAG) else ""
            raise GateRefused(
                f"promotion refused: the {what} of version {version} says no-go{why}; nothing changed ({FORCE_HINT})"
            )


def require_canary_analysis(settings: Settings) -> None:
    """Refuse to promote the running canary until its live figures pass the production gate."""
    from lab_runtime.canary.analysis import measure
    from lab_runtime.registry.path import PRODUCTION_GATE

    report = measure(settings, ANALYSIS_WINDOW, ANALYSIS_WINDOW, PRODUCTION_GATE.thresholds.min_labels)
    if report.challenger is None:
        return  # no canary: promote_canary says so
    refusal = analysis_refusal(report.champion, report.challenger)
    if refusal:
        raise GateRefused(
            f"promotion refused: {refusal} (`lab canary status` shows them); nothing changed ({FORCE_HINT})"
        )
