"""The credit pipeline's closed form gives what scikit-learn's `predict_proba` gives, on every version shape a
drill registers; any other estimator is left to scikit-learn."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline

from lab_runtime.modeling.columns import CATEGORICAL_FEATURES, FEATURES, LABEL
from lab_runtime.modeling.data import DataGenerator
from lab_runtime.modeling.model import build_pipeline, fit
from lab_runtime.modeling.regression import Regression
from lab_runtime.modeling.scorer import linear_scorer

TRAIN = DataGenerator(42).training(3_000)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as the service gets them: parsed from JSON."""
    return list(json.loads(frame[list(FEATURES)].to_json(orient="records")))


def production() -> pd.DataFrame:
    rows = DataGenerator(7).production(0, 2_000)
    rows.loc[:10, CATEGORICAL_FEATURES[0]] = "a-category-never-seen"  # one-hot: unknown weighs nothing
    return rows


@pytest.mark.parametrize(
    "regression",
    [Regression(), Regression(drop_feature=CATEGORICAL_FEATURES[0]), Regression(noisy_labels=0.35)],
    ids=["plain", "a-dropped-feature", "noisy-labels"],
)
def test_the_closed_form_scores_as_scikit_learn_does(regression: Regression) -> None:
    model = fit(TRAIN[list(FEATURES)], TRAIN[LABEL], C=0.5, regression=regression)
    scorer = linear_scorer(model)
    assert scorer is not None
    rows = production()
    predicted, probability = scorer.score(records(rows))
    expected = model.predict_proba(pd.DataFrame(records(rows)))
    np.testing.assert_allclose(probability, expected[:, 1], rtol=0, atol=1e-12)
    assert (predicted == model.predict(pd.DataFrame(records(rows)))).all()
    assert set(np.unique(predicted)) == {0, 1}


def test_a_slow_version_stays_slow() -> None:
    model = fit(TRAIN[list(FEATURES)], TRAIN[LABEL], regression=Regression(slow_predict_ms=50))
    scorer = linear_scorer(model)
    assert scorer is not None and scorer.sleep_ms == 50
    started = time.perf_counter()
    scorer.score(records(production().head(1)))
    assert time.perf_counter() - started >= 0.05


def test_any_other_estimator_is_left_to_scikit_learn() -> None:
    forest = Pipeline([("prep", build_pipeline().steps[0][1]), ("clf", RandomForestClassifier(n_estimators=2))])
    forest.fit(TRAIN[list(FEATURES)], TRAIN[LABEL])
    assert linear_scorer(forest) is None
    assert linear_scorer(RandomForestClassifier()) is None
