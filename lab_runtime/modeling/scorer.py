"""A fitted credit pipeline (scaled numeric and one-hot categorical features, then a binary logistic regression)
as a closed-form scorer over record dicts: the same probabilities as scikit-learn's `predict_proba`, without a
DataFrame, a ColumnTransformer or input validation on every request (those were most of the service's CPU).

`linear_scorer` returns None for any other estimator; the caller then scores with the estimator itself."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class _Numeric:
    name: str
    mean: float
    scale: float
    weight: float


@dataclass(frozen=True)
class _Categorical:
    name: str
    weights: Mapping[Any, float]  # category -> its one-hot column's weight; an unknown category weighs nothing


@dataclass(frozen=True)
class LinearScorer:
    intercept: float
    numeric: tuple[_Numeric, ...]
    categorical: tuple[_Categorical, ...]
    classes: tuple[int, int]
    sleep_ms: float = 0.0  # a pipeline's slow step: every call sleeps as its transform did

    def score(self, records: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """Predicted class and probability of the positive class, as the pipeline's `predict_proba` gives them."""
        if self.sleep_ms:
            time.sleep(self.sleep_ms / 1000.0)
        z = np.full(len(records), self.intercept)
        for num in self.numeric:
            x = np.fromiter((r[num.name] for r in records), dtype=float, count=len(records))
            z += (x - num.mean) / num.scale * num.weight
        for cat in self.categorical:
            z += np.fromiter((cat.weights.get(r[cat.name], 0.0) for r in records), dtype=float, count=len(records))
        positive = 1.0 / (1.0 + np.exp(-z))
        chosen = np.where(positive > 1.0 - positive, self.classes[1], self.classes[0])  # argmax; a tie: the first
        return chosen.astype(int), positive


def linear_scorer(estimator: Any) -> LinearScorer | None:
    """The closed form of `estimator` when it is a credit pipeline (see the module), else None."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from lab_runtime.modeling.model import SlowStep

    if not isinstance(estimator, Pipeline) or len(estimator.steps) not in (2, 3):
        return None
    prep, *middle, clf = (step for _, step in estimator.steps)
    if not isinstance(prep, ColumnTransformer) or not isinstance(clf, LogisticRegression):
        return None
    if len(clf.classes_) != 2 or clf.coef_.shape[0] != 1 or any(not isinstance(m, SlowStep) for m in middle):
        return None
    weights, at = clf.coef_[0], 0
    numeric: list[_Numeric] = []
    categorical: list[_Categorical] = []
    for name, step, columns in prep.transformers_:
        if step == "drop" or (name == "remainder" and step != "passthrough"):
            continue
        names = list(columns)
        if not all(isinstance(c, str) for c in names):
            return None
        if isinstance(step, StandardScaler) and step.with_mean and step.with_std:
            for i, column in enumerate(names):
                numeric.append(_Numeric(column, float(step.mean_[i]), float(step.scale_[i]), float(weights[at])))
                at += 1
        elif (
            isinstance(step, OneHotEncoder)
            and step.handle_unknown == "ignore"
            and step.drop is None
            and not getattr(step, "_infrequent_enabled", False)
        ):
            for column, categories in zip(names, step.categories_, strict=True):
                categorical.append(_Categorical(column, {c: float(weights[at + j]) for j, c in enumerate(categories)}))
                at += len(categories)
        else:
            return None
    if at != len(weights):
        return None
    sleep_ms = sum(float(m.ms) for m in middle)
    classes = (int(clf.classes_[0]), int(clf.classes_[1]))
    return LinearScorer(float(clf.intercept_[0]), tuple(numeric), tuple(categorical), classes, sleep_ms)
