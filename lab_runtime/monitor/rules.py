"""Alert rules as data: YAML files of rules (signal, comparison, threshold, `for`, an optional `resolve_threshold`,
severity, summary, runbook).

The built-in rules ship in `rules.yaml` beside this module; a learner's rules live in `.lab/rules/*.yaml`.
A file that fails validation is reported with its file and field, and the rules it held last time it was
good keep running.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lab_runtime.durations import Seconds
from lab_runtime.errors import InvalidRules
from lab_runtime.files.yamlfile import load_model
from lab_runtime.monitor.signals import catalog, is_known

BUILTIN_RULES = Path(__file__).with_name("rules.yaml")
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
# The comparison that holds exactly when each ordering comparison does not: where a firing alert resolves.
NEGATED = {"<": ">=", "<=": ">", ">": "<=", ">=": "<"}
# Where a resolve threshold may sit for each comparison: on the far side of the threshold from the firing values.
FAR_SIDE: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "<": (operator.ge, ">="),
    "<=": (operator.ge, ">="),
    ">": (operator.le, "<="),
    ">=": (operator.le, "<="),
}


class Rule(BaseModel):
    """Fires when `signal <comparison> threshold` has held for `for` seconds; resolves when it stops holding. With a
    `resolve_threshold` (hysteresis), a firing alert resolves only once `signal <comparison> resolve_threshold`
    stops holding: between the two thresholds it keeps firing, so a value hovering at the threshold pages once."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    signal: str
    comparison: Literal[">", ">=", "<", "<=", "==", "!="]
    threshold: float
    for_: Seconds = Field(0.0, alias="for")
    resolve_threshold: float | None = None
    severity: Literal["info", "warning", "critical"] = "warning"
    summary: str = Field(min_length=1)
    runbook: str = Field(min_length=1)

    @field_validator("signal")
    @classmethod
    def _known(cls, signal: str) -> str:
        if not is_known(signal):
            raise ValueError(f"unknown signal {signal!r}; signals are: {catalog()}")
        return signal

    @field_validator("threshold")
    @classmethod
    def _finite(cls, threshold: float) -> float:
        if not math.isfinite(threshold):
            raise ValueError("the threshold must be a finite number")
        return threshold

    @field_validator("resolve_threshold")
    @classmethod
    def _finite_resolve(cls, resolve: float | None) -> float | None:
        if resolve is not None and not math.isfinite(resolve):
            raise ValueError("resolve_threshold must be a finite number")
        return resolve

    @model_validator(mode="after")
    def _resolve_beyond_threshold(self) -> Rule:
        if self.resolve_threshold is None:
            return self
        if self.comparison not in FAR_SIDE:
            raise ValueError(f"resolve_threshold has no meaning for the comparison {self.comparison!r}; remove it")
        beyond, side = FAR_SIDE[self.comparison]
        if not beyond(self.resolve_threshold, self.threshold):
            raise ValueError(
                f"resolve_threshold {self.resolve_threshold:g} is on the firing side of the threshold"
                f" {self.threshold:g}: for {self.comparison!r} it must be {side} the threshold"
            )
        return self

    @field_validator("summary")
    @classmethod
    def _template(cls, summary: str) -> str:
        try:
            summary.format(value=1.0, threshold=1.0, detail="x")
        except Exception as exc:  # any formatting error is a bad template, named as such
            raise ValueError(f"the summary may use only {{value}}, {{threshold}} and {{detail}} ({exc!r})") from None
        return summary

    def holds(self, value: float, firing: bool = False) -> bool:
        """Whether the condition holds: against the threshold, or for an alert already `firing`, against the
        resolve threshold when the rule has one."""
        limit = self.resolve_threshold if firing and self.resolve_threshold is not None else self.threshold
        return COMPARISONS[self.comparison](value, limit)

    def describe(self, value: float, detail: str) -> str:
        return self.summary.format(value=value, threshold=self.threshold, detail=detail)


class RuleFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[Rule] = Field(min_length=1)

    @field_validator("rules")
    @classmethod
    def _unique(cls, rules: list[Rule]) -> list[Rule]:
        names = [r.name for r in rules]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"rule name(s) used twice: {', '.join(twice)}")
        return rules


def load_rules(path: Path) -> list[Rule]:
    """The rules of one file; InvalidRules names the file and the field."""
    return load_model(path, RuleFile, InvalidRules, "rule file").rules


@dataclass
class RuleBook:
    """The built-in rules plus every file in `rules_dir`, re-read when a file changes."""

    rules_dir: Path
    builtin: Path = BUILTIN_RULES
    errors: dict[str, str] = field(default_factory=dict)  # file -> why its latest version is refused
    duplicates: list[str] = field(default_factory=list)
    _good: dict[Path, list[Rule]] = field(default_factory=dict)
    _seen: dict[Path, float] = field(default_factory=dict)

    def files(self) -> list[Path]:
        learner = sorted(self.rules_dir.glob("*.yaml")) + sorted(self.rules_dir.glob("*.yml"))
        return [self.builtin, *learner]

    def reload(self) -> list[Rule]:
        """The rules in force: each file's last good version; a name defined twice keeps the first."""
        files = self.files()
        for gone in (set(self._good) | set(self._seen)) - set(files):
            self._good.pop(gone, None)
            self._seen.pop(gone, None)
        self.errors = {f: e for f, e in self.errors.items() if Path(f) in files}
        for path in files:
            try:
                mtime = path.stat().st_mtime
            except OSError:
                continue
            if self._seen.get(path) == mtime:
                continue
            try:
                self._good[path] = load_rules(path)
                self.errors.pop(str(path), None)
            except InvalidRules as exc:
                self.errors[str(path)] = str(exc)
            self._seen[path] = mtime  # after the attempt: a failure is recorded, not skipped next time
        rules: dict[str, Rule] = {}
        self.duplicates = []
        for path in files:
            for rule in self._good.get(path, []):
                if rule.name in rules:
                    self.duplicates.append(f"{path}: rule {rule.name!r} is already defined elsewhere; ignored")
                else:
                    rules[rule.name] = rule
        return list(rules.values())

    def problems(self) -> list[str]:
        return [*self.errors.values(), *self.duplicates]

    def source(self, rule: Rule) -> str:
        return next((str(p) for p, rules in self._good.items() if rule in rules), "?")
