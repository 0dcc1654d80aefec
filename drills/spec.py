"""Drills as data: `drills/catalog/<id>.yaml`, validated before anything runs.

A drill names its kind, a brief for the learner, the ground-truth diagnosis, the steady state (conditions on
probe signals), the faults (type, arguments checked against the fault's parameters, when), the remediation
condition with a hold time, a time limit, and the reference remediation (the `lab` commands that fix it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from drills.conditions import Condition, parse_condition
from drills.faults import FAULTS, Fault, Params
from lab_runtime.durations import Seconds
from lab_runtime.errors import InvalidDrill, NotFound
from lab_runtime.events import LEVERS
from lab_runtime.files.yamlfile import describe, load_model
from lab_runtime.labs.diagnoses import DIAGNOSES
from lab_runtime.service.faults import MAX_TTL

CATALOG_DIR = Path(__file__).with_name("catalog")
EXPIRY_GRACE = 60.0  # seconds faults held by a service or the pipeline outlive the drill's time limit
SERVICE_HELD = ("latency", "errors", "overload")
Kind = Literal["drift", "canary", "rollback", "incident", "output"]
KINDS: tuple[str, ...] = get_args(Kind)
Verdict = Literal["best", "acceptable", "harmful"]
# The steady state every drill checks unless it names its own: the service up, answering, fast and correct.
DEFAULT_STEADY_STATE = (
    "up.model-service == 1",
    "ready == 1",
    "server_error_rate < 0.02",
    "latency_p99_ms < 250",
)


def _conditions(conditions: tuple[str, ...]) -> tuple[str, ...]:
    for text in conditions:
        parse_condition(text)
    return conditions


Conditions = Annotated[tuple[str, ...], AfterValidator(_conditions)]  # each `signal op number`, checked


class FaultSpec(BaseModel):
    """One fault of a drill: its type, its arguments, and when it starts (after the drill's injection time)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: str
    args: dict[str, Any] = Field(default_factory=dict)
    at: Seconds = Field(0.0, description="delay after the drill's injection time")

    @model_validator(mode="after")
    def _args_fit(self) -> FaultSpec:
        fault = FAULTS.get(self.type)
        if fault is None:
            raise ValueError(f"unknown fault type {self.type!r}; types are {', '.join(FAULTS)}")
        try:
            self._params()
        except ValidationError as exc:
            raise ValueError(f"{self.type} args: {describe(exc)}") from None
        return self

    def _params(self) -> Params:
        """The arguments validated strictly: a number must be written as one (`true` is not 1, `"300"` not 300)."""
        return FAULTS[self.type].params.model_validate(self.args, strict=True)

    def build(self) -> Fault:
        return FAULTS[self.type](self._params())


class Remediation(BaseModel):
    """Remediated when every condition (and the steady state) has held for `hold` without a break."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    conditions: Conditions = Field(min_length=1)
    hold: Seconds = Field(30.0, gt=0)
    reference: tuple[str, ...] = Field(min_length=1, description="`lab` commands that remediate (the solution)")

    def parsed(self) -> tuple[Condition, ...]:
        return tuple(parse_condition(c) for c in self.conditions)


class Choice(BaseModel):
    """What pulling one lever first is worth in a drill: its verdict and the points it adds to the score."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    verdict: Verdict
    points: float = Field(ge=-50, le=50)
    why: str = Field(min_length=1, description="the reason, for instructors and whoever writes the lab around it")


def _levers(table: dict[str, Choice]) -> dict[str, Choice]:
    unknown = [lever for lever in table if lever not in LEVERS]
    if unknown:
        raise ValueError(f"unknown lever {unknown[0]!r}; levers are {', '.join(LEVERS)}")
    missing = [lever for lever in LEVERS if lever not in table]
    if missing:
        raise ValueError(f"the table does not judge {', '.join(missing)}; give every lever a verdict")
    if not any(c.verdict == "best" for c in table.values()):
        raise ValueError("the table names no best lever; mark one `verdict: best`")
    return table


DecisionTable = Annotated[dict[str, Choice], AfterValidator(_levers)]


class Drill(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str = Field(min_length=1)
    kind: Kind
    difficulty: Literal["easy", "medium", "hard"]
    brief: str = Field(min_length=1, description="what the learner is told (blind runs tell less)")
    diagnosis: str
    steady_state: Conditions = DEFAULT_STEADY_STATE
    faults: tuple[FaultSpec, ...] = Field(min_length=1)
    remediation: Remediation
    time_limit: Seconds = Field(600.0, gt=0)
    decision: DecisionTable | None = Field(
        None, description="output drills: per lever (rollback, disable, throttle), the verdict and points of it first"
    )

    @property
    def runtimes(self) -> tuple[str, ...]:
        """The runtimes every one of its faults can act on (container faults: compose only)."""
        return tuple(r for r in ("local", "compose") if all(r in FAULTS[f.type].runtimes for f in self.faults))

    def runtime_refusal(self, runtime: str) -> str | None:
        """Why this drill cannot run on `runtime`, or None when it can."""
        if runtime in self.runtimes:
            return None
        return (
            f"drill {self.id} needs the {' or '.join(self.runtimes)} runtime (its faults act on containers); the "
            f"sandbox runs on {runtime}: `lab down`, then `lab up --runtime compose`"
        )

    @field_validator("diagnosis")
    @classmethod
    def _known_diagnosis(cls, diagnosis: str) -> str:
        if diagnosis not in DIAGNOSES:
            raise ValueError(f"unknown diagnosis {diagnosis!r}; diagnoses are {', '.join(DIAGNOSES)}")
        return diagnosis

    @model_validator(mode="after")
    def _decision_for_output(self) -> Drill:
        if self.kind == "output" and self.decision is None:
            raise ValueError("an output drill needs a decision table: per lever, its verdict, points and why")
        if self.kind != "output" and self.decision is not None:
            raise ValueError(f"a decision table belongs to output drills, not to {self.kind} drills")
        return self

    @model_validator(mode="after")
    def _fits_in_time(self) -> Drill:
        last = max(f.at for f in self.faults)
        if last + self.remediation.hold >= self.time_limit:
            raise ValueError(
                f"time_limit {self.time_limit:g}s leaves no time to remediate after the last fault "
                f"(at {last:g}s) and the hold ({self.remediation.hold:g}s)"
            )
        return self

    @model_validator(mode="after")
    def _service_can_hold_it(self) -> Drill:
        held = [f.type for f in self.faults if f.type in SERVICE_HELD]
        if held and self.time_limit + EXPIRY_GRACE > MAX_TTL:
            raise ValueError(
                f"time_limit {self.time_limit:g}s: the model service holds a {held[0]} fault for at most "
                f"{MAX_TTL - EXPIRY_GRACE:g}s (its time limit plus {EXPIRY_GRACE:g}s of grace)"
            )
        return self

    def steady(self) -> tuple[Condition, ...]:
        return tuple(parse_condition(c) for c in self.steady_state)


def load_drill(path: Path) -> Drill:
    """A drill from a YAML file; its id must match the file name. Errors name the file and the field."""
    drill = load_model(path, Drill, InvalidDrill, "drill")
    if drill.id != path.stem:
        raise InvalidDrill(f"{path}: id: {drill.id!r} must match the file name ({path.stem!r})")
    return drill


def catalog(directory: Path = CATALOG_DIR) -> list[Drill]:
    return [load_drill(p) for p in sorted(directory.glob("*.yaml"))]


def find_drill(drill_id: str, directory: Path = CATALOG_DIR) -> Drill:
    path = directory / f"{drill_id}.yaml"
    if not path.exists():
        known = ", ".join(p.stem for p in sorted(directory.glob("*.yaml")))
        raise NotFound(f"no drill {drill_id!r}; drills are {known} (`lab drill list`)")
    return load_drill(path)
