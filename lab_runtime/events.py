"""The catalog of journal events: every kind, when it is written and by whom, and its payload's fields.

Each kind is an `EventKind`: the string the journal stores (readers compare and filter with it as a `str`) that
also carries a one-line description and its payload's TypedDict. `Journal.append(KIND, Payload(...))` takes a
payload only of its kind's type, so mypy checks every writer (a plain dict, or another kind's payload, fails
with "Cannot infer value of type parameter Payload"). `CATALOG` maps each kind to its `EventKind`. The names a
`learner.action` carries in its `action` field are here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, NotRequired, TypedDict, TypeVar

Payload = TypeVar("Payload", bound=Mapping[str, Any])


class EventKind(str, Generic[Payload]):
    """A journal event's kind: a `str`, with when it is written (`description`) and its payload's TypedDict."""

    payload: type[Payload]
    description: str

    def __new__(cls, kind: str, payload: type[Payload], description: str) -> EventKind[Payload]:
        self = super().__new__(cls, kind)
        self.payload, self.description = payload, description
        return self

    def __reduce__(self) -> tuple[Any, ...]:  # copy and pickle (str's own way calls __new__ with the string only)
        return EventKind, (str(self), self.payload, self.description)


# -- payloads --------------------------------------------------------------------------------------------------


class LabStarted(TypedDict):
    lab: str  # the lab's id
    workspace: str  # where its starter files were copied
    candidates: NotRequired[dict[str, str]]  # the versions it registered for the learner to judge: {name: version}


class LabCheck(TypedDict):
    lab: str
    passed: int  # how many steps passed
    steps: list[dict[str, Any]]  # each step's `StepResult`, as a dict


class LabEvent(TypedDict):
    lab: str
    event: int  # which of the lab's scripted events (0 first)
    aliases_before: dict[str, str]  # the model's aliases before it ran: {alias: version}
    release: NotRequired[str]  # the release it shipped ...
    drill: NotRequired[str]  # ... or the catalog drill it started, blind,
    run_id: NotRequired[str]  # ... and that drill's run


class AliasRequested(TypedDict):
    model: str
    alias: str
    version: str | None  # None: the alias is to be removed
    via: str  # the command, e.g. "lab model promote"


class AliasChanged(TypedDict):
    model: str
    alias: str
    before: str | None  # None: the alias was set
    after: str | None  # None: the alias was removed
    via: str  # the command that requested it, or `alias_history.OUTSIDE`
    requested_by: NotRequired[str | None]  # with a request: the learner who made it
    requested_at: NotRequired[float]  # ... and when


# Fields besides `action` depend on it: see the action names below. "from" is a keyword, hence this syntax.
LearnerAction = TypedDict(
    "LearnerAction",
    {
        "action": str,
        "version": NotRequired[str],
        "alias": NotRequired[str],
        "from": NotRequired[str | float | None],
        "to": NotRequired[str | float],
        "forced": NotRequired[bool],
        "gate": NotRequired[dict[str, dict[str, float]]],
        "promoted": NotRequired[bool],
        "weight": NotRequired[float],
        "via": NotRequired[str],
        "service": NotRequired[str],
        "started": NotRequired[list[str]],
        "rules": NotRequired[list[str]],
        "share": NotRequired[float],
        "against": NotRequired[str | None],
        "verdict": NotRequired[str],
        "report": NotRequired[str],
        "item": NotRequired[str],
        "label": NotRequired[str],
        "note": NotRequired[str],
    },
)

# `learner.action` names, each with the fields it adds to `action`.
UP = "up"  # started: the services `lab up` started
RESTART = "restart"  # service
MONITOR_REPORT = "monitor.report"
MONITOR_ADD_RULES = "monitor.add_rules"  # rules: the names of the rules added
PIPELINE_DEPLOY = "pipeline.deploy"  # version, from: the release active before (None: none)
PIPELINE_ROLLBACK = "pipeline.rollback"  # version, from
LABELS_RESUME = "pipeline.labels_resume"
ROLLBACK = "model.rollback"  # from: the champion before (None: none), to: the champion now
PROMOTE = "model.promote"  # version, alias, from, forced, gate: holdout metrics per version (empty: no gate)
RETRAIN = "model.retrain"  # version: the one registered, promoted: whether it became champion
CANARY_START = "canary.start"  # version, weight, via
CANARY_SET = "canary.set"  # version, from and to: the challenger's shares, via
CANARY_PROMOTE = "canary.promote"  # version, from: the champion it replaced, via
CANARY_ABORT = "canary.abort"  # version, via
FEATURE_DISABLE = "feature.disable"  # from and to: the share of requests the model decides, before and after
FEATURE_ENABLE = "feature.enable"  # from, to
FEATURE_THROTTLE = "feature.throttle"  # from, to
STAGE = "model.stage"  # version, from: the version @staging named before (None: none)
SHADOW_START = "shadow.start"  # version (@staging), share: of production requests mirrored to it
SHADOW_STOP = "shadow.stop"  # version, from: the share before
EVAL_RUN = "eval.run"  # version, against: the version compared with (None: none), verdict ("go"/"no-go"), report
REVIEW_LABEL = "review.label"  # version, item: the queue item, label (approve/decline/refer), note
REVIEW_VERDICT = "review.verdict"  # version, verdict ("go"/"no-go"), note
# Actions that change nothing production traffic is served (reading, evaluating, reviewing, staging, shadowing).
LOOKING = (MONITOR_REPORT, MONITOR_ADD_RULES, STAGE, SHADOW_START, SHADOW_STOP, EVAL_RUN, REVIEW_LABEL, REVIEW_VERDICT)
# The levers a learner pulls against unsafe output, by the action that pulls each (an output drill's table names them).
LEVERS = {"rollback": ROLLBACK, "disable": FEATURE_DISABLE, "throttle": FEATURE_THROTTLE}


class LearnerDeclared(TypedDict):
    diagnosis: str  # one of `lab_runtime.labs.diagnoses.DIAGNOSES`
    note: str  # the learner's line of evidence ("" when none)


class CanaryAnalysis(TypedDict):
    decision: str  # start, the judge's action (`canary.judge.Action`) or stopped
    version: str | None  # the challenger (as `VariantStats` has it)
    weight: float  # its share after the decision
    spec: NotRequired[dict[str, Any]]  # start: the analysis file
    weight_before: NotRequired[float]  # a judged interval: the share it ran at,
    failures: NotRequired[int]  # the failed checks so far,
    failed: NotRequired[list[str]]  # why this one failed (empty: healthy),
    measured: NotRequired[dict[str, float | None]]  # and the figures judged
    reason: NotRequired[str]  # stopped: why


AlertFiring = TypedDict(
    "AlertFiring",
    {
        "rule": str,
        "severity": str,
        "signal": str,
        "comparison": str,
        "threshold": float,
        "resolve_threshold": float | None,  # a firing alert resolves once beyond it (None: at the threshold)
        "for": float,  # seconds as the rule states them (the condition holds `for` x LAB_TIME_SCALE)
        "value": float,  # the signal when it fired
        "detail": str,
        "summary": str,  # the rule's summary with the value filled in
        "runbook": str,
        "pending_since": float,
        "firing_since": float,
        # A rule that fires again soon after it resolved (the monitor's incident gap) is the same incident:
        # the `firing_since` of the incident's first firing, and which firing of it this is (1, 2, ...).
        # Journals written before these fields existed lack them: each firing is then its own incident.
        "incident": float,
        "occurrence": int,
    },
)


class AlertResolved(TypedDict):
    rule: str
    severity: str
    value: float | None  # the signal now (None: absent, or the rule was removed)
    firing_since: float
    duration: float  # seconds it fired


class PipelineDeployed(TypedDict):
    version: str
    previous: str | None  # the release active before (None: none)
    by: str  # learner, drill, instructor or a lab's scenario
    reason: str  # ship, deploy or rollback


class Team(TypedDict):
    """A drill run assigned to a team: several learners on one sandbox, each acting under their own name."""

    name: str  # the run's learner, as the journal records it
    members: list[str]
    roles: dict[str, str]  # member -> role (commander, operator, communications, scribe); may be empty


class DrillStarted(TypedDict):
    drill: str
    title: str
    kind: str  # drift, canary, rollback, incident or output
    diagnosis: str  # the ground truth
    seed: int
    blind: bool
    delay: float  # seconds between the gate and the injection
    time_limit: float  # seconds, scaled
    hold: float  # seconds mitigation and remediation must hold
    faults: list[str]  # the faults' types, in order
    steady_state: list[str]  # conditions
    remediation: list[str]  # conditions
    tag: str | None  # what the run belongs to (`capstone:<id>`)
    decision: NotRequired[dict[str, Any] | None]  # output drills: per lever, its verdict, points and why
    team: NotRequired[Team | None]  # a team run: its members' moves count, each under their own name


class FaultInjected(TypedDict):
    fault: int  # its index among the drill's faults
    type: str
    details: dict[str, Any]  # what the fault put in place


class FaultAction(TypedDict):
    fault: int
    type: str
    action: str  # what it did, as a line


class ProbeResult(TypedDict):
    steady: bool
    remediated: bool
    impact: bool  # the impact shows
    failing: list[str]  # steady-state and remediation conditions that failed
    values: dict[str, float]  # the signals the drill's conditions use
    in_force: list[bool | None]  # per active fault (None: it cannot tell)


class HeldSpan(TypedDict):
    span_start: float  # the first probe of the span
    seen_at: float  # when that probe had seen it
    fixed_by: float  # by when the learner's move that did it must have begun
    held: float  # seconds the span held


class UnsafeServed(TypedDict):
    served: list[float]  # when each decision that broke an output-policy rule was served, oldest first
    since: float  # from the first fault in place
    until: float  # to the start of the revert


class FaultReverted(TypedDict):
    fault: int
    type: str
    result: str  # what the revert did, as a line
    by: str  # runner or reset


class FaultRevertFailed(TypedDict):
    fault: int
    type: str
    error: str


class DrillSteadyState(TypedDict):
    ok: bool
    failing: list[str]  # the conditions that failed
    by: NotRequired[str]  # "reset" when `lab reset` checked it


class DrillEnded(TypedDict):
    drill: str
    outcome: str  # remediated, time_limit, refused, aborted, interrupted, error, or reset (its runner died)
    detail: str | None
    remediated_at: NotRequired[float | None]  # the runner's own end: the remediated span's start,
    steady_after: NotRequired[bool | None]  # whether the steady state held after the revert (None: not checked),
    revert_failures: NotRequired[list[str]]  # and the faults it could not revert


class SandboxReset(TypedDict):
    services_started: list[str]
    runs_ended: list[str]  # runs it aborted
    faults_reverted: int
    failures: list[str]
    service_faults_cleared: NotRequired[int]  # faults in the service's table (absent: the service did not answer)
    conditions_cleared: list[str]  # the pipeline's world conditions
    steady: bool
    not_steady: list[str]  # the steady-state conditions that failed


class CapstoneStarted(TypedDict):
    capstone_id: str
    seed: int  # gives the drills away: shown only once the capstone has ended
    count: int  # how many drills
    budget: float  # seconds
    longest: float  # seconds the plan may take
    rubric: dict[str, Any]  # the rubric, as its file spells it
    decisions: NotRequired[int]  # how many of the drills drawn have a decision table (output drills)
    form: NotRequired[str]  # a skill check's form, baseline or final (absent: the capstone)
    pairing_seed: NotRequired[int]  # a skill check's: both forms of a learner draw from it, each other drills
    team: NotRequired[Team]  # a team's skill check (its learner is the team's name)


class CapstoneEnded(TypedDict):
    capstone_id: str
    outcomes: list[str]  # each drill's outcome, in order
    detail: NotRequired[str]  # why it ended early ("runner gone")


# -- kinds -----------------------------------------------------------------------------------------------------

LAB_STARTED = EventKind("lab.started", LabStarted, "`lab start`: the learner started a lab (the last one is current)")
LAB_CHECK = EventKind("lab.check", LabCheck, "`lab check`: each step of the current lab, judged")
LAB_EVENT = EventKind(
    "lab.event", LabEvent, "`lab check`: a lab's scripted incident, once its step passed (a release or a blind drill)"
)
ALIAS_REQUESTED = EventKind(
    "registry.alias_requested",
    AliasRequested,
    "a lab command (`model_ops`), just before it moves an alias: so the watcher can say how the change was made",
)
ALIAS_CHANGED = EventKind(
    "registry.alias_changed", AliasChanged, "the registry watcher: an alias changed in the registry, and how"
)
LEARNER_ACTION = EventKind(
    "learner.action", LearnerAction, "a learner's `lab` command that changed the sandbox (or looked at the monitor)"
)
LEARNER_DECLARED = EventKind("learner.declared", LearnerDeclared, "`lab declare`: the learner's diagnosis")
CANARY_ANALYSIS = EventKind(
    "canary.analysis",
    CanaryAnalysis,
    "`lab canary analyze`: one decision of the automated canary analysis, with what it measured",
)
ALERT_FIRING = EventKind("alert.firing", AlertFiring, "the monitor: a rule's condition held for its `for` duration")
ALERT_RESOLVED = EventKind(
    "alert.resolved", AlertResolved, "the monitor: a firing alert's condition stopped holding (or its rule went)"
)
PIPELINE_DEPLOYED = EventKind(
    "pipeline.deployed",
    PipelineDeployed,
    "`pipeline.store` ship, deploy or rollback (CLI, labs, drills): the active release changed",
)
# Written by the drill runner (source "drill") with the run's id, unless said otherwise.
DRILL_STARTED = EventKind("drill.started", DrillStarted, "the drill runner: a run began (before its gate)")
FAULT_INJECTED = EventKind("fault.injected", FaultInjected, "the drill runner: a fault is in place")
FAULT_ACTION = EventKind(
    "fault.action", FaultAction, "the drill runner: an active fault did something (e.g. a restart policy restarted)"
)
PROBE_RESULT = EventKind("probe.result", ProbeResult, "the drill runner, every probe: the conditions, judged")
DRILL_MITIGATED = EventKind(
    "drill.mitigated", HeldSpan, "the drill runner: the impact stopped after a learner's move and stayed away"
)
DRILL_REMEDIATED = EventKind(
    "drill.remediated", HeldSpan, "the drill runner: the remediation and the steady state held for the hold"
)
DRILL_UNSAFE = EventKind(
    "drill.unsafe", UnsafeServed, "the drill runner before its revert: the policy-violating decisions served"
)
FAULT_REVERTED = EventKind("fault.reverted", FaultReverted, "the drill runner or `lab reset`: a fault was reverted")
FAULT_REVERT_FAILED = EventKind(
    "fault.revert_failed", FaultRevertFailed, "the drill runner or `lab reset`: a fault could not be reverted"
)
DRILL_STEADY_STATE = EventKind(
    "drill.steady_state",
    DrillSteadyState,
    "the drill runner after its reverts, or `lab reset` (with no run id when no run was left): the steady state",
)
DRILL_ENDED = EventKind(
    "drill.ended", DrillEnded, "the drill runner on every exit path, or `lab reset` for a run whose runner died"
)
SANDBOX_RESET = EventKind("sandbox.reset", SandboxReset, "`lab reset`: what it did, and whether the sandbox is steady")
CAPSTONE_STARTED = EventKind(
    "capstone.started", CapstoneStarted, "`lab capstone start`: the assessment's seed, rubric and drill count"
)
CAPSTONE_ENDED = EventKind(
    "capstone.ended",
    CapstoneEnded,
    "the capstone runner after its last drill, or `lab capstone start` for one whose runner died",
)

CATALOG: dict[str, EventKind[Any]] = {
    kind: kind
    for kind in (
        LAB_STARTED,
        LAB_CHECK,
        LAB_EVENT,
        ALIAS_REQUESTED,
        ALIAS_CHANGED,
        LEARNER_ACTION,
        LEARNER_DECLARED,
        CANARY_ANALYSIS,
        ALERT_FIRING,
        ALERT_RESOLVED,
        PIPELINE_DEPLOYED,
        DRILL_STARTED,
        FAULT_INJECTED,
        FAULT_ACTION,
        PROBE_RESULT,
        DRILL_MITIGATED,
        DRILL_REMEDIATED,
        DRILL_UNSAFE,
        FAULT_REVERTED,
        FAULT_REVERT_FAILED,
        DRILL_STEADY_STATE,
        DRILL_ENDED,
        SANDBOX_RESET,
        CAPSTONE_STARTED,
        CAPSTONE_ENDED,
    )
}
# The kinds grading reads (a reader may fetch only these: probes are most of a journal).
GRADED = (
    DRILL_STARTED,
    FAULT_INJECTED,
    DRILL_MITIGATED,
    DRILL_REMEDIATED,
    DRILL_UNSAFE,
    DRILL_ENDED,
    LEARNER_DECLARED,
    LEARNER_ACTION,
)
