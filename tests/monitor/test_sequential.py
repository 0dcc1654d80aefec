"""The sequential change charts on seeded streams with a known truth: quiet on clean traffic, each kind of change
caught by the chart made for it, a score that falls back once the change stops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lab_runtime.modeling.columns import FEATURES
from lab_runtime.modeling.data import DataGenerator
from lab_runtime.modeling.population import Population
from lab_runtime.monitor.evaluate import Limits, Window, evaluate
from lab_runtime.monitor.sequential import ChangeDetector, QualityChart, Reading
from lab_runtime.predlog import FeedbackRow, PredictionLog, PredictionLogger, PredictionRow

H = 14.0
REFERENCE = DataGenerator(7).reference(5000)


def stream(n: int, population: Population | None = None, start: int = 0) -> pd.DataFrame:
    return DataGenerator(7, population=population).production(start, n)


def fed(rows: pd.DataFrame, reference: pd.DataFrame = REFERENCE, batch: int = 100) -> tuple[ChangeDetector, list[int]]:
    """A detector fed `rows` in batches, and the row counts after which some feature was changed."""
    detector, alarms = ChangeDetector(reference, H), []
    for start in range(0, len(rows), batch):
        detector.update(rows.iloc[start : start + batch])
        if any(c.changed for c in detector.changes()):
            alarms.append(start + batch)
    return detector, alarms


def changed(detector: ChangeDetector) -> dict[str, str]:
    return {c.feature: c.chart for c in detector.changes() if c.changed}


@pytest.mark.parametrize("reference_rows", [1000, 5000])
def test_forty_thousand_clean_rows_change_nothing(reference_rows: int) -> None:
    detector, alarms = fed(stream(40_000), DataGenerator(7).reference(reference_rows), batch=500)
    assert alarms == []
    assert detector.rows == 40_000 and max(c.score for c in detector.changes()) < 0.8


def test_half_a_standard_deviation_is_caught_by_the_mean_chart_within_four_hundred_rows() -> None:
    rows = stream(1000, Population().with_shift("credit_score", 0.5))
    detector, alarms = fed(rows, batch=50)
    assert alarms and alarms[0] <= 400
    assert changed(detector) == {"credit_score": "mean up 0.5 sd"}


def test_a_wider_spread_a_new_category_nulls_and_a_share_are_each_named_by_their_chart() -> None:
    rows = stream(1500, Population().with_shift("debt_to_income", 0.0, 1.5))
    rows.loc[rows.index % 5 == 0, "purpose"] = "crypto"
    rows.loc[rows.index % 3 == 0, "income"] = np.nan
    rows.loc[rows.index % 4 == 0, "region"] = "north"
    detector, _ = fed(rows)
    assert changed(detector) == {
        "income": "missing values",
        "debt_to_income": "spread wider",
        "purpose": "new categories",
        "region": "more 'north'",
    }


def test_a_new_category_in_a_fifth_of_the_rows_is_caught_within_fifty_rows() -> None:
    rows = stream(200)
    rows.loc[rows.index % 5 == 0, "purpose"] = "crypto"
    _, alarms = fed(rows, batch=10)
    assert alarms and alarms[0] <= 50


def test_the_score_falls_back_under_one_within_a_few_hundred_clean_rows_after_the_change_stops() -> None:
    detector, _ = fed(stream(1000, Population().with_shift("credit_score", 1.0)))
    assert detector.changes()[FEATURES.index("credit_score")].score == pytest.approx(1.25)  # capped
    back = None
    for start in range(0, 2000, 20):
        detector.update(stream(20, start=10_000 + start))
        if not any(c.changed for c in detector.changes()):
            back = start + 20
            break
    assert back is not None and back <= 300


def test_an_evaluation_carries_each_features_change_score_and_names_the_changed_ones() -> None:
    detector, _ = fed(stream(1000, Population().with_shift("credit_score", 1.0)))
    rows = stream(300).assign(model_version="1", variant="champion", probability=0.2, prediction=0)
    window = Window(rows, pd.DataFrame({"status": [], "latency_ms": []}), rows.iloc[:0].assign(label=0), 60.0)
    ev = evaluate(window, REFERENCE, None, Limits(0.001, 200, 100), 0.0, Reading(detector.changes()))
    assert ev.signals["changed_features"] == 1 and ev.signals["change_score.credit_score"] >= 1
    assert ev.signals["change_score.age"] < 1
    assert ev.details["changed_features"] == "credit_score (mean up 0.5 sd, score 1.25)"


def test_the_log_hands_each_prediction_once_in_arrival_order(tmp_path: Path) -> None:
    logger = PredictionLogger(tmp_path / "p.db", maxsize=100, retention=float("inf"))
    row = {"age": 30, "region": "north"}
    logger.log([PredictionRow(100.0 + i, f"r{i}", "1", "champion", 0, 0.5, 1.0, row) for i in range(10)])
    logger.close()
    log = PredictionLog(tmp_path / "p.db")
    assert log.last_id("predictions", before=103.0) == 3 and log.last_id("predictions", before=0.0) == 0
    first = log.newer(3, until=108.0, limit=3)
    assert first["request_id"].tolist() == ["r3", "r4", "r5"] and first["age"].tolist() == [30, 30, 30]
    assert log.newer(int(first["id"].iloc[-1]), until=108.0, limit=100)["request_id"].tolist() == ["r6", "r7"]


def test_the_log_stops_at_the_first_late_row_so_no_earlier_id_is_skipped(tmp_path: Path) -> None:
    logger = PredictionLogger(tmp_path / "p.db", maxsize=100, retention=float("inf"))
    stamps = [100.0, 101.0, 109.0, 102.0]  # the third was stamped after `until` but logged before the fourth
    logger.log([PredictionRow(ts, f"r{i}", "1", "champion", 0, 0.5, 1.0, {}) for i, ts in enumerate(stamps)])
    logger.close()
    log = PredictionLog(tmp_path / "p.db")
    assert log.newer(0, until=105.0, limit=10)["request_id"].tolist() == ["r0", "r1"]
    assert log.newer(2, until=110.0, limit=10)["request_id"].tolist() == ["r2", "r3"]


def test_a_value_that_is_no_number_counts_as_a_null_instead_of_stopping_the_charts() -> None:
    rows = stream(100).astype({"income": object})
    rows.loc[::2, "income"] = "n/a"
    detector, _ = fed(rows)
    assert detector.rows == 100 and changed(detector) == {"income": "missing values"}


def test_a_window_without_predictions_or_labels_says_nothing_of_the_charts() -> None:
    detector, _ = fed(stream(1000, Population().with_shift("credit_score", 1.0)))
    empty = stream(1).iloc[:0].assign(model_version="1", variant="champion", probability=0.2, prediction=0)
    window = Window(empty, pd.DataFrame({"status": [], "latency_ms": []}), empty.assign(label=0), 60.0)
    signals = evaluate(window, REFERENCE, None, Limits(0.001, 200, 100), 0.0, detector.reading(quality=3.0)).signals
    assert "changed_features" not in signals and "accuracy_change_score" not in signals


def test_labels_come_in_the_order_they_arrived_each_with_its_prediction(tmp_path: Path) -> None:
    logger = PredictionLogger(tmp_path / "p.db", maxsize=100, retention=float("inf"))
    logger.log([PredictionRow(100.0 + i, f"r{i}", "3", "champion", i % 2, 0.5, 1.0, {}) for i in range(4)])
    logger.log([FeedbackRow(120.0, "r2", 1), FeedbackRow(121.0, "r0", 1), FeedbackRow(122.0, "r3", 0)])
    logger.close()
    log = PredictionLog(tmp_path / "p.db")
    labels = log.labels_newer(log.last_id("feedback", before=120.5), until=130.0, limit=10)
    assert labels[["model_version", "prediction", "label"]].values.tolist() == [["3", 0, 1], ["3", 1, 0]]


def quality_chart(accuracy_on_traffic: float, rows: int = 3000, seed: int = 1) -> tuple[QualityChart, int | None]:
    """A chart for a version at 0.81 on the reference, fed labels at `accuracy_on_traffic`, 10 at a time; and the
    labels it took to reach 1 (None: never)."""
    chart = QualityChart(threshold=10.0, reference_rows=5000)
    right = np.random.default_rng(seed).random(rows) < accuracy_on_traffic
    labels = pd.DataFrame({"model_version": "2", "prediction": 1, "label": right.astype(int)})
    for start in range(0, rows, 10):
        chart.update("2", 0.81, labels.iloc[start : start + 10])
        if (chart.score or 0) >= 1:
            return chart, start + 10
    return chart, None


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_quality_chart_stays_quiet_at_the_baseline_and_sees_accuracy_down_by_eight_points(seed: int) -> None:
    assert quality_chart(0.81, rows=30_000, seed=seed)[1] is None
    _, took = quality_chart(0.73, seed=seed)
    assert took is not None and took <= 1200


def test_the_quality_chart_starts_over_for_a_new_version_and_ignores_other_versions_labels() -> None:
    chart, took = quality_chart(0.6)
    assert took is not None and chart.score is not None and chart.score >= 1
    other = pd.DataFrame({"model_version": ["2"] * 50, "prediction": 1, "label": 0})
    chart.update("3", 0.81, other)
    assert chart.score is None and chart.rows == 0
