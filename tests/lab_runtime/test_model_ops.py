"""The pure parts of model operations: the champion's previous holder, and the regressed versions drills serve."""

from __future__ import annotations

import pickle
import time
from functools import cache

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from lab_runtime.modeling.data import DataGenerator, split_features
from lab_runtime.modeling.model import TRUSTED_TYPES, Regression, SlowStep, evaluate, fit, flip_labels
from lab_runtime.registry.model_ops import previous_holder
from lab_runtime.registry.rest import AliasChange


def moves(*path: str | None) -> list[dict[str, str | None]]:
    """`champion` payloads for the alias going through `path` in order (starting unset)."""
    return [
        {"model": "credit-risk", "alias": "champion", "before": b, "after": a}
        for b, a in zip((None, *path[:-1]), path, strict=True)
    ]


PREVIOUS: list[tuple[str, list[dict[str, str | None]], str | None, str | None]] = [
    ("simple promotion", moves("1", "2"), "2", "1"),
    ("three promotions", moves("1", "2", "3"), "3", "2"),
    ("after one rollback, the one before", moves("1", "2", "3", "2"), "2", "1"),
    ("two rollbacks in a row never bring back the bad one", moves("1", "2", "3", "2", "1"), "1", None),
    ("rollback --to skips the version rolled back from", moves("1", "2", "3", "1"), "1", "2"),
    ("no history", [], None, None),
    ("only the current champion ever", moves("1"), "1", None),
    ("re-promoted after a rollback counts as good again", moves("1", "2", "1", "2"), "2", "1"),
    ("a newer version after a rollback rolls back to the survivor", moves("1", "2", "1", "3"), "3", "1"),
    ("alias removed, then set again", moves("1", None, "2"), "2", "1"),
    ("a move the journal has not seen yet", moves("1"), "2", "1"),
    ("a rollback the journal has not seen yet", moves("1", "2", "3"), "2", "1"),
    ("a rollback to a newer version that held it before", moves("1", "3", "2", "3"), "3", "1"),
]


@pytest.mark.parametrize(("case", "changes", "current", "expected"), PREVIOUS, ids=[p[0] for p in PREVIOUS])
def test_previous_holder(
    case: str, changes: list[dict[str, str | None]], current: str | None, expected: str | None
) -> None:
    assert previous_holder(changes, "champion", current) == expected


def test_previous_holder_reads_alias_changes_and_ignores_other_aliases_and_models() -> None:
    changes = [
        AliasChange("credit-risk", "champion", None, "1"),
        AliasChange("credit-risk", "challenger", None, "5"),
        AliasChange("other-model", "champion", None, "9"),
        AliasChange("credit-risk", "champion", "1", "2"),
        AliasChange("other-model", "champion", "9", "8"),
    ]
    assert previous_holder(changes, "champion", "2", model="credit-risk") == "1"
    assert previous_holder(changes, "challenger", "5", model="credit-risk") is None


def test_flip_labels_flips_the_share_among_the_surest_rows_and_is_seeded() -> None:
    y = np.zeros(100, dtype=int)
    confidence = np.arange(100, dtype=float)  # row 99 is the surest
    flipped = flip_labels(y, confidence, 0.1, seed=3)
    assert flipped.sum() == 10 and set(np.flatnonzero(flipped)) <= set(range(80, 100))
    assert (flip_labels(y, confidence, 0.1, seed=3) == flipped).all()
    assert (flip_labels(y, confidence, 0.0, seed=3) == y).all()


@cache
def data() -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    generator = DataGenerator(42)
    X, y = split_features(generator.training())
    return X, y, generator.holdout()


@cache
def baseline() -> dict[str, float]:
    X, y, holdout = data()
    return evaluate(fit(X, y), holdout)


@pytest.mark.parametrize(
    "regression",
    [Regression(noisy_labels=0.3), Regression(noisy_labels=0.4), Regression(drop_feature="credit_score")],
    ids=["30% noisy labels", "40% noisy labels", "credit_score dropped"],
)
def test_a_regression_lowers_holdout_accuracy_and_auc(regression: Regression) -> None:
    X, y, holdout = data()
    worse = evaluate(fit(X, y, regression=regression), holdout)
    assert worse["accuracy"] < baseline()["accuracy"] - 0.03, (worse, baseline())
    assert worse["roc_auc"] < baseline()["roc_auc"] - 0.08, (worse, baseline())


@pytest.mark.parametrize("seed", [471395, 42, 7])  # 471395: a single draw of it lost 0.05, and passed for good
def test_the_drills_noisy_labels_cost_a_fifth_of_accuracy_whatever_the_seed(seed: int) -> None:
    generator = DataGenerator(seed)
    X, y = split_features(generator.training())
    clean = evaluate(fit(X, y), generator.holdout())["accuracy"]
    noisy = evaluate(fit(X, y, seed=seed, regression=Regression(noisy_labels=0.35)), generator.holdout())["accuracy"]
    assert noisy <= clean - 0.15, (seed, clean, noisy)


def test_a_dropped_feature_is_ignored_but_still_accepted() -> None:
    X, y, holdout = data()
    model = fit(X, y, regression=Regression(drop_feature="credit_score"))
    features, _ = split_features(holdout)
    changed = features.assign(credit_score=features["credit_score"] * 0 + 300.0)
    assert (model.predict_proba(features) == model.predict_proba(changed)).all()


@pytest.mark.parametrize("serializer", ["pickle", "skops"])
def test_a_slow_regression_slows_every_predict_and_survives_serialization(serializer: str) -> None:
    import skops.io

    X, y, holdout = data()
    fitted = fit(X, y, regression=Regression(slow_predict_ms=60))
    if serializer == "pickle":
        model = pickle.loads(pickle.dumps(fitted))
    else:  # how MLflow saves it, and how the model service loads it
        model = skops.io.loads(skops.io.dumps(fitted), trusted=TRUSTED_TYPES)
    one, _ = split_features(holdout.iloc[:1])
    started = time.perf_counter()
    model.predict_proba(one)
    model.predict(one)
    assert time.perf_counter() - started >= 0.12
    assert evaluate(model, holdout) == baseline()
    step = pickle.loads(pickle.dumps(SlowStep(5)))
    assert step.ms == 5 and type(step).__module__ == "lab_runtime.modeling.model"


@pytest.mark.parametrize(
    "fields",
    [{"noisy_labels": 0.7}, {"noisy_labels": -0.1}, {"drop_feature": "salary"}, {"slow_ms": 5}],
    ids=["more than half flipped", "negative share", "unknown feature", "unknown option"],
)
def test_a_bad_regression_is_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Regression.model_validate(fields)
