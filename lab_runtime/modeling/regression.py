"""What makes a drill's model version worse (validated options; light to import: no scikit-learn)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lab_runtime.modeling.columns import CATEGORICAL_FEATURES, FEATURES
from lab_runtime.modeling.population import categories, check_numeric


class Regression(BaseModel):
    """What makes a drill's version worse. None of it is logged: a learner finds it from metrics or behaviour."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    noisy_labels: float = Field(
        0.0, ge=0.0, le=0.5, description="share of training labels flipped (seeded), where a fit is surest"
    )
    drop_feature: str | None = Field(None, description="a feature the model ignores (the signature keeps it)")
    slow_predict_ms: float = Field(0.0, ge=0.0, le=10_000.0, description="sleep added to every predict call")
    repaid_from: dict[str, float] = Field(
        default_factory=dict,
        description="a labelling bug: applicants at or over any of these numeric limits are trained on as repaid",
    )
    repaid_in: dict[str, list[str]] = Field(
        default_factory=dict,
        description="a labelling bug: applicants in any of these categories (feature: categories) are trained on as "
        "repaid, e.g. {purpose: [education]}: a slice regression the overall accuracy hides",
    )

    @field_validator("drop_feature")
    @classmethod
    def _known_feature(cls, value: str | None) -> str | None:
        if value is not None and value not in FEATURES:
            raise ValueError(f"unknown feature {value!r}; choose one of {', '.join(FEATURES)}")
        return value

    @field_validator("repaid_from")
    @classmethod
    def _numeric_features(cls, limits: dict[str, float]) -> dict[str, float]:
        check_numeric(limits)
        return limits

    @field_validator("repaid_in")
    @classmethod
    def _known_categories(cls, chosen: dict[str, list[str]]) -> dict[str, list[str]]:
        for feature, values in chosen.items():
            if feature not in CATEGORICAL_FEATURES:
                known = ", ".join(CATEGORICAL_FEATURES)
                raise ValueError(f"unknown categorical feature {feature!r}; choose from {known}")
            if unknown := [v for v in values if v not in categories(feature)]:
                known = ", ".join(categories(feature))
                raise ValueError(f"{unknown[0]!r} is not a category of {feature}; they are {known}")
        return chosen
