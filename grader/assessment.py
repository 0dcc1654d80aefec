"""The before/after skill check (`grader/assessment.yaml`): two parallel forms, baseline and final, each a short
blind sequence of drills run and scored like the capstone. Both forms fill the same slots (a drill kind and
difficulty); for each slot they draw different drills when the catalog has two or more, else the same drill under
another seed, so the final is never a replay of the baseline. Pure, except `load_assessment` (reads the file).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from statistics import fmean
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from grader.capstone import Capstone, Rubric, latest_capstone
from lab_runtime.durations import Seconds
from lab_runtime.errors import GradingError
from lab_runtime.events import CAPSTONE_STARTED
from lab_runtime.files.yamlfile import load_model
from lab_runtime.journal import Event

ASSESSMENT = Path(__file__).with_name("assessment.yaml")
FORMS = ("baseline", "final")


class Slot(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: str
    difficulty: Literal["easy", "medium", "hard"]


class Assessment(BaseModel):
    """The slots both forms fill, their pauses and budget, and the capstone's scoring (weights, pass, minimums)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    slots: tuple[Slot, ...] = Field(min_length=1)
    gap: tuple[Seconds, Seconds]
    budget: Seconds = Field(gt=0)
    weights: dict[str, float]
    pass_score: float = Field(alias="pass", ge=0, le=100)
    minimums: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _distinct(self) -> Assessment:
        if len(set(self.slots)) != len(self.slots):
            raise ValueError("slots: each slot once (two of the same kind and difficulty would draw the same drills)")
        return self

    def rubric(self, drills: Sequence[str]) -> Rubric:
        """The capstone rubric a form runs under: its drills, all of them, with the assessment's scoring."""
        return Rubric.model_validate(
            {"drills": list(drills), "count": len(drills), "gap": self.gap, "budget": self.budget,
             "weights": self.weights, "pass": self.pass_score, "minimums": self.minimums}
        )  # fmt: skip


def load_assessment(path: Path = ASSESSMENT) -> Assessment:
    return load_model(path, Assessment, GradingError, "skill check")


def draw(
    assessment: Assessment, form: str, pairing_seed: int, pool: Mapping[tuple[str, str], Sequence[str]]
) -> tuple[str, ...]:
    """The drills `form` runs: per slot, one of `pool[(kind, difficulty)]` (the drills this runtime can run). Both
    forms shuffle a slot's drills with `pairing_seed`: the baseline takes the first, the final the second (the
    first again when there is only one)."""
    if form not in FORMS:
        raise GradingError(f"unknown form {form!r}; forms are {', '.join(FORMS)}")
    drills = []
    for i, slot in enumerate(assessment.slots):
        candidates = sorted(pool.get((slot.kind, slot.difficulty), ()))
        if not candidates:
            raise GradingError(
                f"slot {i + 1} ({slot.difficulty} {slot.kind}): no drill of that kind and difficulty runs here "
                "(`lab drill list`)"
            )
        random.Random(f"{pairing_seed}:slot:{i}").shuffle(candidates)
        drills.append(candidates[FORMS.index(form) % len(candidates)])
    return tuple(drills)


def form_seed(pairing_seed: int, form: str) -> int:
    """The seed a form's capstone runs under (gaps, order, each drill's own seed): another for each form, so a
    slot with one drill runs it differently."""
    return random.Random(f"{pairing_seed}:{form}").randrange(1_000_000)


def _censored(values: Sequence[float | None], limits: Sequence[float]) -> float | None:
    """The mean of `values`, a missing one counted as its run's time limit (a drill never solved is the slowest)."""
    filled = [v if v is not None else limit for v, limit in zip(values, limits, strict=True)]
    return round(fmean(filled), 3) if filled else None


def form_summary(found: Capstone) -> dict[str, Any]:
    """A form as a result bundle holds it: the capstone's summary, with MTTD and MTTR over its runs that injected
    and ended (a run not detected or not remediated counts as its time limit) and the pairing seed. `complete`: it
    ended on its own with every planned drill run (not aborted, its runner not gone): only such a form is paired."""
    body = found.summary()
    if found.ended is None:
        return body | {"form": found.form}
    ran = [g for g in found.grades if g.injected_at is not None and g.finished]
    limits = [g.time_limit for g in ran]
    return body | {
        "form": found.form,
        "pairing_seed": found.pairing_seed,
        "complete": "detail" not in found.ended.payload and len(ran) == found.planned,
        "drills": [g.drill for g in ran],
        "mttd": _censored([g.ttd for g in ran], limits),
        "mttr": _censored([g.ttr for g in ran], limits),
    }


def assessments(events: Sequence[Event], learner: str | None) -> dict[str, dict[str, Any]]:
    """The learner's (or team's) last baseline and last final, as a bundle holds them (a form never started is
    absent)."""
    found = {form: latest_capstone(events, learner, form) for form in FORMS}
    return {form: form_summary(c) for form, c in found.items() if c is not None}


def team_assessments(events: Sequence[Event], learner: str) -> dict[str, dict[str, dict[str, Any]]]:
    """The skill checks of the teams `learner` took one with: team -> its forms."""
    teams = {
        str(e.learner)
        for e in events
        if e.kind == CAPSTONE_STARTED and learner in (e.payload.get("team") or {}).get("members", [])
    }
    return {team: assessments(events, team) for team in sorted(teams)}
