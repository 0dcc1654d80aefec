"""The Evidently report opens with the monitor's own verdict, and Evidently's figures agree with it."""

from __future__ import annotations

import dataclasses
import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lab_runtime.errors import ReportFailed
from lab_runtime.modeling.data import DataGenerator
from lab_runtime.modeling.population import Population
from lab_runtime.monitor import report, report_job
from lab_runtime.monitor.evaluate import Baseline, Evaluation, Limits, Window, evaluate
from lab_runtime.monitor.report_job import JudgedWindow, ReportWriter
from lab_runtime.monitor.sequential import ChangeDetector

REFERENCE = DataGenerator(42).reference(5000)
LIMITS = Limits(alpha=0.0001, min_rows=200, min_labels=100)  # lab 02's alpha: 12 tests at 8.33e-06
AT = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
BASELINE = Baseline("3", np.random.default_rng(1).beta(2, 5, len(REFERENCE)), 0.9, 0.5)


def scored_window(frame: pd.DataFrame, champion_scores: np.ndarray) -> Window:
    """Version 3 serves the window as champion; a tenth of the rows go to a challenger scoring near 1."""
    variant = np.where(np.arange(len(frame)) % 10 == 0, "challenger", "champion")
    probability = np.where(variant == "champion", champion_scores, 0.99)
    predictions = frame.assign(model_version="3", variant=variant, probability=probability, prediction=0)
    calls = pd.DataFrame({"status": [200] * len(frame), "latency_ms": np.linspace(1, 100, len(frame))})
    labelled = pd.DataFrame({"model_version": "3", "prediction": 0, "probability": 0.3, "label": frame["default"]})
    return Window(predictions, calls, labelled, 60.0)


def written(population: Population, tmp: Path, scores: np.ndarray) -> tuple[Evaluation, str, dict[str, Any]]:
    window = scored_window(DataGenerator(42, population=population).production(0, 1200), scores)
    charts = ChangeDetector(REFERENCE, 14.0)
    charts.update(window.predictions)  # the rows the monitor has fed its change charts: this window's
    evaluation = evaluate(window, REFERENCE, BASELINE, LIMITS, now=AT, charts=charts.reading())
    reference = REFERENCE.assign(**{report.PREDICTION: BASELINE.probabilities})
    files = report_job.render(JudgedWindow(reference, window.predictions, evaluation), tmp)  # its own process
    assert files.html == tmp / "latest.html" and files.json == tmp / "latest.json"
    return evaluation, files.html.read_text(), json.loads(files.json.read_text())


@pytest.fixture(scope="module")
def shifted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Evaluation, str, dict[str, Any]]:
    scores = np.random.default_rng(2).beta(2, 5, 1200)  # the same distribution as the reference's: no drift
    return written(Population().with_shift("credit_score", 0.5), tmp_path_factory.mktemp("shifted"), scores)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Evaluation, str, dict[str, Any]]:
    scores = np.random.default_rng(3).beta(5, 2, 1200)  # the champion's scores moved up
    return written(Population(), tmp_path_factory.mktemp("clean"), scores)


def verdict_section(page: str) -> str:
    """The monitor's section, checked to come before Evidently's own content."""
    start, end = page.index('<section id="monitor-verdict"'), page.index("</section>")
    assert start < end < page.index('<div id="root_metric_'), "the verdict must open the page"
    return page[start:end]


def evidently_value(data: dict[str, Any], column: str) -> float:
    return float(next(m["value"] for m in data["metrics"] if m["config"].get("column") == column))


def test_a_shifted_credit_score_opens_the_report_as_drift_at_the_monitors_threshold(
    shifted: tuple[Evaluation, str, dict[str, Any]],
) -> None:
    evaluation, page, _ = shifted
    assert evaluation.drift is not None and evaluation.drift.drifted == ["credit_score"]
    section = verdict_section(page)
    p = evaluation.signals["drift_p_value.credit_score"]
    assert f"The monitor's verdict: DRIFT in credit_score (p = {p:.3g})" in section
    assert "below <strong>8.33e-06</strong>, the family-wise alpha 0.0001 divided by the 12 tests run" in section
    assert "2023-11-14 22:13:20 UTC on a window of 1200 rows, model version 3" in section
    first_row = section.index("<tr", section.index("<th>feature</th>") + 1)
    assert section[first_row:].startswith('<tr class="drifted"><td>credit_score</td><td>K-S (ks)</td>')
    assert "<td>yes</td><td>1.25</td>" in section[first_row:].split("</tr>")[0]  # its change score, capped
    changed = evaluation.details["changed_features"]
    assert changed.startswith("credit_score (mean up ") and changed.endswith(" sd, score 1.25)")
    assert (
        "Change charts: a feature has changed when its change score reaches 1: its strongest CUSUM chart, fed every "
        "row since one window before the monitor started, reached h = 14 (a log-likelihood ratio). Changed now: "
        f"{changed}." in section
    )
    assert "Dataset Drift is NOT detected" not in page and "Dataset Drift is detected" in page


def test_the_json_report_carries_the_monitors_verdict(shifted: tuple[Evaluation, str, dict[str, Any]]) -> None:
    evaluation, _, data = shifted
    assert evaluation.drift is not None
    monitor = data["monitor"]
    assert monitor["drift"] is True and monitor["drifted"] == ["credit_score"]
    assert monitor["threshold"] == evaluation.drift.threshold == pytest.approx(0.0001 / 12)
    assert monitor["alpha"] == 0.0001 and monitor["tests"] == 12 and monitor["rows"] == 1200
    assert monitor["evaluated_at"] == AT and monitor["features"][0]["name"] == "credit_score"
    assert monitor["changes"] == {"threshold": 14.0, "changed": evaluation.details["changed_features"]}
    assert monitor["prediction"] == {
        "tested": True,
        "test": "ks",
        "threshold": 0.0001,
        "p_value": evaluation.signals["prediction_drift_p_value"],
        "drifted": False,
    }


def test_evidently_tests_the_same_values_the_monitor_tested(
    shifted: tuple[Evaluation, str, dict[str, Any]], clean: tuple[Evaluation, str, dict[str, Any]]
) -> None:
    for evaluation, _, data in (shifted, clean):
        assert evidently_value(data, "credit_score") == evaluation.signals["drift_p_value.credit_score"]
        # categories: the monitor's contingency chi-square, registered with Evidently
        assert evidently_value(data, "purpose") == pytest.approx(evaluation.signals["drift_p_value.purpose"])
        # the challenger's scores are not the champion's: the monitor leaves them out, and so does the report
        assert evidently_value(data, report.PREDICTION) == evaluation.signals["prediction_drift_p_value"]


def test_a_clean_window_says_no_drift_and_shows_the_prediction_drift(
    clean: tuple[Evaluation, str, dict[str, Any]],
) -> None:
    evaluation, page, data = clean
    section = verdict_section(page)
    assert "The monitor's verdict: no drift in the 12 features tested" in section
    assert 'class="drifted"' not in section and "8.33e-06" in section
    p = evaluation.signals["prediction_drift_p_value"]
    assert evaluation.signals["prediction_drifted"] == 1
    assert f"Prediction drift: DRIFT (K-S p = {p:.3g}; a single test, so it drifts when p &lt; 0.0001, " in section
    assert "Dataset Drift is NOT detected" in page
    assert data["monitor"]["drift"] is False and data["monitor"]["drifted"] == []


def test_a_feature_the_monitor_could_not_test_is_said_so_and_left_out_of_evidently(tmp_path: Path) -> None:
    frame = DataGenerator(42).production(0, 1200).drop(columns="debt_to_income")  # renamed upstream
    frame["income"] = None
    window = scored_window(frame, np.random.default_rng(2).beta(2, 5, len(frame)))
    evaluation = evaluate(window, REFERENCE, BASELINE, LIMITS, now=AT)
    files = report.write(REFERENCE.assign(probability=BASELINE.probabilities), window.predictions, evaluation, tmp_path)
    section = verdict_section(files.html.read_text())
    assert "no drift in the 10 features tested" in section and "below <strong>1e-05</strong>" in section
    assert "<tr><td>income</td><td>K-S (ks)</td><td>not tested</td><td>no</td><td>-</td><td>100.0%</td>" in section
    tested = {m["config"].get("column") for m in json.loads(files.json.read_text())["metrics"]}
    assert "income" not in tested and "debt_to_income" not in tested and "age" in tested


def test_everything_put_into_the_page_is_escaped(shifted: tuple[Evaluation, str, dict[str, Any]]) -> None:
    hostile = dataclasses.replace(shifted[0], model_version="<script>alert(1)</script>")
    section = report.verdict_html(report.verdict(hostile))
    assert "<script>" not in section and "model version &lt;script&gt;alert(1)&lt;/script&gt;" in section


def test_the_prediction_not_judged_is_said_so() -> None:
    frame = DataGenerator(42).production(0, 300)
    window = scored_window(frame, np.full(len(frame), 0.2))
    evaluation = evaluate(window, REFERENCE, None, LIMITS, now=AT)
    body = report.verdict(evaluation)
    assert body["prediction"] == {"tested": False, "test": "ks", "threshold": 0.0001, "p_value": None, "drifted": None}
    assert "Prediction drift: not judged in this window" in report.verdict_html(body)


def test_an_evaluation_without_a_drift_verdict_has_no_report(tmp_path: Path) -> None:
    window = scored_window(DataGenerator(42).production(0, 50), np.full(50, 0.2))
    evaluation = evaluate(window, REFERENCE, None, LIMITS, now=AT)
    with pytest.raises(ValueError, match="has no drift verdict"):
        report.write(REFERENCE, window.predictions, evaluation, tmp_path)


def test_the_monitor_never_loads_evidently() -> None:
    code = "import sys, lab_runtime.monitor.app, lab_runtime.monitor.runner; print('evidently' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "False"


def test_a_report_asked_for_before_any_window_was_judged_says_why(tmp_path: Path) -> None:
    with pytest.raises(ReportFailed, match="no window judged yet"):
        ReportWriter(tmp_path, interval=0).render()


def test_a_report_process_given_no_judged_window_fails_with_its_reason(tmp_path: Path) -> None:
    (tmp_path / "not-a-window.pkl").write_bytes(pickle.dumps({"rows": []}))
    done = subprocess.run(
        [sys.executable, "-m", "lab_runtime.monitor.report", str(tmp_path / "not-a-window.pkl"), str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stderr.strip().endswith("not-a-window.pkl holds no judged window")
    assert not (tmp_path / "latest.html").exists()
