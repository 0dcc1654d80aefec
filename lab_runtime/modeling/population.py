"""The population the data is drawn from, and the known truth: plain parameters, no numpy at import.

`Population` holds the features' distribution parameters (a drift is a copy with some changed) and
`LabelFunction` the probability of default. Validating a release, a condition or a regression names these, so
they live apart from `data`, which draws rows from them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lab_runtime.modeling.columns import NUMERIC_FEATURES

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


@dataclass(frozen=True)
class Population:
    """Distribution parameters of the features. Drifts are copies with some fields changed."""

    age_mean: float = 41.0
    age_std: float = 11.0
    income_log_mean: float = 4.0  # income in thousands, log-normal: median about 55k
    income_log_std: float = 0.45
    loan_to_income_mean: float = 0.35
    credit_score_mean: float = 680.0
    credit_score_std: float = 70.0
    dti_alpha: float = 2.5
    dti_beta: float = 6.0
    open_accounts_rate: float = 5.0
    late_payments_rate: float = 0.6
    home_ownership: dict[str, float] = field(default_factory=lambda: {"rent": 0.42, "mortgage": 0.4, "own": 0.18})
    purpose: dict[str, float] = field(
        default_factory=lambda: {
            "debt_consolidation": 0.38,
            "car": 0.2,
            "home_improvement": 0.17,
            "education": 0.12,
            "business": 0.13,
        }
    )
    region: dict[str, float] = field(default_factory=lambda: {"north": 0.27, "south": 0.3, "east": 0.22, "west": 0.21})
    # feature -> (added shift in reference standard deviations, multiplicative scale about the mean)
    shifts: dict[str, tuple[float, float]] = field(default_factory=dict)
    null_features: frozenset[str] = frozenset()

    def with_shift(self, feature: str, std_shift: float = 0.0, scale: float = 1.0) -> Population:
        """A copy with `feature` moved by `std_shift` reference standard deviations and scaled."""
        if feature not in NUMERIC_FEATURES:
            raise ValueError(f"unknown numeric feature {feature!r}; choose one of {NUMERIC_FEATURES}")
        return dataclasses.replace(self, shifts={**self.shifts, feature: (std_shift, scale)})


@dataclass(frozen=True)
class LabelFunction:
    """The known truth: P(default) = sigmoid(intercept + sum of effects on standardised features)."""

    intercept: float = -1.6
    coef: dict[str, float] = field(
        default_factory=lambda: {
            "credit_score": -1.3,
            "debt_to_income": 0.9,
            "num_late_payments": 0.7,
            "loan_amount": 0.35,
            "income": -0.4,
            "employment_years": -0.3,
            "age": -0.15,
        }
    )
    category_effect: dict[str, float] = field(
        default_factory=lambda: {"purpose=business": 0.6, "purpose=education": 0.3, "home_ownership=own": -0.4}
    )

    def probability(self, frame: pd.DataFrame, stats: dict[str, tuple[float, float]]) -> np.ndarray:
        import numpy as np

        logit = np.full(len(frame), self.intercept)
        for name, weight in self.coef.items():
            mean, std = stats[name]
            logit += weight * (frame[name].to_numpy(dtype=float) - mean) / std
        for key, weight in self.category_effect.items():
            column, value = key.split("=", 1)
            logit += weight * (frame[column].to_numpy() == value)
        result: np.ndarray = 1.0 / (1.0 + np.exp(-logit))
        return result


def shifted(values: pd.Series, mean: float, std: float, std_shift: float, scale: float = 1.0) -> pd.Series:
    """`values` scaled by `scale` about `mean`, then moved by `std_shift` (reference) standard deviations `std`."""
    return mean + (values - mean) * scale + std_shift * std


def check_numeric(features: Iterable[str]) -> None:
    """ValueError naming the first of `features` that is not a numeric feature, if one is not."""
    unknown = [f for f in features if f not in NUMERIC_FEATURES]
    if unknown:
        raise ValueError(f"unknown numeric feature {unknown[0]!r}; choose from {', '.join(NUMERIC_FEATURES)}")


def categories(feature: str) -> list[str]:
    """The categories a categorical feature takes in the population."""
    return list(getattr(Population(), feature))
