"""The capstone assessment: a rubric file, the seeded plan of blind drills it draws, and the rubric score of the
learner's graded runs. Pure, except `load_rubric` (reads the file)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from grader.grading import RunGrade, grade
from lab_runtime.durations import Seconds
from lab_runtime.errors import GradingError
from lab_runtime.events import CAPSTONE_ENDED, CAPSTONE_STARTED, DRILL_STARTED
from lab_runtime.files.yamlfile import load_model
from lab_runtime.journal import Event

RUBRIC = Path(__file__).with_name("rubric.yaml")
DIMENSIONS = ("detection", "diagnosis", "remediation", "collateral", "time", "decision")
OPTIONAL = ("decision",)  # a rubric may leave it out (weight 0)
VERDICT_SHARE = {"best": 1.0, "acceptable": 0.5}  # harmful, or no lever pulled: 0


class Rubric(BaseModel):
    """What the capstone draws and how it is scored: weights of the dimensions (summing to 100), and the
    thresholds a pass needs: a total score, and optionally a minimum per dimension (a share, 0 to 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    drills: list[str] = Field(min_length=1, description="the pool the capstone draws from (catalog ids)")
    count: int = Field(ge=1, description="how many drills the capstone runs")
    gap: tuple[Seconds, Seconds] = Field(description="a seeded pause in this range before each drill")
    budget: Seconds = Field(gt=0, description="the capstone's whole duration at most, drills included")
    weights: dict[str, float]
    pass_score: float = Field(alias="pass", ge=0, le=100, description="the total score a pass needs")
    minimums: dict[str, float] = Field(default_factory=dict, description="a share each dimension needs, 0 to 1")

    @model_validator(mode="after")
    def _consistent(self) -> Rubric:
        for name, table in (("weights", self.weights), ("minimums", self.minimums)):
            unknown = sorted(set(table) - set(DIMENSIONS))
            if unknown:
                raise ValueError(f"{name}: unknown dimension(s) {', '.join(unknown)}; use {', '.join(DIMENSIONS)}")
        required = [d for d in DIMENSIONS if d not in OPTIONAL]
        if not set(required) <= set(self.weights) or abs(sum(self.weights.values()) - 100) > 1e-6:
            raise ValueError(
                f"weights: give each of {', '.join(required)} (and optionally {', '.join(OPTIONAL)}) a weight, "
                "summing to 100"
            )
        if any(not 0 <= v <= 1 for v in self.minimums.values()):
            raise ValueError("minimums: each is a share between 0 and 1")
        if self.count > len(set(self.drills)):
            raise ValueError(f"count: {self.count} drills asked from a pool of {len(set(self.drills))}")
        if self.gap[0] > self.gap[1]:
            raise ValueError("gap: give the shorter pause first")
        return self


def load_rubric(path: Path = RUBRIC) -> Rubric:
    return load_model(path, Rubric, GradingError, "capstone rubric")


@dataclass(frozen=True)
class Plan:
    drills: tuple[str, ...]
    gaps: tuple[float, ...]  # seconds before each drill (already scaled)
    longest: float  # seconds the capstone may take: every gap plus every drill's time limit


def plan(rubric: Rubric, seed: int, time_limits: dict[str, float], scale: float = 1.0) -> Plan:
    """The seeded drills and gaps; refused when they may not fit the budget (`time_limits`: seconds, per drill)."""
    unknown = sorted(set(rubric.drills) - set(time_limits))
    if unknown:
        raise GradingError(f"the rubric's pool names unknown drill(s): {', '.join(unknown)} (see `lab drill list`)")
    rng = random.Random(f"{seed}:capstone")
    drills = tuple(rng.sample(sorted(set(rubric.drills)), rubric.count))
    gaps = tuple(rng.uniform(*rubric.gap) * scale for _ in drills)
    longest = sum(gaps) + sum(time_limits[d] * scale for d in drills)
    if longest > rubric.budget * scale:
        raise GradingError(
            f"seed {seed} draws drills that may take {longest / scale:.0f}s, over the rubric's budget of "
            f"{rubric.budget:.0f}s; raise the budget, shorten the gaps, or pick shorter drills"
        )
    return Plan(drills, gaps, longest)


@dataclass(frozen=True)
class CapstoneScore:
    dimensions: dict[str, float]  # each a share, 0 to 1
    score: float  # 0 to 100
    passed: bool
    reasons: tuple[str, ...]  # why it failed (empty when passed)
    runs: int


def _shares(grades: Sequence[RunGrade], planned: int, decisions: int = 0) -> dict[str, float]:
    """Each dimension as a share, over the planned drills (a drill that never ran counts as missed; so does an
    output drill, of the `decisions` drawn, that never ran)."""
    n = max(planned, len(grades), 1)
    harms = sum(len(g.collateral) for g in grades)
    judged = [VERDICT_SHARE.get(g.verdict, 0.0) for g in grades if g.verdict is not None]  # output drills

    def timely(g: RunGrade) -> float:
        if g.ttr is None:
            return 0.0
        return max(0.0, 1.0 - g.ttr / g.time_limit) if g.time_limit > 0 else 1.0

    return {
        "detection": sum(g.detected for g in grades) / n,
        "diagnosis": sum(1.0 if g.wrong_declarations == 0 else 0.5 for g in grades if g.detected) / n,
        "remediation": sum(g.ttr is not None for g in grades) / n,
        "collateral": max(0.0, 1.0 - 0.5 * harms),
        "time": sum(timely(g) for g in grades) / n,
        # no output drill drawn: nothing to decide
        "decision": sum(judged) / max(len(judged), decisions) if judged or decisions else 1.0,
    }


def score(rubric: Rubric, grades: Sequence[RunGrade], planned: int, decisions: int = 0) -> CapstoneScore:
    """The rubric's score of `grades` over the `planned` drills, `decisions` of them output drills."""
    shares = _shares(grades, planned, decisions)
    total = round(sum(weight * shares[d] for d, weight in rubric.weights.items()), 1)
    reasons = [f"score {total:g} below the pass mark {rubric.pass_score:g}"] if total < rubric.pass_score else []
    reasons += [
        f"{d} {shares[d]:.0%} below the minimum {need:.0%}" for d, need in rubric.minimums.items() if shares[d] < need
    ]
    weighed = {d: round(v, 3) for d, v in shares.items() if d in rubric.weights}
    return CapstoneScore(weighed, total, not reasons, tuple(reasons), len(grades))


@dataclass(frozen=True)
class Capstone:
    """A capstone found in the journal: its start, end (None while it runs), rubric and graded runs."""

    capstone_id: str
    learner: str | None
    started_at: float
    ended: Event | None
    rubric: Rubric
    planned: int
    seed: int
    grades: tuple[RunGrade, ...]
    decisions: int = 0  # of the planned drills, those with a decision table
    form: str = "capstone"  # or a skill check's form: baseline, final
    pairing_seed: int | None = None  # a skill check's (both forms of a learner draw from it)

    def result(self) -> CapstoneScore:
        return score(self.rubric, self.grades, self.planned, self.decisions)

    def summary(self) -> dict[str, Any]:
        """As a result bundle and `lab capstone score --json` show it. While it runs, only that it runs: a score
        that moved with each declaration would tell which one is right, and the seed names the drills."""
        if self.ended is None:
            return {"capstone_id": self.capstone_id, "finished": False}
        body = {"capstone_id": self.capstone_id, "finished": True, "seed": self.seed, "ended_at": self.ended.ts}
        return body | asdict(self.result())


def form_of(start: Event) -> str:
    """What a `capstone.started` began: `capstone`, or the skill check's `baseline` or `final` form."""
    return str(start.payload.get("form", "capstone"))


def latest_capstone(events: Sequence[Event], learner: str | None, form: str | None = "capstone") -> Capstone | None:
    """The learner's last capstone (`form`: or the last baseline or final skill check; None: whichever ran last),
    its runs being the drill runs tagged with its id."""
    started = [
        e
        for e in events
        if e.kind == CAPSTONE_STARTED
        and (learner is None or e.learner == learner)
        and (form is None or form_of(e) == form)
    ]
    if not started:
        return None
    start = started[-1]
    cid = start.payload["capstone_id"]
    ended = next((e for e in events if e.kind == CAPSTONE_ENDED and e.payload.get("capstone_id") == cid), None)
    tagged = {e.run_id for e in events if e.kind == DRILL_STARTED and e.payload.get("tag") == f"capstone:{cid}"}
    grades = tuple(g for g in grade(events, start.learner) if g.run_id in tagged)
    rubric = Rubric.model_validate(start.payload["rubric"])
    count, seed = int(start.payload["count"]), int(start.payload["seed"])
    decisions = int(start.payload.get("decisions", 0))
    pairing = start.payload.get("pairing_seed")
    return Capstone(
        cid, start.learner, start.ts, ended, rubric, count, seed, grades, decisions, form_of(start),
        None if pairing is None else int(pairing),
    )  # fmt: skip


def capstone_summary(events: Sequence[Event], learner: str | None) -> dict[str, Any] | None:
    """The learner's last capstone as a result bundle holds it, or None."""
    found = latest_capstone(events, learner)
    return found.summary() if found else None
