"""Grading drill runs from journal events: detection, diagnosis, mitigation, remediation, harm, a score. Pure.

Every figure comes from what the runtime recorded, never from what the learner says they did. A learner's move
is dated from when its command started (`Event.at`: the process's start), not from when its event was written;
the runner's events are dated when they were written (`ts`). The sandbox's processes share one clock; `SKEW`
absorbs what separates a fault's effect from its `fault.injected` stamp.

- a run is the events carrying its `run_id` (`drill.started` .. `drill.ended`), written by the drill runner;
- the learner's events (`learner.declared`, `learner.action`) count for a run when the same learner's command
  started after its first `fault.injected` and before its `drill.ended`;
- `ttd`: injection -> the start of the first right `lab declare`; wrong ones before it are counted (a declaration
  naming the diagnosis of another run that had a fault in place then is about that run);
- `ttm`: injection -> the start of the learner's action after which the impact stopped: the last action begun
  before `fixed_by` of the runner's `drill.mitigated` (the steady state and the traffic conditions, judged on
  the service's last seconds of requests, held through the hold). Without impact to stop, `ttm` is `ttr`;
- `ttr`: injection -> the start of the learner's action after which the remediation condition held through the
  hold: the last action begun before `fixed_by` of the runner's `drill.remediated`. The span confirms; it does
  not date. A drill that ends at its time limit is fixed by its own revert, not the learner: nothing to credit;
- `time_to_recovery`: injection -> the start of that verified span (never before the fix credited);
- `decision`: the first lever the learner pulled once the fault was in place (rollback, disable, throttle; `lab
  feature` journals a throttle to 0 as the disable it is), judged by the drill's decision table (`verdict`, its
  points added to the score);
- `blast_radius`: the policy-violating decisions served from the injection until the start of the fix credited
  (a throttle that only cuts the harm does not end it; until the revert when nothing fixed it), from the
  runner's `drill.unsafe` record of the prediction log.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lab_runtime.events import (
    CANARY_ABORT,
    DRILL_ENDED,
    DRILL_MITIGATED,
    DRILL_REMEDIATED,
    DRILL_STARTED,
    DRILL_UNSAFE,
    FAULT_INJECTED,
    GRADED,
    LEARNER_ACTION,
    LEARNER_DECLARED,
    LEVERS,
    LOOKING,
    PROMOTE,
    ROLLBACK,
)
from lab_runtime.journal import Event

SKEW = 0.05  # seconds a fault may act before the runner stamps it, and the clock's resolution
KINDS = GRADED  # the kinds of event grading reads
# Score: detection and remediation weigh 40 points each, the diagnosis 20; each harm costs 10.
DETECT_POINTS, REMEDY_POINTS, DIAGNOSIS_POINTS, WRONG_COST, HARM_COST = 40.0, 40.0, 20.0, 5.0, 10.0
NO_LEVER = "none"  # the verdict of a drill with a decision table when the learner pulled no lever
FLOOR = 0.25  # a detection or remediation at the very end of the time limit still earns this share of its points


@dataclass(frozen=True)
class MemberGrade:
    """A team member's own part in a team's run."""

    learner: str
    role: str | None
    ttd: float | None  # injection -> the start of their first right declaration
    wrong_declarations: int  # theirs, before the team's first right one
    actions: int  # their moves that can change the sandbox
    mitigated: bool  # their move stopped the impact
    remediated: bool  # the fix is credited to their move


@dataclass(frozen=True)
class RunGrade:
    """One learner's result on one drill run."""

    run_id: str
    drill: str
    learner: str | None
    diagnosis: str  # the ground truth
    injected_at: float | None  # first fault in place (None: the drill never injected)
    detected_at: float | None  # first right declaration
    ttd: float | None
    wrong_declarations: int
    remediated_at: float | None  # start of the verified remediated span, when the learner earned it
    ttr: float | None  # injection -> the start of the fix credited (`fixed_at`)
    outcome: str  # remediated | self-healed | not remediated | not injected, or the runner's own end
    collateral: tuple[str, ...] = field(default_factory=tuple)
    score: float = 0.0
    time_limit: float = 0.0  # the drill's time limit in seconds, as it ran (scaled)
    fixed_at: float | None = None  # when the learner's command that fixed it started (the fix credited)
    blind: bool = False
    finished: bool = True  # the runner has ended the run
    mitigated_at: float | None = None  # when the learner's command after which the impact stopped started
    ttm: float | None = None
    time_to_recovery: float | None = None  # injection -> `remediated_at`
    decision: str | None = None  # the first lever pulled: rollback, disable or throttle
    verdict: str | None = None  # the drill's table on it: best, acceptable, harmful or none (None: no table)
    blast_radius: int | None = None  # policy-violating decisions served until the fix credited (None: not recorded)
    team: str | None = None  # a team's run: the team's name (`learner` too)
    detected_by: str | None = None  # whose declaration was the first right one
    mitigated_by: str | None = None  # whose move stopped the impact
    remediated_by: str | None = None  # whose move the fix is credited to
    members: tuple[MemberGrade, ...] = ()  # a team's run: each member's own part

    @property
    def detected(self) -> bool:
        return self.detected_at is not None


def _run_ids(events: Sequence[Event]) -> list[str]:
    return [e.run_id for e in events if e.kind == DRILL_STARTED and e.run_id]


def _harm(action: dict[str, Any], targets: set[str]) -> str | None:
    """What a learner action broke that the drill had not: a healthy champion rolled back, a healthy canary aborted."""
    name = action.get("action")
    if name == ROLLBACK and "champion" not in targets:
        return f"rolled back a healthy champion (version {action.get('from')} to {action.get('to')})"
    if name == CANARY_ABORT and "challenger" not in targets:
        return f"aborted a healthy canary (version {action.get('version')})"
    if name == PROMOTE and action.get("forced"):
        return f"promoted version {action.get('version')} past the validation gate (--force)"
    return None


PULLED_BY = {action: name for name, action in LEVERS.items()}


def lever(action: dict[str, Any]) -> str | None:
    """The lever a learner action pulls, if it pulls one."""
    return PULLED_BY.get(str(action.get("action")))


def decision_label(decision: str | None, verdict: str | None) -> str:
    """A run's decision as reports show it: the lever and, when a table judged it, its verdict."""
    return "none" if decision is None else decision + (f" ({verdict})" if verdict else "")


def _blast_radius(run: Sequence[Event], until: float | None) -> int | None:
    """Violating decisions served from the first fault until `until` (None: all the runner recorded)."""
    record = next((e for e in run if e.kind == DRILL_UNSAFE), None)
    if record is None:
        return None
    served = record.payload.get("served", [])
    return len(served) if until is None else bisect_right(served, until)


def _score(
    limit: float, ttd: float | None, ttr: float | None, wrong: int, harms: int, decision_points: float = 0.0
) -> float:
    def timed(points: float, seconds: float | None) -> float:
        if seconds is None:
            return 0.0
        return points * max(FLOOR, 1.0 - seconds / limit) if limit > 0 else points

    diagnosis = max(0.0, DIAGNOSIS_POINTS - WRONG_COST * wrong) if ttd is not None else 0.0
    total = timed(DETECT_POINTS, ttd) + timed(REMEDY_POINTS, ttr) + diagnosis - HARM_COST * harms + decision_points
    return round(min(100.0, max(0.0, total)), 1)


@dataclass(frozen=True)
class _Index:
    """The journal's events grouped once: per drill run, and the learners' own events per learner, by start."""

    runs: dict[str, list[Event]]
    mine: dict[tuple[str | None, str], list[Event]]  # (learner, kind) -> events, ordered by `at`
    starts: dict[tuple[str | None, str], list[float]]  # their `at`, for bisection
    active: list[tuple[float, float, str, str, frozenset[str | None]]]  # (first fault, end, truth, run id, who)

    @classmethod
    def of(cls, events: Sequence[Event]) -> _Index:
        runs: dict[str, list[Event]] = {}
        mine: dict[tuple[str | None, str], list[Event]] = {}
        for e in events:
            if e.run_id:
                runs.setdefault(e.run_id, []).append(e)
            if e.kind in (LEARNER_DECLARED, LEARNER_ACTION):
                mine.setdefault((e.learner, e.kind), []).append(e)
        for own in mine.values():
            own.sort(key=lambda e: (e.at, e.id))
        active = []
        for run_id, run in runs.items():
            started = next((e for e in run if e.kind == DRILL_STARTED), None)
            first = next((e for e in run if e.kind == FAULT_INJECTED), None)
            if started and first:
                end = next((e.ts for e in run if e.kind == DRILL_ENDED), float("inf"))
                people = frozenset(_people(started))
                active.append((first.ts, end, str(started.payload.get("diagnosis")), run_id, people))
        return cls(runs, mine, {k: [e.at for e in v] for k, v in mine.items()}, active)

    def about_another_run(self, declaration: Event, run_id: str) -> bool:
        """The declaration names the ground truth of another run of the same learner (or team) that had a fault in
        place when it was made."""
        named, at, who = declaration.payload.get("diagnosis"), declaration.at, declaration.learner
        return any(s <= at < e and truth == named and r != run_id and who in w for s, e, truth, r, w in self.active)

    def between(self, people: Sequence[str | None], kind: str, start: float, end: float) -> list[Event]:
        """The events of `kind` of these learners whose command started within [start, end], by start."""
        found = []
        for learner in people:
            events, starts = self.mine.get((learner, kind), []), self.starts.get((learner, kind), [])
            found += events[bisect_left(starts, start) : bisect_right(starts, end)]
        return sorted(found, key=lambda e: (e.at, e.id)) if len(people) > 1 else found


def _people(started: Event) -> list[str | None]:
    """Whose moves count for a run: a team's members, else its learner."""
    team = started.payload.get("team")
    return list(team["members"]) if team else [started.learner]


def _credited(actions: Sequence[Event], fixed_by: float) -> Event | None:
    """The learner's last action that can change the sandbox begun by `fixed_by` (when the runner had the fix in
    evidence), if any: looking (`lab monitor report`) or adding alert rules fixes nothing."""
    fixes = [a for a in actions if a.at <= fixed_by + SKEW and a.payload.get("action") not in LOOKING]
    return fixes[-1] if fixes else None


def grade_run(events: Sequence[Event], run_id: str) -> RunGrade:
    """Grade run `run_id` from the journal's `events` (in append order; other runs' and learners' may be among them)."""
    return _grade(_Index.of(events), run_id)


def _grade(index: _Index, run_id: str) -> RunGrade:
    run = index.runs[run_id]
    started = next(e for e in run if e.kind == DRILL_STARTED)
    drill, truth, learner = started.payload["drill"], started.payload["diagnosis"], started.learner
    limit = float(started.payload.get("time_limit") or 0.0)
    injected = [e for e in run if e.kind == FAULT_INJECTED]
    ended = next((e for e in run if e.kind == DRILL_ENDED), None)
    runner_outcome = ended.payload.get("outcome", "ended") if ended else "running"
    if not injected:  # in its gate or its delay, or it ended before injecting
        return RunGrade(
            run_id, drill, learner, truth, None, None, None, 0, None, None, "not injected", time_limit=limit,
            blind=bool(started.payload.get("blind")), finished=ended is not None,
        )  # fmt: skip
    t0 = injected[0].ts
    # A move counts when its command started once the fault was in place (one begun before it is about the state
    # before) and before the run ended.
    window = (t0 - SKEW, ended.ts if ended else float("inf"))
    team = started.payload.get("team")
    people = _people(started)
    declared = index.between(people, LEARNER_DECLARED, *window)
    right = next((e for e in declared if e.payload.get("diagnosis") == truth), None)
    wrong = [
        e
        for e in declared
        if e.payload.get("diagnosis") != truth
        and not index.about_another_run(e, run_id)
        and (right is None or e.at < right.at)
    ]
    actions = index.between(people, LEARNER_ACTION, *window)
    remediated = next((e for e in run if e.kind == DRILL_REMEDIATED), None)
    remediated_at = fixed_at = None
    fix = relief = None
    if remediated is not None:
        span_start = float(remediated.payload.get("span_start", remediated.ts))
        seen_at = float(remediated.payload.get("seen_at", span_start))  # the first good probe's end
        fix = _credited(actions, float(remediated.payload.get("fixed_by", seen_at)))
        if fix is not None:
            fixed_at = fix.at
            remediated_at = max(span_start, fixed_at)  # a span cannot start before its fix
    mitigated = next((e for e in run if e.kind == DRILL_MITIGATED), None)
    mitigated_at, relief = fixed_at, fix  # no impact of its own to stop: mitigated by the fix
    if mitigated is not None:  # the impact stopped: by the learner's move (never after the fix), or on its own
        relief = _credited(actions, float(mitigated.payload["fixed_by"]))
        if relief is not None and fix is not None and fix.at < relief.at:
            relief = fix
        mitigated_at = None if relief is None else relief.at
    if remediated_at is not None:
        outcome = "remediated"
    elif remediated is not None:
        outcome = "self-healed"  # the conditions held again with no learner action before: nothing to credit
    elif runner_outcome in ("time_limit", "remediated", "running"):
        outcome = "not remediated"
    else:
        outcome = runner_outcome  # aborted, interrupted, error, reset: the run ended before it could be graded fully
    targets = {str(e.payload.get("details", {}).get("alias")) for e in injected if e.payload.get("type") == "bad_model"}
    table: dict[str, dict[str, Any]] = started.payload.get("decision") or {}
    first = next((a for a in actions if lever(a.payload)), None)
    pulled = lever(first.payload) if first else None
    # A drill's decision table judges the first lever pulled (not as a harm); later moves can still do harm.
    harms = tuple(h for a in actions if not (table and a is first) and (h := _harm(a.payload, targets)))
    choice = table.get(pulled or "", {"verdict": NO_LEVER} if table else {})

    def since(moment: float | None) -> float | None:
        return None if moment is None else max(0.0, moment - t0)

    ttd, ttr = since(right.at if right else None), since(fixed_at)
    return RunGrade(
        run_id,
        drill,
        learner,
        truth,
        t0,
        right.at if right else None,
        ttd,
        len(wrong),
        remediated_at,
        ttr,
        outcome,
        harms,
        _score(limit, ttd, ttr, len(wrong), len(harms), float(choice.get("points", 0.0))),
        limit,
        fixed_at,
        bool(started.payload.get("blind")),
        ended is not None,
        mitigated_at,
        since(mitigated_at),
        since(remediated_at),
        pulled,
        choice.get("verdict"),
        _blast_radius(run, fixed_at or mitigated_at),
        team["name"] if team else None,
        right.learner if right else None,
        relief.learner if relief else None,
        fix.learner if fix else None,
        _members(team, t0, declared, right, wrong, actions, relief, fix) if team else (),
    )


def _members(
    team: dict[str, Any],
    t0: float,
    declared: Sequence[Event],
    right: Event | None,
    wrong: Sequence[Event],
    actions: Sequence[Event],
    relief: Event | None,
    fix: Event | None,
) -> tuple[MemberGrade, ...]:
    """Each member's own part in a team's run."""
    truth = right.payload["diagnosis"] if right else None
    parts = []
    for member in team["members"]:
        first = next(
            (e for e in declared if e.learner == member and truth and e.payload.get("diagnosis") == truth), None
        )
        mistakes = sum(e.learner == member for e in wrong)  # the team's wrong guesses that were this member's
        moves = sum(1 for a in actions if a.learner == member and a.payload.get("action") not in LOOKING)
        parts.append(
            MemberGrade(
                member,
                team.get("roles", {}).get(member),
                None if first is None else max(0.0, first.at - t0),
                mistakes,
                moves,
                relief is not None and relief.learner == member,
                fix is not None and fix.learner == member,
            )
        )
    return tuple(parts)


def grade(events: Iterable[Event], learner: str | None = None) -> list[RunGrade]:
    """Every drill run in `events` (in append order), optionally of one learner, oldest first."""
    ordered = sorted(events, key=lambda e: e.id)
    index = _Index.of(ordered)
    grades = [_grade(index, run_id) for run_id in _run_ids(ordered)]
    return [g for g in grades if learner is None or g.learner == learner]
