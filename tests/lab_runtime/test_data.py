import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from lab_runtime.modeling.columns import FEATURES, INTEGER_FEATURES, LABEL, REQUEST_ID
from lab_runtime.modeling.data import DataGenerator


def test_same_seed_gives_the_same_data() -> None:
    a, b = DataGenerator(7), DataGenerator(7)
    pd.testing.assert_frame_equal(a.training(500), b.training(500))
    pd.testing.assert_frame_equal(a.reference(500), b.reference(500))
    pd.testing.assert_frame_equal(a.production(0, 300), b.production(0, 300))


def test_another_seed_gives_other_data() -> None:
    assert not DataGenerator(1).training(200).equals(DataGenerator(2).training(200))


def test_production_rows_do_not_depend_on_how_the_stream_is_read() -> None:
    gen = DataGenerator(3)
    whole = gen.production(0, 1300)
    pieces = pd.concat([gen.production(0, 450), gen.production(450, 600), gen.production(1050, 250)], ignore_index=True)
    pd.testing.assert_frame_equal(whole, pieces)
    assert whole[REQUEST_ID].is_unique


def test_data_sets_have_every_feature_and_a_plausible_default_rate() -> None:
    frame = DataGenerator(5).training(4000)
    assert list(frame.columns) == [*FEATURES, LABEL]
    assert 0.15 < frame[LABEL].mean() < 0.4
    for name in INTEGER_FEATURES:
        assert frame[name].dtype == np.int64
    assert frame["home_ownership"].nunique() == 3


def test_a_shift_moves_a_feature_by_that_many_standard_deviations() -> None:
    gen = DataGenerator(11)
    mean, std = gen.stats["credit_score"]
    gen.population = gen.population.with_shift("credit_score", std_shift=0.5)
    moved = gen.production(0, 5000)["credit_score"].mean()
    assert moved - mean == pytest.approx(0.5 * std, rel=0.1)


def test_shift_of_an_unknown_feature_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown numeric feature 'salary'.*credit_score"):
        DataGenerator().population.with_shift("salary", 1.0)


def test_a_signature_of_the_sandboxs_features_comes_with_no_hint_about_integer_columns() -> None:
    """A learner's training script (its own process, Python's default warning filters) prints no MLflow hint."""
    script = (
        "from mlflow.models import infer_signature\n"
        "from lab_runtime.modeling.data import DataGenerator, split_features\n"
        "X, y = split_features(DataGenerator(42).production(0, 20))\n"
        "print(infer_signature(X, y).inputs.input_names())\n"
    )
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0 and "'age'" in ran.stdout, ran.stderr
    assert "integer column" not in ran.stderr, ran.stderr
