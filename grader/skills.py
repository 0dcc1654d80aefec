"""The skills matrix (`labs/skills.yaml`): skills, the evidence that shows each level of them, and roles with the
level they need per skill at day 30, 60 and 90; and a learner's levels from their graded results. Pure, except
`load_matrix` (reads the file).

A skill's level is the highest level any of its evidence shows: a lab (all of it, or some of its steps), drill runs
(of a kind or one drill, detected, mitigated or remediated, blind, within a time, with the best lever), or a share
of a capstone rubric dimension.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from grader.capstone import DIMENSIONS, capstone_summary
from grader.results import Bundle, LabResult, lab_results, learner_runs
from lab_runtime.durations import Seconds, format_duration
from lab_runtime.errors import InvalidSkills
from lab_runtime.files.yamlfile import load_model
from lab_runtime.journal import Event

MATRIX = Path(__file__).resolve().parent.parent / "labs" / "skills.yaml"
MILESTONES = ("day-30", "day-60", "day-90")
_SLUG = r"^[a-z0-9][a-z0-9-]*$"
Outcome = Literal["detected", "mitigated", "remediated"]


class Level(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    level: int = Field(ge=1)
    name: str = Field(min_length=1)
    meaning: str = Field(min_length=1)


class DrillEvidence(BaseModel):
    """Runs of a drill kind (or of one drill) that went as far as `outcome`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: str | None = None
    id: str | None = None
    outcome: Outcome = "remediated"
    blind: bool = False  # only runs the learner did not know the drill of
    within: Seconds | None = Field(None, gt=0, description="the outcome's time (TTD, TTM or TTR) at most")
    best_lever: bool = False  # only runs whose first lever was the drill's best (output drills)
    count: int = Field(1, ge=1, description="runs needed")

    @model_validator(mode="after")
    def _one_target(self) -> DrillEvidence:
        if (self.kind is None) == (self.id is None):
            raise ValueError("name a drill kind (`kind`) or one drill (`id`), one of them")
        return self


class CapstoneEvidence(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    dimension: str
    min: float = Field(ge=0, le=1, description="the share of the dimension needed, 0 to 1")
    passed: bool = False  # the capstone as a whole passed too


class Evidence(BaseModel):
    """One way to show a level: a lab, drill runs or a capstone line; exactly one of them."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    level: int = Field(ge=1)
    lab: str | None = None
    steps: tuple[str, ...] = ()  # with `lab`: these steps passed (none: the whole lab completed)
    drill: DrillEvidence | None = None
    capstone: CapstoneEvidence | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Evidence:
        if sum(x is not None for x in (self.lab, self.drill, self.capstone)) != 1:
            raise ValueError("give one of `lab`, `drill` or `capstone`")
        if self.steps and self.lab is None:
            raise ValueError("`steps` belong with a `lab`")
        return self


class Skill(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=_SLUG)
    title: str = Field(min_length=1)
    evidence: tuple[Evidence, ...] = Field(min_length=1)


class Role(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=_SLUG)
    title: str = Field(min_length=1)
    milestones: dict[str, dict[str, int]]  # day-30, day-60 and day-90: skill -> the level needed


class Matrix(BaseModel):
    """The skills matrix as its file says, checked within itself (its references to labs, drills and the capstone's
    dimensions: `check_references`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    levels: tuple[Level, ...] = Field(min_length=1)
    skills: tuple[Skill, ...] = Field(min_length=1)
    roles: tuple[Role, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Matrix:
        numbers = [lv.level for lv in self.levels]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(f"levels: number them 1, 2, ... in order (got {numbers})")
        top = len(numbers)
        for kind, ids in (("skill", [s.id for s in self.skills]), ("role", [r.id for r in self.roles])):
            if twice := sorted({i for i in ids if ids.count(i) > 1}):
                raise ValueError(f"{kind} id(s) given twice: {', '.join(twice)}")
        skills = {s.id for s in self.skills}
        for s in self.skills:
            if bad := [e.level for e in s.evidence if e.level > top]:
                raise ValueError(f"skill {s.id}: evidence for level {bad[0]}, but the levels go up to {top}")
        for r in self.roles:
            if unknown := sorted(set(r.milestones) - set(MILESTONES)):
                raise ValueError(f"role {r.id}: unknown milestone(s) {', '.join(unknown)}; use {', '.join(MILESTONES)}")
            before: dict[str, int] = {}
            for day in MILESTONES:
                needs = r.milestones.get(day)
                if needs is None:
                    raise ValueError(f"role {r.id}: give the milestones {', '.join(MILESTONES)}")
                if unknown := sorted(set(needs) - skills):
                    raise ValueError(
                        f"role {r.id}, {day}: unknown skill(s) {', '.join(unknown)}; skills are {', '.join(skills)}"
                    )
                for skill, need in needs.items():
                    if not 0 <= need <= top:
                        raise ValueError(f"role {r.id}, {day}, {skill}: level {need} is not between 0 and {top}")
                for skill, earlier in before.items():
                    if needs.get(skill, 0) < earlier:
                        raise ValueError(
                            f"role {r.id}, {day}, {skill}: needs level {earlier} or more (an earlier milestone does)"
                        )
                before = dict(needs)
        return self

    def role(self, role_id: str) -> Role:
        for r in self.roles:
            if r.id == role_id:
                return r
        known = ", ".join(r.id for r in self.roles)
        raise InvalidSkills(f"unknown role {role_id!r}; roles are {known} (labs/skills.yaml)")

    def level_name(self, level: int) -> str:
        return "none" if level == 0 else self.levels[level - 1].name


@dataclass(frozen=True)
class References:
    """What the matrix may name: lab ids with their step ids, drill ids with their kinds."""

    labs: Mapping[str, Sequence[str]]
    drills: Mapping[str, str]


def check_references(matrix: Matrix, refs: References) -> list[str]:
    """Every reference of the matrix that names no lab, step, drill, drill kind or capstone dimension, each as
    `field: problem`."""
    kinds = sorted(set(refs.drills.values()))
    problems = []
    for i, skill in enumerate(matrix.skills):
        for j, e in enumerate(skill.evidence):
            at = f"skills.{i}.evidence.{j}"
            if e.lab is not None and e.lab not in refs.labs:
                problems.append(f"{at}.lab: unknown lab {e.lab!r}; labs are {', '.join(refs.labs)}")
            elif e.lab is not None and (unknown := [s for s in e.steps if s not in refs.labs[e.lab]]):
                steps = ", ".join(refs.labs[e.lab])
                problems.append(f"{at}.steps: {e.lab} has no step {unknown[0]!r}; its steps are {steps}")
            if e.drill is not None and e.drill.kind is not None and e.drill.kind not in kinds:
                problems.append(f"{at}.drill.kind: unknown drill kind {e.drill.kind!r}; kinds are {', '.join(kinds)}")
            if e.drill is not None and e.drill.id is not None and e.drill.id not in refs.drills:
                problems.append(f"{at}.drill.id: no drill {e.drill.id!r} in the catalog (`lab drill list`)")
            if e.capstone is not None and e.capstone.dimension not in DIMENSIONS:
                known = ", ".join(DIMENSIONS)
                problems.append(f"{at}.capstone.dimension: unknown dimension {e.capstone.dimension!r}; use {known}")
    return problems


def load_matrix(refs: References, path: Path = MATRIX) -> Matrix:
    """The matrix in `path`, its references checked; InvalidSkills naming the file and every bad field."""
    matrix = load_model(path, Matrix, InvalidSkills, "skills matrix")
    if problems := check_references(matrix, refs):
        raise InvalidSkills(f"{path}: {'; '.join(problems)}")
    return matrix


# -- a learner's levels ------------------------------------------------------------------------------------------


class LabRecord(Protocol):
    @property
    def lab(self) -> str: ...
    @property
    def completed(self) -> bool: ...
    @property
    def steps(self) -> tuple[str, ...]: ...


class RunRecord(Protocol):
    @property
    def drill(self) -> str: ...
    @property
    def blind(self) -> bool: ...
    @property
    def finished(self) -> bool: ...
    @property
    def ttd(self) -> float | None: ...
    @property
    def ttm(self) -> float | None: ...
    @property
    def ttr(self) -> float | None: ...
    @property
    def verdict(self) -> str | None: ...


@dataclass(frozen=True)
class Results:
    """A learner's graded results, from their journal or a verified bundle."""

    labs: Sequence[LabRecord]
    runs: Sequence[RunRecord]
    capstone: Mapping[str, Any] | None = None


def from_bundle(bundle: Bundle) -> Results:
    return Results(bundle.labs, bundle.runs, bundle.capstone)


def from_journal(events: Sequence[Event], learner: str) -> Results:
    """`learner`'s results as their bundle would hold them now."""
    own = [e for e in events if e.learner == learner]
    labs = [LabResult.model_validate(lab) for lab in lab_results(own)]
    return Results(labs, learner_runs(events, learner), capstone_summary(events, learner))


def _run_time(run: RunRecord, outcome: str) -> float | None:
    return {"detected": run.ttd, "mitigated": run.ttm, "remediated": run.ttr}[outcome]


def shown_by(e: Evidence, results: Results, kinds: Mapping[str, str]) -> str | None:
    """What in `results` meets evidence `e`, in a few words; None when nothing does."""
    if e.lab is not None:
        for lab in results.labs:
            if lab.lab == e.lab and (lab.completed if not e.steps else set(e.steps) <= set(lab.steps)):
                return f"{e.lab} {'steps ' + ', '.join(e.steps) if e.steps else 'completed'}"
        return None
    if e.drill is not None:
        d = e.drill
        runs = [
            r
            for r in results.runs
            if r.finished
            and (r.drill == d.id if d.id is not None else kinds.get(r.drill) == d.kind)
            and (r.blind or not d.blind)
            and (t := _run_time(r, d.outcome)) is not None
            and (d.within is None or t <= d.within)
            and (r.verdict == "best" or not d.best_lever)
        ]
        if len(runs) < d.count:
            return None
        what = d.id or f"{d.kind} drill"
        extra = (" blind" if d.blind else "") + (f" within {format_duration(d.within)}" if d.within else "")
        return f"{len(runs)} {what} run(s) {d.outcome}{extra}"
    assert e.capstone is not None
    cap = results.capstone or {}
    share = (cap.get("dimensions") or {}).get(e.capstone.dimension)
    if not cap.get("finished") or share is None or share < e.capstone.min or (e.capstone.passed and not cap["passed"]):
        return None
    return f"capstone {e.capstone.dimension} {share:.0%}" + (" (passed)" if e.capstone.passed else "")


@dataclass(frozen=True)
class SkillLevel:
    skill: str
    title: str
    level: int
    name: str
    evidence: str | None  # what showed it (None at level 0)


def levels(matrix: Matrix, results: Results, kinds: Mapping[str, str]) -> list[SkillLevel]:
    """Each skill's level in `results` (`kinds`: drill id -> kind) and the evidence that showed it."""
    found = []
    for skill in matrix.skills:
        best, shown = 0, None
        for e in sorted(skill.evidence, key=lambda x: -x.level):
            if e.level > best and (what := shown_by(e, results, kinds)) is not None:
                best, shown = e.level, what
        found.append(SkillLevel(skill.id, skill.title, best, matrix.level_name(best), shown))
    return found


@dataclass(frozen=True)
class Gap:
    skill: str
    level: int
    needed: int


@dataclass(frozen=True)
class Progress:
    """Where a learner stands against their role: the first milestone not met yet (None: all met) and its gaps."""

    role: str
    milestone: str | None
    gaps: tuple[Gap, ...]
    met: tuple[str, ...]  # milestones already met


def progress(role: Role, found: Sequence[SkillLevel], milestone: str | None = None) -> Progress:
    """The gaps to `milestone`, or to the role's next milestone not met yet."""
    have = {s.skill: s.level for s in found}

    def gaps(day: str) -> tuple[Gap, ...]:
        needs = role.milestones[day]
        return tuple(Gap(k, have.get(k, 0), n) for k, n in needs.items() if have.get(k, 0) < n)

    met = tuple(day for day in MILESTONES if not gaps(day))
    target = milestone or next((day for day in MILESTONES if day not in met), None)
    return Progress(role.id, target, gaps(target) if target else (), met)


@dataclass(frozen=True)
class LearnerSkills:
    """A learner's levels, and their standing against their role's next milestone (or the one asked)."""

    learner: str
    levels: tuple[SkillLevel, ...]
    role: Role | None
    progress: Progress | None


def cohort_skills(
    matrix: Matrix,
    bundles: Sequence[Bundle],
    kinds: Mapping[str, str],
    roles: Mapping[str, str],
    milestone: str | None = None,
) -> list[LearnerSkills]:
    """Each learner's levels (one bundle each) and progress against their role: `roles` maps a learner to a role
    id, `*` to everyone else's (a learner with neither has no role)."""
    found = []
    for b in sorted(bundles, key=lambda x: x.learner):
        role_id = roles.get(b.learner, roles.get("*"))
        role = matrix.role(role_id) if role_id else None
        have = tuple(levels(matrix, from_bundle(b), kinds))
        found.append(LearnerSkills(b.learner, have, role, progress(role, have, milestone) if role else None))
    return found


def load_roles(path: Path, matrix: Matrix) -> dict[str, str]:
    """A YAML mapping of learner -> role id (`*`: everyone else); InvalidSkills naming the file and the learner."""
    from lab_runtime.files.yamlfile import read_mapping

    raw = read_mapping(path, InvalidSkills, "roles file")
    known = {r.id for r in matrix.roles}
    for learner, role in raw.items():
        if not isinstance(role, str) or role not in known:
            raise InvalidSkills(f"{path}: {learner}: unknown role {role!r}; roles are {', '.join(sorted(known))}")
    return {str(k): str(v) for k, v in raw.items()}
