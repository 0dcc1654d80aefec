"""World conditions the pipeline follows besides its release: a changed concept and a stopped label feed.

Drills set them in the release store (`ReleaseStore.set_condition`) and revert them; each value is validated
here. Pure: nothing here does I/O.

- `concept` (`ConceptChange`): the true label function changes; the features stay the same.
- `label_feed` (`LabelFeedStop`): the delayed true labels stop arriving; the learner resumes them.
- `source` (`SourceChange`): an upstream source changed what a numeric feature means (a new scale): every row
  from then on carries the new meaning, its label unchanged. Not a release: nothing to roll back.
- `surge` (`LoadSurge`): production traffic comes `factor` times as fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lab_runtime.files.yamlfile import describe
from lab_runtime.modeling.columns import CATEGORICAL_FEATURES, NUMERIC_FEATURES
from lab_runtime.modeling.population import LabelFunction, categories
from lab_runtime.pipeline.releases import Scale, Shift

CONCEPT = "concept"
LABEL_FEED = "label_feed"
SOURCE = "source"
SURGE = "surge"
MAX_SURGE = 10.0


class ConceptChange(BaseModel):
    """A new truth: the intercept moved, and new weights for the named features (others keep theirs).

    Weights act on standardised features, as in `LabelFunction`; `coef` takes any numeric feature (a weight
    of 0 removes an effect), `category_effect` keys are `column=category`, e.g. `purpose=business`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    intercept_shift: float = Field(0.0, allow_inf_nan=False, ge=-10.0, le=10.0)
    coef: dict[str, float] = {}
    category_effect: dict[str, float] = {}

    @field_validator("coef")
    @classmethod
    def _numeric_features(cls, coef: dict[str, float]) -> dict[str, float]:
        for name, weight in coef.items():
            if name not in NUMERIC_FEATURES:
                raise ValueError(
                    f"unknown numeric feature {name!r}; numeric features are {', '.join(NUMERIC_FEATURES)}"
                )
            _check_weight(name, weight)
        return coef

    @field_validator("category_effect")
    @classmethod
    def _categories(cls, effects: dict[str, float]) -> dict[str, float]:
        for key, weight in effects.items():
            column, _, category = key.partition("=")
            if column not in CATEGORICAL_FEATURES or not category:
                raise ValueError(
                    f"{key!r} is not `column=category`; columns are {', '.join(CATEGORICAL_FEATURES)}, "
                    "e.g. purpose=business"
                )
            known = categories(column)
            if category not in known:
                raise ValueError(f"{category!r} is not a category of {column}; they are {', '.join(known)}")
            _check_weight(key, weight)
        return effects

    @model_validator(mode="after")
    def _changes_something(self) -> ConceptChange:
        if self.intercept_shift == 0 and not self.coef and not self.category_effect:
            raise ValueError("a concept change must change something: set intercept_shift, coef or category_effect")
        return self

    def apply(self, base: LabelFunction) -> LabelFunction:
        """`base` with the intercept moved and the named weights replaced."""
        return LabelFunction(
            intercept=base.intercept + self.intercept_shift,
            coef={**base.coef, **self.coef},
            category_effect={**base.category_effect, **self.category_effect},
        )

    def describe(self) -> str:
        """For drill authors and the journal; never shown to the learner by the pipeline."""
        parts = [f"intercept {self.intercept_shift:+g}"] if self.intercept_shift else []
        parts += [f"{name} weight {weight:g}" for name, weight in {**self.coef, **self.category_effect}.items()]
        return ", ".join(parts)


def _check_weight(name: str, weight: float) -> None:
    if not -10.0 <= weight <= 10.0:  # also refuses NaN
        raise ValueError(f"the weight of {name} must be a number from -10 to 10, not {weight}")


class LabelFeedStop(BaseModel):
    """The label feed is stopped: labels that come due are withheld. `reason` is shown to the learner."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
    reason: str = Field(min_length=1, max_length=200)


class SourceChange(BaseModel):
    """An upstream source changed a numeric feature's meaning: each row is sent with `change` applied (a `shift` in
    reference standard deviations or a `scale`), before the active release's transforms."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    change: Shift | Scale = Field(discriminator="type")
    reason: str = Field(min_length=1, max_length=200, description="for drill authors and the journal")


class LoadSurge(BaseModel):
    """Production traffic comes `factor` times the pipeline's rate."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    factor: float = Field(gt=1.0, le=MAX_SURGE, allow_inf_nan=False)


World = ConceptChange | LabelFeedStop | SourceChange | LoadSurge
CONDITIONS: dict[str, type[World]] = {
    CONCEPT: ConceptChange,
    LABEL_FEED: LabelFeedStop,
    SOURCE: SourceChange,
    SURGE: LoadSurge,
}


def validate_condition(name: str, value: Mapping[str, Any]) -> World:
    """The validated value of condition `name`; ValueError naming the condition and every bad field."""
    model = CONDITIONS.get(name)
    if model is None:
        raise ValueError(f"unknown pipeline condition {name!r}; conditions are {', '.join(CONDITIONS)}")
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise ValueError(f"pipeline condition {name!r}: {describe(exc)}") from None


def label_feed_status(stop: LabelFeedStop | None, since: float | None) -> dict[str, Any]:
    """The label feed as the status file and `lab pipeline status` show it."""
    if stop is None:
        return {"state": "running", "reason": None, "since": None}
    return {"state": "stopped", "reason": stop.reason, "since": since}
