"""Evidently drift reports (HTML and JSON) under `.lab/reports/`, with a stable `latest` name.

Run as `python -m lab_runtime.monitor.report WINDOW DIRECTORY` by `report_job`, in a process of its own: it
renders the judged window `report_job.render` saved and prints the files it wrote as one JSON line.

Each report opens with the monitor's own verdict on the window (the evaluation the alerts saw: drifted
features first, the corrected threshold, the prediction's drift), in `latest.html` above Evidently's content
and under `"monitor"` in `latest.json`. Evidently runs the same tests at the same threshold, and counts the
dataset as drifted when one feature drifts, as the monitor does, so its headline agrees.
"""

from __future__ import annotations

import html
import json
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.legacy.calculations.stattests.registry import StatTest, register_stattest
from evidently.legacy.core import ColumnType
from evidently.metrics import ValueDrift
from evidently.presets import DataDriftPreset

from lab_runtime.errors import LabError
from lab_runtime.files.atomic import write_atomic
from lab_runtime.modeling.columns import CATEGORICAL_FEATURES, FEATURES, NUMERIC_FEATURES
from lab_runtime.monitor import report_job
from lab_runtime.monitor.drift import CHI_SQUARE, KS, DriftResult, contingency_p_value
from lab_runtime.monitor.evaluate import Evaluation
from lab_runtime.monitor.report_job import PREDICTION, ReportFiles

KEEP = 20  # timestamped reports kept besides `latest`
TEST_NAMES = {KS: "K-S", CHI_SQUARE: "chi-square"}
_BODY = re.compile(r"</head>\s*<body[^>]*>")


def _contingency_test(
    reference: pd.Series, current: pd.Series, feature_type: ColumnType, threshold: float
) -> tuple[float, bool]:
    p = contingency_p_value(reference.dropna(), current.dropna())
    return p, p < threshold


# Registered with Evidently, so its report runs the monitor's own test on categories.
register_stattest(
    StatTest(CHI_SQUARE, "contingency chi-square p_value", [ColumnType.Categorical]), default_impl=_contingency_test
)


def _drift(evaluation: Evaluation) -> DriftResult:
    if evaluation.drift is None:
        raise ValueError(f"the evaluation at {evaluation.at} has no drift verdict ({evaluation.message}): no report")
    return evaluation.drift


def drift_share(tests: int) -> float:
    """Evidently calls the dataset drifted when this share of its columns drift: one, as the monitor alerts on one."""
    return 1 / max(tests, 1)


def judged_prediction(evaluation: Evaluation) -> bool:
    """Whether the monitor tested the prediction's drift in this window (it needs the version's reference scores)."""
    return "prediction_drift_p_value" in evaluation.signals


def verdict(evaluation: Evaluation) -> dict[str, Any]:
    """The monitor's verdict on the window, as the alerts saw it: drifted features first, then by p-value."""
    drift = _drift(evaluation)
    features = sorted(drift.features, key=lambda f: (not f.drifted, f.p_value is None, f.p_value or 0.0))
    prediction: dict[str, Any] = {"tested": judged_prediction(evaluation), "test": KS, "threshold": drift.alpha}
    if prediction["tested"]:
        p = evaluation.signals["prediction_drift_p_value"]
        prediction |= {"p_value": p, "drifted": bool(evaluation.signals["prediction_drifted"])}
    else:
        prediction |= {"p_value": None, "drifted": None}
    return {
        "drift": bool(drift.drifted),
        "drifted": drift.drifted,
        "state": evaluation.state,
        "message": evaluation.message,
        "evaluated_at": evaluation.at,
        "evaluated_at_utc": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(evaluation.at)),
        "rows": evaluation.rows,
        "model_version": evaluation.model_version,
        "alpha": drift.alpha,
        "tests": drift.tested,
        "threshold": drift.threshold,
        "features": [
            {
                "name": f.name,
                "test": f.test,
                "p_value": f.p_value,
                "drifted": f.drifted,
                "missing_share": f.missing_share,
                "new_category_share": f.new_category_share,
                "change_score": evaluation.signals.get(f"change_score.{f.name}"),
            }
            for f in features
        ],
        "prediction": prediction,
        "changes": {
            "threshold": float(evaluation.details["change_threshold"])
            if "change_threshold" in evaluation.details
            else None,
            "changed": evaluation.details.get("changed_features"),
        },
    }


def _p(value: float | None) -> str:
    return "not tested" if value is None else f"{value:.3g}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _row(feature: dict[str, Any]) -> str:
    cells = (
        feature["name"],
        f"{TEST_NAMES.get(feature['test'], feature['test'])} ({feature['test']})",
        _p(feature["p_value"]),
        "yes" if feature["drifted"] else "no",
        "-" if feature["change_score"] is None else f"{feature['change_score']:.2f}",
        _share(feature["missing_share"]),
        _share(feature["new_category_share"]),
    )
    mark = ' class="drifted"' if feature["drifted"] else ""
    return f"<tr{mark}>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>\n"


def _prediction(prediction: dict[str, Any]) -> str:
    if not prediction["tested"]:
        return (
            "not judged in this window (the serving version's scores on the reference set are not loaded, "
            "or the window holds too few of its champion predictions)"
        )
    word = "DRIFT" if prediction["drifted"] else "no drift"
    p, alpha = _p(prediction["p_value"]), prediction["threshold"]
    return f"{word} (K-S p = {p}; a single test, so it drifts when p < {alpha:g}, the alpha itself)"


def _changes(changes: dict[str, Any]) -> str:
    if changes["threshold"] is None:
        return "not measured in this evaluation"
    return (
        "a feature has changed when its change score reaches 1: its strongest CUSUM chart, fed every row since one "
        f"window before the monitor started, reached h = {changes['threshold']:g} (a log-likelihood ratio). Changed "
        f"now: {changes['changed'] or 'none'}"
    )


def verdict_html(body: dict[str, Any]) -> str:
    """The verdict as the section that opens the HTML report; every value in it is escaped."""
    drifted = [f"{f['name']} (p = {_p(f['p_value'])})" for f in body["features"] if f["drifted"]]
    headline = f"DRIFT in {', '.join(drifted)}" if drifted else f"no drift in the {body['tests']} features tested"
    version = f", model version {body['model_version']}" if body["model_version"] else ""
    text = {
        "headline": headline,
        "when": f"Evaluated at {body['evaluated_at_utc']} on a window of {body['rows']} rows{version}.",
        "threshold": f"{body['threshold']:.3g}",
        "rule": f"the family-wise alpha {body['alpha']:g} divided by the {body['tests']} tests run (Bonferroni).",
        "prediction": _prediction(body["prediction"]),
        "share": f"{drift_share(body['tests']):.3g}",
        "changes": _changes(body["changes"]),
    }
    t = {key: html.escape(value) for key, value in text.items()}
    colour = "#c62828" if drifted else "#2e7d32"
    return f"""<section id="monitor-verdict" style="font-family: sans-serif; margin: 16px; padding: 12px 16px;
 border: 2px solid {colour}; border-radius: 6px;">
<style>#monitor-verdict td, #monitor-verdict th {{ padding: 2px 16px 2px 0; text-align: left; }}
#monitor-verdict tr.drifted {{ color: #c62828; font-weight: bold; }}</style>
<h2 style="margin-top: 0">The monitor's verdict: {t["headline"]}</h2>
<p>{t["when"]} This is the evaluation the alerts saw.</p>
<p>Threshold: a feature drifts when its p-value is below <strong>{t["threshold"]}</strong>, {t["rule"]}</p>
<table>
<tr><th>feature</th><th>test</th><th>p-value</th><th>drifted</th><th>change score</th><th>null</th>
<th>new categories</th></tr>
{"".join(_row(f) for f in body["features"])}</table>
<p>Change charts: {t["changes"]}.</p>
<p>Prediction drift: {t["prediction"]}.</p>
<p>Below, Evidently's report of the same window runs the same tests at the same threshold on the features
tested here. Its "Dataset Drift" headline counts the dataset as drifted when one column drifts (share
threshold {t["share"]}), as the monitor does; its column table has an order of its own.</p>
</section>
"""


def with_verdict(page: str, section: str) -> str:
    """Evidently's HTML page with `section` first in its body."""
    body = _BODY.search(page)
    if body is None:
        raise ValueError("Evidently's HTML has no <body> after its <head>: nowhere to put the monitor's verdict")
    return page[: body.end()] + "\n" + section + page[body.end() :]


def _dataset(frame: pd.DataFrame, with_prediction: bool) -> Dataset:
    numerical = list(NUMERIC_FEATURES) + ([PREDICTION] if with_prediction else [])
    columns = [c for c in (*FEATURES, PREDICTION) if c in frame and (with_prediction or c != PREDICTION)]
    data = frame[columns].copy()
    for name in FEATURES:  # a column the window lacks (renamed upstream) is all null, not absent
        if name not in data:
            data[name] = np.nan
    for name in numerical:  # all None reads as text, which Evidently's statistics refuse
        if data[name].isna().all():
            data[name] = np.nan
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=list(CATEGORICAL_FEATURES))
    return Dataset.from_pandas(data, data_definition=definition)


def _scored(current: pd.DataFrame, evaluation: Evaluation) -> pd.DataFrame:
    """The window with only the scores the monitor tested: the serving version's champion predictions."""
    tested = (current["variant"] == "champion") & (current["model_version"] == evaluation.model_version)
    return current.assign(**{PREDICTION: current[PREDICTION].where(tested)})  # Evidently drops the nulls


def build(columns: list[str], threshold: float, alpha: float, with_prediction: bool) -> Report:
    """The report definition: `columns` at `threshold`, the prediction at `alpha` when the monitor tested it."""
    metrics: list[object] = []
    if columns:
        metrics.append(
            DataDriftPreset(
                columns=columns,
                num_method=KS,
                cat_method=CHI_SQUARE,
                threshold=threshold,
                drift_share=drift_share(len(columns)),
            )
        )
    if with_prediction:
        metrics.append(ValueDrift(column=PREDICTION, method=KS, threshold=alpha))
    return Report(metrics)  # type: ignore[arg-type]


def write(reference: pd.DataFrame, current: pd.DataFrame, evaluation: Evaluation, directory: Path) -> ReportFiles:
    """Run and save the report of the window `evaluation` judged; `latest.html`/`latest.json` are replaced atomically.

    `reference` carries the serving version's scores in `probability` when the monitor has them.
    """
    drift, body = _drift(evaluation), verdict(evaluation)
    with_prediction = judged_prediction(evaluation) and PREDICTION in reference and PREDICTION in current
    if with_prediction:
        current = _scored(current, evaluation)
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")  # Evidently's plots and chi-square warn on unseen categories
        # Only the features the monitor tested: Evidently refuses a column with no values at all.
        tested = [f.name for f in drift.features if f.p_value is not None]
        snapshot = build(tested, drift.threshold, drift.alpha, with_prediction).run(
            current_data=_dataset(current, with_prediction), reference_data=_dataset(reference, with_prediction)
        )
    directory.mkdir(parents=True, exist_ok=True)
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + f"-{int(now * 1000) % 1000:03d}"
    page, data = directory / f"drift-{stamp}.html", directory / f"drift-{stamp}.json"
    page.write_text(with_verdict(snapshot.get_html_str(as_iframe=False), verdict_html(body)), "utf-8")
    data.write_text(json.dumps({"monitor": body, **json.loads(snapshot.json())}))
    for source, name in ((page, "latest.html"), (data, "latest.json")):
        write_atomic(directory / name, source.read_bytes())
    for old in sorted(directory.glob("drift-*.html"))[:-KEEP]:
        old.unlink(missing_ok=True)
        old.with_suffix(".json").unlink(missing_ok=True)
    return ReportFiles(directory / "latest.html", directory / "latest.json", now)


def main(argv: list[str]) -> int:
    """Render the judged window saved at argv[0] into the directory argv[1]; print the files as one JSON line."""
    if len(argv) != 2:
        print("usage: python -m lab_runtime.monitor.report WINDOW DIRECTORY", file=sys.stderr)
        return 2
    try:
        window = report_job.load(Path(argv[0]))
        files = write(window.reference, window.current, window.evaluation, Path(argv[1]))
    except (LabError, OSError, ValueError) as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"html": str(files.html), "json": str(files.json), "generated_at": files.generated_at}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
