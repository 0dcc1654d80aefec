"""The output policy: how a probability of default becomes a decision, and the decisions never to serve.

A policy is data (`policy.yaml` beside this module, or the learner's own in the state dir), validated on load.
`Policy.decide` and `Policy.violations` are pure: the service calls them for every prediction. What one decision
cannot show, the policy's `window` states over the monitor's window (`WindowRules.breaches`, also pure).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lab_runtime.errors import InvalidPolicy
from lab_runtime.files.yamlfile import load_model
from lab_runtime.modeling.columns import CATEGORICAL_FEATURES, FEATURES
from lab_runtime.modeling.population import categories
from lab_runtime.monitor.rules import COMPARISONS

BUILTIN = Path(__file__).with_name("policy.yaml")
Decision = Literal["approve", "refer", "decline"]


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve_below: float = Field(gt=0, lt=1)
    decline_from: float = Field(gt=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.decline_from < self.approve_below:
            raise ValueError(f"decline_from ({self.decline_from}) is below approve_below ({self.approve_below})")
        return self


class Limit(BaseModel):
    """`feature op value`, for instance `debt_to_income > 0.65`; false when the feature is missing."""

    model_config = ConfigDict(extra="forbid")

    feature: str
    op: Literal[">", ">=", "<", "<=", "==", "!="]
    value: int | float | str

    @field_validator("feature")
    @classmethod
    def _known(cls, feature: str) -> str:
        if feature not in FEATURES:
            raise ValueError(f"unknown feature {feature!r}; features are: {', '.join(FEATURES)}")
        return feature

    @model_validator(mode="after")
    def _comparable(self) -> Limit:
        categorical = self.feature in CATEGORICAL_FEATURES
        if categorical and (self.op not in ("==", "!=") or not isinstance(self.value, str)):
            raise ValueError(f"{self.feature} is a category: compare it with == or != to a name")
        known = categories(self.feature) if categorical else []
        if categorical and self.value not in known:
            raise ValueError(f"{self.value!r} is not a category of {self.feature}; they are {', '.join(known)}")
        if not categorical and isinstance(self.value, str):
            raise ValueError(f"{self.feature} is a number: compare it to a number, not {self.value!r}")
        return self

    def holds(self, features: Mapping[str, Any]) -> bool:
        value = features.get(self.feature)
        if value is None:
            return False
        if isinstance(self.value, str):  # a category: == or != (validated)
            return bool(value == self.value) == (self.op == "==")
        if isinstance(value, bool) or not isinstance(value, int | float):  # a model typed it otherwise: no match
            return False
        return COMPARISONS[self.op](value, self.value)


class Rule(BaseModel):
    """A decision never to serve when every limit of `when` holds."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    decision: Decision
    when: list[Limit] = Field(min_length=1)
    why: str = Field(min_length=1)

    def broken_by(self, decision: str, features: Mapping[str, Any]) -> bool:
        return decision == self.decision and all(limit.holds(features) for limit in self.when)


class Fallback(BaseModel):
    """What decides when the model does not (disabled, or throttled away): decline when any limit of
    `decline_when` holds, else `otherwise`; it never approves, so it never breaks a rule of `never`."""

    model_config = ConfigDict(extra="forbid")

    decline_when: list[Limit] = Field(default_factory=list)
    otherwise: Literal["refer", "decline"] = "refer"

    def decide(self, features: Mapping[str, Any]) -> Decision:
        return "decline" if any(limit.holds(features) for limit in self.decline_when) else self.otherwise


class Band(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min: float = Field(0.0, ge=0, le=1)
    max: float = Field(1.0, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Band:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        return self


class WindowRules(BaseModel):
    """What must hold over the monitor's window: the approval rate within a band, and the probabilities calibrated
    within a tolerance on labelled rows (`calibration_error`, the monitor's quality signal)."""

    model_config = ConfigDict(extra="forbid")

    approval_rate: Band | None = None
    calibration_error: float | None = Field(None, gt=0, le=1, description="at most this, on labelled rows")

    def breaches(self, signals: Mapping[str, float]) -> list[str]:
        """The window rules `signals` break, each as a line; a signal without a value breaks nothing."""
        found = []
        approval, band = signals.get("approval_rate"), self.approval_rate
        if approval is not None and band is not None and not band.min <= approval <= band.max:
            found.append(f"approval rate {approval:.0%} outside {band.min:.0%}-{band.max:.0%}")
        error, tolerance = signals.get("calibration_error"), self.calibration_error
        if error is not None and tolerance is not None and error > tolerance:
            found.append(f"calibration error {error:.3f} over {tolerance:g}")
        return found


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Thresholds
    never: list[Rule] = Field(default_factory=list)
    fallback: Fallback = Field(default_factory=Fallback)
    window: WindowRules = Field(default_factory=WindowRules)

    @field_validator("never")
    @classmethod
    def _unique(cls, rules: list[Rule]) -> list[Rule]:
        ids = [r.id for r in rules]
        if twice := sorted({i for i in ids if ids.count(i) > 1}):
            raise ValueError(f"rule ids must be unique; repeated: {', '.join(twice)}")
        return rules

    def decide(self, probability: float) -> Decision:
        """Approve under `approve_below`, decline from `decline_from`, refer to a reviewer in between."""
        if probability < self.decision.approve_below:
            return "approve"
        return "decline" if probability >= self.decision.decline_from else "refer"

    def violations(self, decision: str, features: Mapping[str, Any]) -> list[str]:
        """The ids of the rules that `decision` on `features` breaks."""
        return [rule.id for rule in self.never if rule.broken_by(decision, features)]


def load_policy(path: Path = BUILTIN) -> Policy:
    """The policy in `path`; a bad file raises InvalidPolicy naming the file and every bad field."""
    return load_model(path, Policy, InvalidPolicy, "output policy")
