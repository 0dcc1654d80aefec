"""Labs as data: `labs/lab-NN-<slug>/lab.yaml` validated into `Lab`, and the steps judged by checks."""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lab_runtime.errors import InvalidLab, LabError, NotFound
from lab_runtime.files.yamlfile import load_model
from lab_runtime.labs import path_checks  # noqa: F401  (registers the promotion path's checks)
from lab_runtime.labs.checks import CATALOG, CheckContext, CheckResult, run_check
from lab_runtime.modeling.regression import Regression
from lab_runtime.pipeline.releases import Release

LABS_DIR = Path(__file__).resolve().parents[2] / "labs"
_SLUG = r"^[a-z0-9][a-z0-9-]*$"


class CheckRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    args: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _bind(self) -> CheckRef:
        fn = CATALOG.get(self.name)
        if fn is None:
            raise ValueError(f"unknown check {self.name!r}; checks are: {', '.join(sorted(CATALOG))}")
        try:
            inspect.signature(fn).bind(None, **self.args)
        except TypeError as exc:
            params = [p for p in inspect.signature(fn).parameters if p != "ctx"]
            takes = ", ".join(params) or "none"
            raise ValueError(f"bad arguments for check {self.name!r} ({exc}); it takes: {takes}") from None
        return self


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    id: str = Field(pattern=_SLUG)
    title: str = Field(min_length=1)
    check: CheckRef
    hint: str = Field(min_length=1)


class ScriptedEvent(BaseModel):
    """A scripted incident: once step `after` passes, `lab check` ships `ship_release` to the pipeline, or
    starts the drill `run_drill` (blind: the learner finds it from what the sandbox shows, like a real incident)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    after: str
    announce: str = Field(min_length=1)
    ship_release: Release | None = None
    run_drill: str | None = None

    @model_validator(mode="after")
    def _one_action(self) -> ScriptedEvent:
        if (self.ship_release is None) == (self.run_drill is None):
            raise ValueError("an event either ships a release (ship_release) or runs a drill (run_drill), one of them")
        if self.run_drill is not None:
            from drills.spec import find_drill  # labs refer to drills by id; drills build on lab_runtime

            try:
                find_drill(self.run_drill)
            except LabError as exc:
                raise ValueError(str(exc)) from None
        return self


class Candidate(BaseModel):
    """A version a lab registers when it starts: trained on the seeded data, made worse as `regression` says."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$", description="how checks and solutions refer to it")
    description: str = Field(min_length=1, description="the registry's description of the version")
    seed: int = 42
    regression: Regression = Field(default_factory=Regression)


class Lab(BaseModel):
    """One lab, as its lab.yaml says."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    id: str = Field(pattern=r"^lab-\d\d$")
    title: str = Field(min_length=1)
    summary: str = Field(min_length=1)
    objectives: list[str] = Field(min_length=1)
    brief: str = Field(min_length=1)
    starter: list[str] = Field(default_factory=list)
    solution: str = "solution.py"
    steps: list[Step] = Field(min_length=1)
    events: list[ScriptedEvent] = Field(default_factory=list)
    needs_champion: bool = Field(False, description="`lab start` registers a @champion first if there is none")
    require_review: bool = Field(False, description="a canary needs a human review's go (`lab review verdict`)")
    candidates: list[Candidate] = Field(
        default_factory=list, description="versions `lab start` registers for the learner to judge, in order"
    )
    directory: Path = Field(Path("."), exclude=True)

    @field_validator("candidates")
    @classmethod
    def _named_once(cls, candidates: list[Candidate]) -> list[Candidate]:
        names = [c.name for c in candidates]
        if twice := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"candidate name {twice[0]!r} is used twice")
        return candidates

    @field_validator("steps")
    @classmethod
    def _unique(cls, steps: list[Step]) -> list[Step]:
        seen: set[str] = set()
        for step in steps:
            if step.id in seen:
                raise ValueError(f"step id {step.id!r} is used twice")
            seen.add(step.id)
        return steps

    @model_validator(mode="after")
    def _events_follow_steps(self) -> Lab:
        ids = [s.id for s in self.steps]
        for event in self.events:
            if event.after not in ids:
                raise ValueError(f"event after {event.after!r}: no step has that id; steps are {', '.join(ids)}")
        return self

    @model_validator(mode="after")
    def _files_exist(self) -> Lab:
        for name in [*self.starter, self.solution]:
            if not (self.directory / name).is_file():
                raise ValueError(f"file {name!r} named by the lab does not exist in {self.directory}")
        return self


def load_lab(path: Path) -> Lab:
    """Read and validate a lab file; errors name the file and the field."""
    return load_model(path, Lab, InvalidLab, "lab file", {"directory": path.parent})


def all_labs(labs_dir: Path = LABS_DIR) -> list[Lab]:
    return [load_lab(p) for p in sorted(labs_dir.glob("lab-*/lab.yaml"))]


def find_lab(lab_id: str, labs_dir: Path = LABS_DIR) -> Lab:
    """The lab `lab_id` (its folder is `<id>-<slug>`: only that file is read); NotFound lists the labs."""
    for path in labs_dir.glob(f"{lab_id}-*/lab.yaml") if re.fullmatch(r"[a-z0-9-]+", lab_id) else ():
        if (lab := load_lab(path)).id == lab_id:
            return lab
    labs = {lab.id: lab for lab in all_labs(labs_dir)}
    if lab_id not in labs:
        raise NotFound(f"unknown lab {lab_id!r}; labs are: {', '.join(labs) or 'none'} (see `lab labs`)")
    return labs[lab_id]


@dataclass(frozen=True)
class StepResult:
    id: str
    title: str
    passed: bool
    detail: str
    hint: str | None  # only for failing steps


def due_events(lab: Lab, results: list[StepResult], happened: int) -> list[ScriptedEvent]:
    """The events to run now: those after the first `happened`, in order, whose step passed."""
    passed = {r.id for r in results if r.passed}
    due = []
    for event in lab.events[happened:]:
        if event.after not in passed:
            break
        due.append(event)
    return due


def check_lab(lab: Lab, ctx: CheckContext, until_failing: bool = False) -> list[StepResult]:
    """Judge every step from observed state (with `until_failing`, only up to the first that does not pass)."""
    results = []
    for step in lab.steps:
        outcome: CheckResult = run_check(step.check.name, ctx, step.check.args)
        results.append(
            StepResult(step.id, step.title, outcome.passed, outcome.detail, None if outcome.passed else step.hint)
        )
        if until_failing and not outcome.passed:
            break
    return results
