"""Pipeline releases: each transform, validation that names the field, determinism, the JSON the service gets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lab_runtime.errors import InvalidRelease
from lab_runtime.modeling.columns import FEATURES
from lab_runtime.modeling.data import DataGenerator
from lab_runtime.modeling.population import shifted
from lab_runtime.pipeline.releases import Release, apply, load_release, to_features

GEN = DataGenerator(42)


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return GEN.production(0, 2000)[list(FEATURES)]


def release(*transforms: dict[str, Any]) -> Release:
    return Release.model_validate({"version": "v2", "note": "test", "transforms": list(transforms)})


def run(frame: pd.DataFrame, *transforms: dict[str, Any], seed: int = 0) -> pd.DataFrame:
    return apply(frame, release(*transforms).transforms, GEN.stats, np.random.default_rng(seed))


def test_scale_changes_the_unit_and_keeps_integer_features_whole(rows: pd.DataFrame) -> None:
    out = run(rows, {"type": "scale", "feature": "income", "factor": 1000})
    assert np.allclose(out["income"], rows["income"] * 1000)
    halved = run(rows, {"type": "scale", "feature": "loan_term_months", "factor": 0.5})
    assert all(isinstance(f["loan_term_months"], int) for f in to_features(halved))
    assert np.allclose(halved["loan_term_months"], (rows["loan_term_months"] * 0.5).round())


def test_shift_uses_the_reference_statistics_like_the_data_generator(rows: pd.DataFrame) -> None:
    out = run(rows, {"type": "shift", "feature": "credit_score", "std": -1.5, "scale": 0.5})
    mean, std = GEN.stats["credit_score"]
    assert np.allclose(out["credit_score"], shifted(rows["credit_score"], mean, std, -1.5, 0.5))
    assert out["credit_score"].mean() == pytest.approx(rows["credit_score"].mean() - 1.5 * std, rel=0.02)
    aged = run(rows, {"type": "shift", "feature": "age", "std": 1})
    assert all(isinstance(f["age"], int) for f in to_features(aged))


def test_rename_sends_the_column_under_another_name(rows: pd.DataFrame) -> None:
    features = to_features(run(rows.head(3), {"type": "rename", "feature": "income", "to": "annual_income"}))
    assert "income" not in features[0] and features[0]["annual_income"] == rows["income"].iloc[0]
    assert len(features[0]) == len(FEATURES)


@pytest.mark.parametrize("feature", ["debt_to_income", "num_late_payments", "region"])
def test_null_empties_about_the_share_of_rows_as_json_null(rows: pd.DataFrame, feature: str) -> None:
    features = to_features(run(rows, {"type": "null", "feature": feature, "share": 0.3}))
    nulls = sum(f[feature] is None for f in features)
    assert 0.25 < nulls / len(features) < 0.35
    kinds = {type(f[feature]) for f in features if f[feature] is not None}
    assert kinds == {type(rows[feature].iloc[0].item() if feature != "region" else "x")}
    json.dumps(features, allow_nan=False)  # no NaN ever reaches the wire
    everything = to_features(run(rows.head(50), {"type": "null", "feature": feature}))
    assert all(f[feature] is None for f in everything)


def test_remap_renames_categories_on_the_share_of_rows(rows: pd.DataFrame) -> None:
    out = run(rows, {"type": "remap", "feature": "purpose", "mapping": {"car": "auto"}})
    assert "car" not in set(out["purpose"]) and (out["purpose"] == "auto").sum() == (rows["purpose"] == "car").sum()
    some = run(rows, {"type": "remap", "feature": "purpose", "mapping": {"car": "auto"}, "share": 0.5})
    share = (some["purpose"] == "auto").sum() / (rows["purpose"] == "car").sum()
    assert 0.4 < share < 0.6
    assert ((some["purpose"] == rows["purpose"]) | (rows["purpose"] == "car")).all()


def test_transforms_apply_in_order_to_a_copy(rows: pd.DataFrame) -> None:
    before = rows.copy()
    out = run(
        rows,
        {"type": "scale", "feature": "income", "factor": 2},
        {"type": "shift", "feature": "income", "std": 1},
        {"type": "rename", "feature": "income", "to": "salary"},
    )
    pd.testing.assert_frame_equal(rows, before)
    mean, std = GEN.stats["income"]
    assert np.allclose(out["salary"], shifted(rows["income"] * 2, mean, std, 1.0))


def test_the_rows_a_share_picks_depend_only_on_the_rng(rows: pd.DataFrame) -> None:
    null = {"type": "null", "feature": "age", "share": 0.5}
    pd.testing.assert_frame_equal(run(rows, null, seed=3), run(rows, null, seed=3))
    assert not run(rows, null, seed=3).equals(run(rows, null, seed=4))


def test_features_are_native_python_values(rows: pd.DataFrame) -> None:
    features = to_features(rows.head(5))
    assert features == json.loads(rows.head(5).to_json(orient="records"))
    assert {type(v) for f in features for v in f.values()} == {int, float, str}


def test_summary_describes_each_transform() -> None:
    assert release().summary() == "no transforms"
    text = release(
        {"type": "scale", "feature": "income", "factor": 1000},
        {"type": "null", "feature": "age", "share": 0.25},
        {"type": "rename", "feature": "region", "to": "area"},
    ).summary()
    assert text == "scale income ×1000; null age on 25% of rows; rename region → area"


INVALID: list[tuple[str, dict[str, Any], str]] = [
    (
        "unknown feature",
        {"type": "scale", "feature": "salary", "factor": 2},
        "unknown feature 'salary'; features are age",
    ),
    ("numeric only", {"type": "shift", "feature": "region", "std": 1}, "'region' is categorical"),
    ("categorical only", {"type": "remap", "feature": "age", "mapping": {"1": "2"}}, "'age' is numeric"),
    ("share", {"type": "null", "feature": "age", "share": 1.5}, "transforms.0.null.share: Input should be less"),
    ("zero factor", {"type": "scale", "feature": "income", "factor": 0}, "transforms.0.scale.factor: Value error"),
    ("infinite factor", {"type": "scale", "feature": "income", "factor": float("inf")}, "scale.factor: Input should"),
    ("unknown type", {"type": "drop", "feature": "age"}, "does not match any of the expected tags"),
    ("extra field", {"type": "null", "feature": "age", "shares": 1}, "transforms.0.null.shares: Extra inputs"),
    ("bad column name", {"type": "rename", "feature": "age", "to": "a b"}, "transforms.0.rename.to"),
    ("unknown category", {"type": "remap", "feature": "purpose", "mapping": {"cars": "x"}}, "['cars'] not categories"),
]


@pytest.mark.parametrize(("case", "transform", "message"), INVALID, ids=[c[0] for c in INVALID])
def test_an_invalid_transform_is_refused_naming_the_file_and_field(
    tmp_path: Path, case: str, transform: dict[str, Any], message: str
) -> None:
    path = tmp_path / "release.json"  # JSON is YAML, and it can say "infinity"
    path.write_text(json.dumps({"version": "v2", "note": case, "transforms": [transform]}).replace("Infinity", ".inf"))
    with pytest.raises(InvalidRelease) as err:
        load_release(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"version": "2", "note": "x"}, "version: Value error, '2' is not a release version"),
        ({"version": "v2"}, "note: Field required"),
        ({"version": "v2", "note": "x", "owner": "me"}, "owner: Extra inputs are not permitted"),
        (
            {
                "version": "v2",
                "note": "x",
                "transforms": [{"type": "rename", "feature": "age", "to": "years"}, {"type": "null", "feature": "age"}],
            },
            "item 1 changes 'age', which item 0 renamed to 'years'",
        ),
        (
            {"version": "v2", "note": "x", "transforms": [{"type": "rename", "feature": "age", "to": "income"}]},
            "renames 'age' to 'income', which is already a column",
        ),
    ],
)
def test_an_invalid_release_is_refused_naming_the_field(tmp_path: Path, body: dict[str, Any], message: str) -> None:
    path = tmp_path / "release.yaml"
    path.write_text(json.dumps(body))
    with pytest.raises(InvalidRelease, match=r"release\.yaml: ") as err:
        load_release(path)
    assert message in str(err.value)


def test_a_release_file_that_is_not_a_mapping_or_missing_says_so(tmp_path: Path) -> None:
    with pytest.raises(InvalidRelease, match="cannot read the pipeline release"):
        load_release(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- v2\n")
    with pytest.raises(InvalidRelease, match="a pipeline release must be a mapping"):
        load_release(tmp_path / "list.yaml")


def test_a_release_file_round_trips_and_yaml_type_null_is_the_null_transform(tmp_path: Path) -> None:
    path = tmp_path / "v2.yaml"
    path.write_text(
        "version: v2-bureau\nnote: the bureau sends income in units\n"
        "transforms:\n  - {type: scale, feature: income, factor: 1000}\n  - {type: null, feature: region, share: 0.1}\n"
    )
    loaded = load_release(path)
    assert loaded.version == "v2-bureau" and [t.type for t in loaded.transforms] == ["scale", "null"]
    assert Release.model_validate_json(loaded.model_dump_json()) == loaded
