"""A learner's row on the console (pure): their sandbox's health, current lab and steps, the drill under way with
what they declared and did, alerts firing, graded runs (TTD, TTM and TTR as they happen) and skill levels."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from grader.grading import RunGrade, grade
from grader.results import lab_results
from lab_runtime.events import (
    ALERT_FIRING,
    ALERT_RESOLVED,
    CAPSTONE_ENDED,
    CAPSTONE_STARTED,
    GRADED,
    LAB_CHECK,
    LAB_STARTED,
)
from lab_runtime.journal import Event

# The kinds a row is built from (probe results, most of a journal, are not among them).
ROW_KINDS = (*map(str, GRADED), LAB_STARTED, LAB_CHECK, ALERT_FIRING, ALERT_RESOLVED, CAPSTONE_STARTED, CAPSTONE_ENDED)
OFFLINE_AFTER = 15.0  # seconds without a word from a sandbox before it shows as offline


@dataclass(frozen=True)
class Health:
    status: str  # healthy | degraded | offline | not joined
    detail: str


def health(
    services: Mapping[str, bool] | None, seen: float | None, now: float, failure: tuple[str, float] | None = None
) -> Health:
    """A sandbox's health from what its agent last said and when; `failure`: why and when the learner's server
    (behind the class hub) last failed to start, shown unless their agent was heard from since."""
    if failure and (seen is None or failure[1] > seen):
        return Health("failed", f"their server did not start: {failure[0]}")
    if seen is None:
        return Health("not joined", "its agent has not reached the console yet")
    if now - seen > OFFLINE_AFTER:
        return Health("offline", f"last heard from {now - seen:.0f}s ago")
    down = sorted(name for name, ok in (services or {}).items() if not ok)
    if down:
        return Health("degraded", f"not healthy: {', '.join(down)}")
    return Health("healthy", f"{len(services or {})} services healthy")


@dataclass(frozen=True)
class Run:
    """A drill run as the console shows it: its grade so far, and the learner's declarations and moves in it."""

    run_id: str
    drill: str
    blind: bool
    finished: bool
    outcome: str
    ttd: float | None
    ttm: float | None
    ttr: float | None
    score: float
    declared: tuple[str, ...]
    moves: tuple[str, ...]


def _run(g: RunGrade, events: Sequence[Event]) -> Run:
    started = next((e.at for e in events if e.run_id == g.run_id), None)
    ended = next((e.ts for e in events if e.run_id == g.run_id and e.kind == "drill.ended"), None)

    def inside(e: Event) -> bool:
        return started is not None and e.at >= started and (ended is None or e.at <= ended)

    declared = tuple(e.payload.get("diagnosis", "?") for e in events if e.kind == "learner.declared" and inside(e))
    moves = tuple(str(e.payload.get("action", "?")) for e in events if e.kind == "learner.action" and inside(e))
    return Run(
        g.run_id, g.drill, g.blind, g.finished, g.outcome if g.finished else "under way", g.ttd, g.ttm, g.ttr,
        g.score, declared, moves,
    )  # fmt: skip


@dataclass(frozen=True)
class Row:
    learner: str
    health: Health
    runtime: str | None
    lab: str | None
    steps: str | None  # "passed/total" of the current lab
    alerts: tuple[str, ...]
    active: Run | None
    runs: tuple[Run, ...]
    skills: tuple[tuple[str, str], ...] = ()  # (skill, level name) of each skill shown above level 0
    cursor: int = 0  # the newest journal event the console holds (its id in the sandbox's journal)
    last_event: float | None = None  # when that event was written in the sandbox
    order: dict[str, Any] | None = None  # the latest order: action, state, message
    problem: str | None = None  # why the row shows nothing of the learner's events

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def unreadable(learner: str, problem: Exception, health_now: Health, cursor: int) -> Row:
    """The row of a learner whose events the console cannot read as their kinds say: it says so, and the rest of
    the cohort shows as usual."""
    said = f"its events cannot be read ({problem!r})"
    return Row(learner, health_now, None, None, None, (), None, (), cursor=cursor, problem=said)


def for_learner(r: Row) -> Row:
    """What the learner may see of their own row: no blind run still under way (as their bundle leaves it out
    until it ends), and not the instructor's orders (they name the drill)."""
    runs = tuple(x for x in r.runs if x.finished or not x.blind)
    return replace(r, runs=runs, active=r.active if r.active in runs else None, order=None)


def firing(events: Sequence[Event]) -> tuple[str, ...]:
    """The rules firing after `events`, by name."""
    now: dict[str, bool] = {}
    for e in events:
        if e.kind in (ALERT_FIRING, ALERT_RESOLVED):
            now[e.payload["rule"]] = e.kind == ALERT_FIRING
    return tuple(sorted(rule for rule, on in now.items() if on))


def row(
    learner: str,
    events: Sequence[Event],
    services: Mapping[str, bool] | None,
    runtime: str | None,
    seen: float | None,
    cursor: int,
    last_event: float | None,
    now: float,
    skills: Callable[[Sequence[Event], str], tuple[tuple[str, str], ...]] | None = None,
) -> Row:
    """`learner`'s row from their sandbox's events (ROW_KINDS suffice), its last state, when it was last heard
    from (`seen`), and the newest event held (`cursor`) with when it was written (`last_event`)."""
    labs = lab_results([e for e in events if e.learner == learner])
    current = next((e.payload["lab"] for e in reversed(events) if e.kind == LAB_STARTED), None)
    lab = next((entry for entry in labs if entry["lab"] == current), None)
    runs = tuple(_run(g, events) for g in grade(events) if g.learner == learner or g.team is not None)
    return Row(
        learner=learner,
        health=health(services, seen, now),
        runtime=runtime,
        lab=current,
        steps=f"{lab['passed']}/{lab['total']}" if lab else None,
        alerts=firing(events),
        active=next((r for r in reversed(runs) if not r.finished), None),
        runs=runs,
        skills=skills(events, learner) if skills else (),
        cursor=cursor,
        last_event=last_event,
    )
