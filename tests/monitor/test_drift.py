"""Drift detection with Evidently's real tests, on seeded windows with a known truth."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from lab_runtime.modeling.data import DataGenerator
from lab_runtime.modeling.population import Population
from lab_runtime.monitor.drift import detect
from lab_runtime.monitor.evaluate import INSUFFICIENT, Baseline, Limits, Window, calibration_error, evaluate
from lab_runtime.service.policy import Band, WindowRules

REFERENCE = DataGenerator(42).reference(5000)
LIMITS = Limits(alpha=0.001, min_rows=200, min_labels=100)


def production(n: int, population: Population | None = None, start: int = 0) -> pd.DataFrame:
    return DataGenerator(42, population=population).production(start, n)


def window(frame: pd.DataFrame) -> Window:
    predictions = frame.assign(model_version="1", variant="champion", probability=0.2, prediction=0)
    calls = pd.DataFrame({"status": [200] * len(frame), "latency_ms": np.linspace(1, 100, len(frame))})
    labelled = pd.DataFrame({"model_version": "1", "prediction": 0, "probability": 0.3, "label": frame["default"]})
    return Window(predictions, calls, labelled, 60.0)


@pytest.mark.parametrize("start", [0, 1200, 2400, 3600, 4800])
def test_a_clean_window_flags_no_feature(start: int) -> None:
    result = detect(REFERENCE, production(1200, start=start), alpha=0.001)
    assert result.drifted == []
    assert result.tested == 12 and result.threshold == pytest.approx(0.001 / 12)


def test_half_a_standard_deviation_in_credit_score_is_flagged_and_nothing_else() -> None:
    result = detect(REFERENCE, production(1200, Population().with_shift("credit_score", 0.5)), alpha=0.001)
    assert result.drifted == ["credit_score"]


def test_a_null_column_and_a_new_category_are_measured_as_shares() -> None:
    frame = production(1000)
    frame["income"] = None
    frame.loc[:299, "purpose"] = "crypto"
    result = {f.name: f for f in detect(REFERENCE, frame, alpha=0.001).features}
    assert result["income"].missing_share == 1.0 and result["income"].p_value is None
    assert result["purpose"].new_category_share == pytest.approx(0.3) and result["purpose"].drifted
    assert result["age"].missing_share == 0.0


def test_a_window_with_too_few_rows_says_so_instead_of_reporting_drift() -> None:
    evaluation = evaluate(window(production(150)), REFERENCE, None, LIMITS, now=0.0)
    assert evaluation.state == INSUFFICIENT
    assert evaluation.message.startswith("only 150 prediction(s) in the last 60s; drift needs at least 200")
    assert "drifted_features" not in evaluation.signals and evaluation.signals["rows"] == 150


def test_an_evaluation_gives_traffic_drift_and_quality_signals() -> None:
    frame = production(1000, Population().with_shift("credit_score", 1.0))
    baseline = Baseline("1", DataGenerator(42).reference(5000)["default"].to_numpy() * 0.0 + 0.2, 0.9, 0.5)
    evaluation = evaluate(window(frame), REFERENCE, baseline, LIMITS, now=0.0)
    signals = evaluation.signals
    assert evaluation.state == "drift" and "credit_score (p=" in evaluation.details["drifted_features"]
    assert signals["drifted_features"] == 1 and signals["drifted.credit_score"] == 1
    assert signals["error_rate"] == 0 and 98 < signals["latency_p99_ms"] <= 100
    assert signals["labelled_rows"] == 1000
    assert signals["accuracy"] == pytest.approx(1 - frame["default"].mean())
    assert signals["accuracy_drop"] == pytest.approx(0.9 - signals["accuracy"])
    assert signals["prediction_drifted"] == 0  # same constant scores on both sides


def test_the_decisions_served_give_the_unsafe_output_and_approval_rates_even_under_the_drift_minimum() -> None:
    frame = production(100).assign(decision=["approve"] * 60 + ["refer"] * 40, violations=[""] * 97 + ["a,b"] * 3)
    signals = evaluate(window(frame), REFERENCE, None, LIMITS, now=0.0).signals
    assert signals["unsafe_output_rate"] == pytest.approx(0.03) and signals["approval_rate"] == pytest.approx(0.6)
    without = evaluate(window(production(100)), REFERENCE, None, LIMITS, now=0.0).signals  # a log of no decisions
    assert "unsafe_output_rate" not in without and "approval_rate" not in without


def test_the_fallbacks_decisions_count_among_the_decisions_served() -> None:
    frame = production(100).assign(decision=["approve"] * 60 + ["refer"] * 40, violations=[""] * 96 + ["a"] * 4)
    signals = evaluate(replace(window(frame), fallback_decisions=300), REFERENCE, None, LIMITS, now=0.0).signals
    assert signals["unsafe_output_rate"] == pytest.approx(0.01) and signals["approval_rate"] == pytest.approx(0.15)
    assert signals["fallback_share"] == pytest.approx(0.75)
    only = evaluate(replace(window(frame.iloc[:0]), fallback_decisions=10), REFERENCE, None, LIMITS, now=0.0)
    assert (only.signals["unsafe_output_rate"], only.signals["fallback_share"]) == (0.0, 1.0)


def test_the_calibration_error_weighs_each_probability_bins_gap_to_its_observed_rate() -> None:
    labelled = pd.DataFrame(
        {"probability": [0.05, 0.05, 0.05, 0.05, 0.75, 0.75], "label": [0, 0, 0, 1, 1, 1], "prediction": 0}
    )
    # bin 0: mean 0.05 against 0.25 observed (4 rows); bin 7: 0.75 against 1.0 (2 rows)
    assert calibration_error(labelled) == pytest.approx((4 * 0.2 + 2 * 0.25) / 6)
    assert calibration_error(labelled.assign(probability=[0.0, 0.0, 0.0, 1.0, 1.0, 1.0])) == 0.0  # 1.0: the last bin


def test_the_policys_window_rules_broken_are_counted_and_named() -> None:
    frame = production(300).assign(decision=["approve"] * 270 + ["refer"] * 30, violations="")
    rules = WindowRules(approval_rate=Band(min=0.3, max=0.8), calibration_error=0.1)
    labelled = pd.DataFrame({"model_version": "1", "prediction": 0, "probability": 0.9, "label": [1] * 50 + [0] * 150})
    evaluation = evaluate(replace(window(frame), labelled=labelled, policy=rules), REFERENCE, None, LIMITS, now=0.0)
    # approves 90 %; every labelled row scored 0.9 where a quarter defaulted
    assert evaluation.signals["calibration_error"] == pytest.approx(0.65)
    assert evaluation.signals["policy_breaches"] == 2.0
    assert (
        evaluation.details["policy_breaches"] == "approval rate 90% outside 30%-80%; calibration error 0.650 over 0.1"
    )
    sound = frame.assign(decision=["approve"] * 150 + ["refer"] * 150)
    untested = evaluate(replace(window(sound), policy=WindowRules(approval_rate=Band(min=0.3, max=0.8))), REFERENCE,
                        None, LIMITS, now=0.0)  # fmt: skip
    assert (untested.signals["policy_breaches"], untested.details["policy_breaches"]) == (0.0, "none")
