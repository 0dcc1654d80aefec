"""Grading drill runs from journal events: detection, diagnosis, remediation, collateral damage, a score. Pure.

Every figure comes from what the runtime recorded, never from what the learner says they did:

- a run is the events carrying its `run_id` (`drill.started` .. `drill.ended`), written by the drill runner;
- the learner's events (`learner.declared`, `learner.action`) count for a run when the same learner wrote them
  after its first `fault.injected` and before its `drill.ended`. "After" and "before" follow the journal's append
  order (its ids), which is the order the events were committed in: clocks of the processes that write the
  journal may be up to `SKEW` apart, so timestamps give durations (never below zero), not the order;
- TTD = the first right declaration minus the first injection; wrong ones are counted;
- TTR = the start of the span the runner found remediated (`drill.remediated`: the remediation conditions and
  the steady state held for the drill's hold time) minus the first injection, credited only when a learner
  action began before the probe that saw it had finished: a drill that ends at its time limit is fixed by its
  own revert, not the learner. A span cannot start before the fix that made it: a probe that started before the
  fix and saw its effect dates the span from the fix.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lab_runtime.journal import (
    DRILL_ENDED,
    DRILL_REMEDIATED,
    DRILL_STARTED,
    FAULT_INJECTED,
    GRADED,
    LEARNER_ACTION,
    LEARNER_DECLARED,
    Event,
)

SKEW = 0.05  # seconds the clocks of the journal's writers may differ
KINDS = GRADED  # the kinds of event grading reads
# Score: detection and remediation weigh 40 points each, the diagnosis 20; each harm costs 10.
DETECT_POINTS, REMEDY_POINTS, DIAGNOSIS_POINTS, WRONG_COST, HARM_COST = 40.0, 40.0, 20.0, 5.0, 10.0
FLOOR = 0.25  # a detection or remediation at the very end of the time limit still earns this share of its points


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
    remediated_at: float | None  # start of the remediated span, when the learner earned it
    ttr: float | None
    outcome: str  # remediated | self-healed | not remediated | not injected, or the runner's own end
    collateral: tuple[str, ...] = field(default_factory=tuple)
    score: float = 0.0
    time_limit: float = 0.0  # the drill's time limit in seconds, as it ran (scaled)
    fixed_at: float | None = None  # the learner's last action before the remediated span (the fix credited)
    blind: bool = False
    finished: bool = True  # the runner has ended the run

    @property
    def detected(self) -> bool:
        return self.detected_at is not None


def _run_ids(events: Sequence[Event]) -> list[str]:
    return [e.run_id for e in events if e.kind == DRILL_STARTED and e.run_id]


def _harm(action: dict[str, Any], targets: set[str]) -> str | None:
    """What a learner action broke that the drill had not: a healthy champion rolled back, a healthy canary aborted."""
    name = action.get("action")
    if name == "model.rollback" and "champion" not in targets:
        return f"rolled back a healthy champion (version {action.get('from')} to {action.get('to')})"
    if name == "canary.abort" and "challenger" not in targets:
        return f"aborted a healthy canary (version {action.get('version')})"
    if name == "model.promote" and action.get("forced"):
        return f"promoted version {action.get('version')} past the validation gate (--force)"
    return None


def _score(limit: float, ttd: float | None, ttr: float | None, wrong: int, harms: int) -> float:
    def timed(points: float, seconds: float | None) -> float:
        if seconds is None:
            return 0.0
        return points * max(FLOOR, 1.0 - seconds / limit) if limit > 0 else points

    diagnosis = max(0.0, DIAGNOSIS_POINTS - WRONG_COST * wrong) if ttd is not None else 0.0
    total = timed(DETECT_POINTS, ttd) + timed(REMEDY_POINTS, ttr) + diagnosis - HARM_COST * harms
    return round(min(100.0, max(0.0, total)), 1)


@dataclass(frozen=True)
class _Index:
    """The journal's events grouped once: per drill run, and the learners' own events per learner (in append order)."""

    runs: dict[str, list[Event]]
    mine: dict[tuple[str | None, str], list[Event]]  # (learner, kind) -> events
    active: list[tuple[int, float, str, str]]  # (first fault id, end id, ground truth, run id) of each injected run
    ids: dict[tuple[str | None, str], list[int]] = field(default_factory=dict)  # `mine`'s ids, made on first use

    @classmethod
    def of(cls, events: Sequence[Event]) -> _Index:
        runs: dict[str, list[Event]] = {}
        mine: dict[tuple[str | None, str], list[Event]] = {}
        for e in events:
            if e.run_id:
                runs.setdefault(e.run_id, []).append(e)
            if e.kind in (LEARNER_DECLARED, LEARNER_ACTION):
                mine.setdefault((e.learner, e.kind), []).append(e)
        active = []
        for run_id, run in runs.items():
            started = next((e for e in run if e.kind == DRILL_STARTED), None)
            first = next((e for e in run if e.kind == FAULT_INJECTED), None)
            if started and first:
                end = next((e.id for e in run if e.kind == DRILL_ENDED), float("inf"))
                active.append((first.id, end, str(started.payload.get("diagnosis")), run_id))
        return cls(runs, mine, active)

    def about_another_run(self, declaration: Event, run_id: str) -> bool:
        """The declaration names the ground truth of another run that had a fault in place when it was made."""
        named = declaration.payload.get("diagnosis")
        return any(s < declaration.id < e and truth == named and r != run_id for s, e, truth, r in self.active)

    def between(self, learner: str | None, kind: str, after: int, before: float) -> list[Event]:
        """The learner's events of `kind` appended after event id `after` and before id `before`."""
        events = self.mine.get((learner, kind), [])
        ids = self.ids.setdefault((learner, kind), [e.id for e in events])
        return events[bisect_right(ids, after) : bisect_left(ids, before)]


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
    if not injected:
        return RunGrade(
            run_id, drill, learner, truth, None, None, None, 0, None, None, "not injected", time_limit=limit
        )
    first = injected[0]
    last_id = ended.id if ended else float("inf")
    declared = index.between(learner, LEARNER_DECLARED, first.id, last_id)
    right = next((e for e in declared if e.payload.get("diagnosis") == truth), None)
    # A declaration naming the diagnosis of another run active then is about that run (overlapping drills).
    wrong = [
        e
        for e in declared
        if e.payload.get("diagnosis") != truth
        and not index.about_another_run(e, run_id)
        and (right is None or e.id < right.id)
    ]
    actions = index.between(learner, LEARNER_ACTION, first.id, last_id)
    remediated = next((e for e in run if e.kind == DRILL_REMEDIATED), None)
    remediated_at = ttr = fixed_at = None
    if remediated is not None:
        span_start = float(remediated.payload.get("span_start", remediated.ts))
        seen_at = float(remediated.payload.get("seen_at", span_start))  # the first good probe's end
        # A fix began after the fault was in place (an action begun before it, journaled after, fixes nothing) and
        # before the probe that saw the service healthy had finished looking.
        fixes = [a for a in actions if a.id < remediated.id and first.ts - SKEW <= a.ts <= seen_at + SKEW]
        if fixes:
            fixed_at = fixes[-1].ts
            # A probe that began before the fix may see its effect: the span cannot start before the fix did.
            remediated_at = max(span_start, min(fixed_at, seen_at))
            ttr = max(0.0, remediated_at - first.ts)
    if remediated_at is not None:
        outcome = "remediated"
    elif remediated is not None:
        outcome = "self-healed"  # the conditions held again with no learner action before: nothing to credit
    elif runner_outcome in ("time_limit", "remediated", "running"):
        outcome = "not remediated"
    else:
        outcome = runner_outcome  # aborted, interrupted, error, reset: the run ended before it could be graded fully
    targets = {str(e.payload.get("details", {}).get("alias")) for e in injected if e.payload.get("type") == "bad_model"}
    harms = tuple(h for h in (_harm(a.payload, targets) for a in actions) if h)
    ttd = max(0.0, right.ts - first.ts) if right else None
    return RunGrade(
        run_id,
        drill,
        learner,
        truth,
        first.ts,
        right.ts if right else None,
        ttd,
        len(wrong),
        remediated_at,
        ttr,
        outcome,
        harms,
        _score(limit, ttd, ttr, len(wrong), len(harms)),
        limit,
        fixed_at,
        bool(started.payload.get("blind")),
        ended is not None,
    )


def grade(events: Iterable[Event], learner: str | None = None) -> list[RunGrade]:
    """Every drill run in `events` (in append order), optionally of one learner, oldest first."""
    ordered = sorted(events, key=lambda e: e.id)
    index = _Index.of(ordered)
    grades = [_grade(index, run_id) for run_id in _run_ids(ordered)]
    return [g for g in grades if learner is None or g.learner == learner]
