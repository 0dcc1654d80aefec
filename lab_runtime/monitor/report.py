"""Evidently drift reports (HTML and JSON) under `.lab/reports/`, with a stable `latest` name.

The report is built with the same tests and the same corrected threshold as the monitor's verdict, so
what the learner reads in it is what the alerts saw.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import ValueDrift
from evidently.presets import DataDriftPreset

from lab_runtime.atomic import write_atomic
from lab_runtime.data import CATEGORICAL_FEATURES, FEATURES, NUMERIC_FEATURES
from lab_runtime.monitor.drift import CHI_SQUARE, KS

PREDICTION = "probability"
KEEP = 20  # timestamped reports kept besides `latest`


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    json: Path
    generated_at: float


def _dataset(frame: pd.DataFrame, with_prediction: bool) -> Dataset:
    numerical = list(NUMERIC_FEATURES) + ([PREDICTION] if with_prediction else [])
    columns = [c for c in (*FEATURES, PREDICTION) if c in frame and (with_prediction or c != PREDICTION)]
    data = frame[columns].copy()
    for name in FEATURES:  # a column the window lacks (renamed upstream) is all null, not absent
        if name not in data:
            data[name] = np.nan
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=list(CATEGORICAL_FEATURES))
    return Dataset.from_pandas(data, data_definition=definition)


def build(reference: pd.DataFrame, current: pd.DataFrame, threshold: float, alpha: float) -> Report:
    """The report definition: every feature at `threshold`, the prediction at `alpha` when both sides have one."""
    metrics: list[object] = [
        DataDriftPreset(columns=list(FEATURES), num_method=KS, cat_method=CHI_SQUARE, threshold=threshold)
    ]
    if PREDICTION in reference and PREDICTION in current:
        metrics.append(ValueDrift(column=PREDICTION, method=KS, threshold=alpha))
    return Report(metrics)  # type: ignore[arg-type]


def write(
    reference: pd.DataFrame, current: pd.DataFrame, threshold: float, alpha: float, directory: Path
) -> ReportFiles:
    """Run and save one report; `latest.html`/`latest.json` are replaced atomically."""
    with_prediction = PREDICTION in reference and PREDICTION in current
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")  # Evidently's plots and chi-square warn on unseen categories
        snapshot = build(reference, current, threshold, alpha).run(
            current_data=_dataset(current, with_prediction), reference_data=_dataset(reference, with_prediction)
        )
    directory.mkdir(parents=True, exist_ok=True)
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now)) + f"-{int(now * 1000) % 1000:03d}"
    html, data = directory / f"drift-{stamp}.html", directory / f"drift-{stamp}.json"
    snapshot.save_html(str(html))
    data.write_text(snapshot.json())
    for source, name in ((html, "latest.html"), (data, "latest.json")):
        write_atomic(directory / name, source.read_bytes())
    for old in sorted(directory.glob("drift-*.html"))[:-KEEP]:
        old.unlink(missing_ok=True)
        old.with_suffix(".json").unlink(missing_ok=True)
    return ReportFiles(directory / "latest.html", directory / "latest.json", now)
