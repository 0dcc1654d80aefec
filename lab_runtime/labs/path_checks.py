"""Lab checks of the promotion path (labs 07 and 08): a lab's candidate versions evaluated, reviewed, shadowed,
kept out of production or shipped through every gate. Registered in the one check catalog by `@check`."""

from __future__ import annotations

from typing import Any

from lab_runtime.errors import NotFound
from lab_runtime.events import (
    ALIAS_CHANGED,
    CANARY_PROMOTE,
    CANARY_START,
    EVAL_RUN,
    LAB_STARTED,
    LEARNER_ACTION,
    REVIEW_LABEL,
    REVIEW_VERDICT,
    SHADOW_START,
    SHADOW_STOP,
    STAGE,
)
from lab_runtime.labs import evaluation_note as notes
from lab_runtime.labs.checks import CheckContext, CheckResult, check
from lab_runtime.predlog import DROPPED, SCORED, PredictionLog
from lab_runtime.registry.alias_history import history
from lab_runtime.registry.path import NO_GO
from lab_runtime.registry.rest import CHALLENGER, CHAMPION


def _candidate(ctx: CheckContext, name: str) -> str:
    """The version the lab registered as `name` when it started."""
    started = ctx.journal().last(LAB_STARTED)
    version = started.payload.get("candidates", {}).get(name) if started else None
    if version is None:
        raise NotFound(f"the lab registered no {name}; restart it with `lab start {ctx.lab_id}`")
    return str(version)


def _moves(ctx: CheckContext, version: str, *actions: str) -> list[dict[str, Any]]:
    """The learner's actions named `actions` on `version` since the lab started, oldest first."""
    events = ctx.journal().events([LEARNER_ACTION], since=ctx.lab_started_at)
    return [e.payload for e in events if e.payload.get("action") in actions and e.payload.get("version") == version]


@check
def candidate_evaluated(ctx: CheckContext, candidate: str) -> CheckResult:
    """The learner evaluated the lab's `candidate` against the champion (`lab eval run`)."""
    version = _candidate(ctx, candidate)
    runs = [a for a in _moves(ctx, version, EVAL_RUN) if a.get("against")]
    if not runs:
        return CheckResult(False, f"the {candidate} (version {version}) has no evaluation against the champion yet")
    last = runs[-1]
    return CheckResult(True, f"version {version} evaluated against version {last['against']}: {last['verdict']}")


@check
def candidate_reviewed(ctx: CheckContext, candidate: str, min_labels: int) -> CheckResult:
    """The learner labelled at least `min_labels` rows of the `candidate`'s review queue and gave a verdict."""
    version = _candidate(ctx, candidate)
    labelled = {a.get("item") for a in _moves(ctx, version, REVIEW_LABEL)}
    if len(labelled) < min_labels:
        return CheckResult(False, f"{len(labelled)} row(s) of version {version}'s queue labelled, {min_labels} needed")
    verdicts = _moves(ctx, version, REVIEW_VERDICT)
    if not verdicts:
        return CheckResult(
            False, f"{len(labelled)} rows labelled; now give the review's verdict (`lab review verdict`)"
        )
    return CheckResult(True, f"{len(labelled)} rows reviewed; the review says {verdicts[-1]['verdict']}")


@check
def kept_out_of_production(ctx: CheckContext, candidate: str) -> CheckResult:
    """The `candidate` never served as @challenger or @champion since the lab started, and a no-go on it is on
    record: from its evaluation, its review, or the shadow run the learner stopped."""
    version = _candidate(ctx, candidate)
    changes = history(ctx.journal().events([ALIAS_CHANGED], since=ctx.lab_started_at), model=ctx.settings.model_name)
    served = [c for c in changes if c.after == version and c.alias in (CHALLENGER, CHAMPION)]
    if served:
        return CheckResult(False, f"version {version} took @{served[0].alias} ({served[0].via}): it reached users")
    evidence = [a for a in _moves(ctx, version, EVAL_RUN, REVIEW_VERDICT, SHADOW_STOP) if a.get("verdict") == NO_GO]
    if not evidence:
        return CheckResult(False, f"no no-go on version {version} on record yet: evaluate, review or shadow it")
    return CheckResult(True, f"version {version} never reached users ({evidence[-1]['action']} on record)")


@check
def shadow_compared(ctx: CheckContext, candidate: str, min_rows: int) -> CheckResult:
    """The learner staged and evaluated the `candidate`, shadowed it on production traffic (at least `min_rows`
    mirrored records answered or failed, not dropped) and stopped the shadow."""
    version = _candidate(ctx, candidate)
    if not _moves(ctx, version, STAGE):
        return CheckResult(False, f"version {version} was not staged (`lab model stage {version}`)")
    if not _moves(ctx, version, EVAL_RUN):
        return CheckResult(False, f"version {version} was not evaluated (`lab eval run {version}`)")
    starts = _moves(ctx, version, SHADOW_START)
    if not starts:
        return CheckResult(False, f"no shadow of version {version} yet (`lab shadow start {version} --share 0.5`)")
    log = PredictionLog(ctx.settings.prediction_log_path)
    try:
        rows = log.shadow(ctx.lab_started_at, version=version)
    finally:
        log.close()
    compared = int((rows["outcome"] != DROPPED).sum()) if len(rows) else 0
    scored = int((rows["outcome"] == SCORED).sum()) if len(rows) else 0
    if compared < min_rows:
        return CheckResult(False, f"the shadow of version {version} saw {compared} request(s), {min_rows} needed")
    if not _moves(ctx, version, SHADOW_STOP):
        return CheckResult(False, f"{compared} requests mirrored; read `lab shadow status`, then `lab shadow stop`")
    return CheckResult(True, f"version {version} shadowed on {compared} requests ({scored} answered), then stopped")


@check
def shipped_through_the_path(ctx: CheckContext, candidate: str) -> CheckResult:
    """The `candidate` became @champion by a canary promoted through the production gate, after it was staged,
    evaluated, shadowed and started as a canary through the evaluation gate (nothing forced)."""
    version = _candidate(ctx, candidate)
    needed = {
        STAGE: f"`lab model stage {version}`",
        EVAL_RUN: f"`lab eval run {version}`",
        SHADOW_START: f"`lab shadow start {version}`",
        CANARY_START: f"`lab canary start {version}`",
        CANARY_PROMOTE: "`lab canary promote`",
    }
    moves = _moves(ctx, version, *needed)
    path = iter(a["action"] for a in moves)
    missing = [how for action, how in needed.items() if action not in path]  # in this order: `in` consumes `path`
    if missing:
        return CheckResult(False, f"version {version} still needs, in this order: {', '.join(missing)}")
    forced = [a["action"] for a in moves if a.get("forced")]
    if forced:
        return CheckResult(False, f"version {version} skipped a gate with --force ({', '.join(forced)}); earn it")
    if ctx.alias_version(CHAMPION) != version:
        return CheckResult(False, f"version {version} was promoted but is not @champion now")
    return CheckResult(True, f"version {version} went staging -> evaluation -> shadow -> canary -> production")


@check
def evaluation_note(ctx: CheckContext, file: str, candidate: str) -> CheckResult:
    """The evaluation note in the workspace gives the decision the `candidate`'s latest evaluation supports, the
    slice it flagged, and the evidence."""
    from lab_runtime.evaluation.harness import recorded

    version = _candidate(ctx, candidate)
    evaluation = recorded(ctx.settings, version)
    if evaluation is None or evaluation.against is None:
        return CheckResult(False, f"evaluate version {version} against the champion first (`lab eval run {version}`)")
    path = ctx.workspace / file
    if not path.is_file():
        return CheckResult(False, f"no note at {path} yet: fill in the template")
    flagged = [s.name for s in evaluation.slices if s.flagged]
    problems = notes.judge(path.read_text(), evaluation.verdict, flagged)
    if problems:
        return CheckResult(False, "; ".join(problems))
    return CheckResult(True, f"the note says {evaluation.verdict} for version {version}, as the evaluation does")
