"""Seeded credit-risk data: reference and training sets, an endless production stream, delayed labels.

Every row comes from `Population` (feature distributions) and `LabelFunction` (the known truth), so a
drift is a change of their parameters and always has a known ground truth. Same seed, same data.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from lab_runtime.modeling.columns import FEATURES, INTEGER_FEATURES, LABEL, NUMERIC_FEATURES, REQUEST_ID
from lab_runtime.modeling.population import LabelFunction, Population, shifted

# Independent random streams per purpose, so drawing more training rows never changes the stream.
_STREAMS = {"reference": 1, "train": 2, "holdout": 3, "production": 4, "evaluation": 5}


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
