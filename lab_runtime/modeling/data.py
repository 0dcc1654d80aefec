"""Seeded credit-risk data: reference and training sets, an endless production stream, delayed labels.

Every row comes from `Population` (feature distributions) and `LabelFunction` (the known truth), so a
drift is a change of their parameters and always has a known ground truth. Same seed, same data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lab_runtime.modeling.columns import FEATURES, INTEGER_FEATURES, LABEL, NUMERIC_FEATURES, REQUEST_ID

# Independent random streams per purpose, so drawing more training rows never changes the stream.
_STREAMS = {"reference": 1, "train": 2, "holdout": 3, "production": 4, "evaluation": 5}


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
        logit = np.full(len(frame), self.intercept)
        for name, weight in self.coef.items():
            mean, std = stats[name]
            logit += weight * (frame[name].to_numpy(dtype=float) - mean) / std
        for key, weight in self.category_effect.items():
            column, value = key.split("=", 1)
            logit += weight * (frame[column].to_numpy() == value)
        result: np.ndarray = 1.0 / (1.0 + np.exp(-logit))
        return result


def _draw(rng: np.random.Generator, n: int, pop: Population) -> pd.DataFrame:
    age = np.clip(rng.normal(pop.age_mean, pop.age_std, n), 21, 80)
    income = np.exp(rng.normal(pop.income_log_mean, pop.income_log_std, n))
    loan = income * rng.gamma(4.0, pop.loan_to_income_mean / 4.0, n)
    term = rng.choice([12, 24, 36, 48, 60], n, p=[0.1, 0.2, 0.35, 0.15, 0.2])
    score = np.clip(rng.normal(pop.credit_score_mean, pop.credit_score_std, n), 300, 850)
    dti = rng.beta(pop.dti_alpha, pop.dti_beta, n)
    accounts = rng.poisson(pop.open_accounts_rate, n)
    late = rng.poisson(pop.late_payments_rate, n)
    employment = np.clip(rng.exponential(6.0, n), 0, age - 18)

    def pick(options: dict[str, float]) -> np.ndarray:
        return rng.choice(list(options), n, p=np.array(list(options.values())) / sum(options.values()))

    return pd.DataFrame(
        {
            "age": age,
            "income": np.round(income, 2),
            "loan_amount": np.round(loan, 2),
            "loan_term_months": term,
            "credit_score": np.round(score, 1),
            "debt_to_income": np.round(dti, 4),
            "num_open_accounts": accounts,
            "num_late_payments": late,
            "employment_years": employment,
            "home_ownership": pick(pop.home_ownership),
            "purpose": pick(pop.purpose),
            "region": pick(pop.region),
        }
    )


def shifted(values: pd.Series, mean: float, std: float, std_shift: float, scale: float = 1.0) -> pd.Series:
    """`values` scaled by `scale` about `mean`, then moved by `std_shift` (reference) standard deviations `std`."""
    return mean + (values - mean) * scale + std_shift * std


def _shift(frame: pd.DataFrame, pop: Population, stats: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """Apply shifts (in reference standard deviations) and integer types."""
    for name, (std_shift, scale) in pop.shifts.items():
        frame[name] = shifted(frame[name], *stats[name], std_shift, scale)
    for name in INTEGER_FEATURES:
        frame[name] = np.round(frame[name]).astype("int64")
    return frame


class DataGenerator:
    """Deterministic source of every data set in the sandbox. Same seed, same rows."""

    def __init__(
        self,
        seed: int = 42,
        population: Population | None = None,
        labels: LabelFunction | None = None,
    ) -> None:
        self.seed = seed
        self.population = population or Population()
        self.labels = labels or LabelFunction()
        base = _draw(self._rng("reference"), 20_000, Population())
        # Reference statistics fix the units of shifts and of the label function for good.
        self.stats = {n: (float(base[n].mean()), float(base[n].std())) for n in NUMERIC_FEATURES}

    def _rng(self, purpose: str, chunk: int = 0) -> np.random.Generator:
        return np.random.default_rng([self.seed, _STREAMS[purpose], chunk])

    def _sample(self, purpose: str, n: int, chunk: int = 0, population: Population | None = None) -> pd.DataFrame:
        rng = self._rng(purpose, chunk)
        pop = population or self.population
        frame = _shift(_draw(rng, n, pop), pop, self.stats)
        # Labels come from the true values; nulls only hide features from the model.
        frame[LABEL] = (rng.random(n) < self.labels.probability(frame, self.stats)).astype("int64")
        for name in pop.null_features:
            frame[name] = None
        return frame

    def reference(self, n: int = 5_000) -> pd.DataFrame:
        """The monitor's reference window: the population the model was trained on, with labels."""
        return self._sample("reference", n, population=Population())

    def training(self, n: int = 8_000) -> pd.DataFrame:
        """Training rows with labels (features plus the `default` column)."""
        return self._sample("train", n, population=Population())

    def holdout(self, n: int = 2_000) -> pd.DataFrame:
        """Held-out labelled rows for validation gates."""
        return self._sample("holdout", n, population=Population())

    def evaluation(self, n: int = 2_000) -> pd.DataFrame:
        """The evaluation harness's test set: labelled rows of the training population, on a stream of their own
        (never a training, holdout or production row)."""
        return self._sample("evaluation", n, population=Population())

    def production(self, start: int = 0, n: int = 500) -> pd.DataFrame:
        """Production rows `start`..`start+n` (with ids and their delayed labels), under the current population."""
        chunk_size = 500
        first, last = start // chunk_size, (start + n - 1) // chunk_size
        chunks = [self._sample("production", chunk_size, chunk=c) for c in range(first, last + 1)]
        frame = pd.concat(chunks, ignore_index=True).iloc[start - first * chunk_size :][:n]
        frame.insert(0, REQUEST_ID, [f"s{self.seed}-{i}" for i in range(start, start + n)])
        return frame.reset_index(drop=True)

    def stream(self, batch: int = 100) -> Iterator[pd.DataFrame]:
        """The endless production stream, in batches."""
        start = 0
        while True:
            yield self.production(start, batch)
            start += batch


def split_features(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Features in model order, and the label."""
    return frame[list(FEATURES)], frame[LABEL]


def check_numeric(features: Iterable[str]) -> None:
    """ValueError naming the first of `features` that is not a numeric feature, if one is not."""
    unknown = [f for f in features if f not in NUMERIC_FEATURES]
    if unknown:
        raise ValueError(f"unknown numeric feature {unknown[0]!r}; choose from {', '.join(NUMERIC_FEATURES)}")


def categories(feature: str) -> list[str]:
    """The categories a categorical feature takes in the population."""
    return list(getattr(Population(), feature))
