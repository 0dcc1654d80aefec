"""One monitor evaluation: from a window of the prediction log to signals, without any I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

from lab_runtime.monitor.drift import DriftResult, detect, p_value
from lab_runtime.monitor.sequential import Reading
from lab_runtime.monitor.traffic import output_signals, traffic_signals
from lab_runtime.service.policy import WindowRules

OK, DRIFT, INSUFFICIENT = "ok", "drift", "insufficient data"
CALIBRATION_BINS = 10


@dataclass(frozen=True)
class Baseline:
    """What a model version does on the reference set: its predicted probabilities and its quality."""

    version: str
    probabilities: np.ndarray
    accuracy: float
    f1: float


@dataclass(frozen=True)
class Window:
    """What an evaluation reads: predictions and calls over the drift window, labelled rows over the quality window."""

    predictions: pd.DataFrame
    requests: pd.DataFrame
    labelled: pd.DataFrame
    seconds: float
    service_down: str | None = None  # why the model service did not answer its health check; None: it answered
    fallback_decisions: int = 0  # decisions the fallback made (the model switched off or throttled) in the window
    policy: WindowRules = field(default_factory=WindowRules)  # the output policy's window rules in force


@dataclass(frozen=True)
class Limits:
    alpha: float
    min_rows: int
    min_labels: int


@dataclass(frozen=True)
class Evaluation:
    at: float
    state: str
    message: str
    rows: int
    signals: dict[str, float]
    details: dict[str, str] = field(default_factory=dict)
    drift: DriftResult | None = None
    model_version: str | None = None


def serving_version(predictions: pd.DataFrame) -> str | None:
    """The champion version that made most of the window's predictions."""
    champion = predictions[predictions["variant"] == "champion"] if len(predictions) else predictions
    if champion.empty:
        return None
    return str(champion["model_version"].mode().iloc[0])


def _drift(result: DriftResult) -> tuple[dict[str, float], dict[str, str]]:
    signals = {
        "drifted_features": float(len(result.drifted)),
        "drift_share": len(result.drifted) / max(result.tested, 1),
        "max_missing_share": max(f.missing_share for f in result.features),
        "max_new_category_share": max(f.new_category_share or 0.0 for f in result.features),
    }
    for f in result.features:
        signals[f"drifted.{f.name}"] = float(f.drifted)
        signals[f"missing_share.{f.name}"] = f.missing_share
        if f.p_value is not None:
            signals[f"drift_p_value.{f.name}"] = f.p_value
        if f.new_category_share is not None:
            signals[f"new_category_share.{f.name}"] = f.new_category_share
    drifted = [f"{f.name} (p={f.p_value:.2g})" for f in result.features if f.drifted]
    missing = [f"{f.name} ({f.missing_share:.0%} null)" for f in result.features if f.missing_share > 0]
    new = [f"{f.name} ({f.new_category_share:.0%} new)" for f in result.features if f.new_category_share]
    details = {
        "drifted_features": ", ".join(drifted) or "none",
        "max_missing_share": ", ".join(missing) or "none",
        "max_new_category_share": ", ".join(new) or "none",
    }
    return signals, details


def _charts(reading: Reading, rows: int, labelled: int) -> tuple[dict[str, float], dict[str, str]]:
    """The charts' signals; a chart with nothing new in its window says nothing (its alert then resolves rather
    than hold on evidence that stopped coming)."""
    signals: dict[str, float] = {}
    changed = [c for c in reading.changes if c.changed] if rows else []
    if rows:
        signals |= {f"change_score.{c.feature}": c.score for c in reading.changes}
        signals["changed_features"] = float(len(changed))
    if reading.quality is not None and labelled:
        signals["accuracy_change_score"] = reading.quality
    detail = ", ".join(f"{c.feature} ({c.chart}, score {c.score:.2f})" for c in changed) or "none"
    details = {"changed_features": detail}
    if reading.threshold is not None:
        details["change_threshold"] = f"{reading.threshold:g}"
    return signals, details


def estimated_accuracy(probabilities: np.ndarray) -> float:
    """The accuracy a calibrated model expects of its own decisions, without labels (confidence-based performance
    estimation, as NannyML's CBPE): a decision at probability p is right with chance max(p, 1 - p)."""
    return float(np.maximum(probabilities, 1 - probabilities).mean())


def calibration_error(labelled: pd.DataFrame, bins: int = CALIBRATION_BINS) -> float:
    """Expected calibration error of labelled rows (probability, label): over equal-width bins of the predicted
    probability, the gap between the mean prediction and the observed default rate, weighted by the bin's rows."""
    which = np.minimum((labelled["probability"].to_numpy() * bins).astype(int), bins - 1)
    frame = pd.DataFrame({"bin": which, "p": labelled["probability"].to_numpy(), "y": labelled["label"].to_numpy()})
    per_bin = frame.groupby("bin").agg(p=("p", "mean"), y=("y", "mean"), n=("p", "size"))
    return float((per_bin["n"] * (per_bin["p"] - per_bin["y"]).abs()).sum() / len(frame))


def _quality(labelled: pd.DataFrame, baseline: Baseline | None, min_labels: int) -> dict[str, float]:
    if baseline is not None:
        labelled = labelled[labelled["model_version"] == baseline.version]
    signals = {"labelled_rows": float(len(labelled))}
    if len(labelled) >= min_labels:
        accuracy = float(accuracy_score(labelled["label"], labelled["prediction"]))
        f1 = float(f1_score(labelled["label"], labelled["prediction"], zero_division=0))
        signals |= {"accuracy": accuracy, "f1": f1, "calibration_error": calibration_error(labelled)}
        if baseline is not None:
            signals |= {"accuracy_drop": baseline.accuracy - accuracy, "f1_drop": baseline.f1 - f1}
    return signals


def _too_few(rows: int, signals: dict[str, float], seconds: float, min_rows: int) -> str:
    """Why a window has no drift verdict: no traffic, no call answered, or too few predictions."""
    calls = int(signals["requests"])
    if rows == 0 and calls == 0:
        return f"no traffic: no /predict call in the last {seconds:g}s, so no drift verdict"
    failed = round(signals.get("error_rate", 0.0) * calls)
    if rows == 0 and failed:
        return (
            f"no prediction in the last {seconds:g}s: {failed} of {calls} /predict call(s) failed, so no drift verdict"
        )
    return (
        f"only {rows} prediction(s) in the last {seconds:g}s; drift needs at least {min_rows}, so no drift verdict yet"
    )


def evaluate(
    window: Window,
    reference: pd.DataFrame,
    baseline: Baseline | None,
    limits: Limits,
    now: float,
    charts: Reading | None = None,
) -> Evaluation:
    """Signals of one window: traffic, drift per feature and of the prediction, quality on labelled rows (and
    estimated without labels), and what the sequential `charts` (fed every row so far) say, when given."""
    predictions = window.predictions
    rows = len(predictions)
    signals = {
        "rows": float(rows),
        "service_up": float(window.service_down is None),
        **traffic_signals(window.requests, window.seconds),
        **output_signals(predictions, window.fallback_decisions),
        **_quality(window.labelled, baseline, limits.min_labels),
    }
    details = {"service_up": window.service_down or "it answers"}
    if charts is not None:
        chart_signals, chart_details = _charts(charts, rows, len(window.labelled))
        signals |= chart_signals
        details |= chart_details
    breaches = window.policy.breaches(signals)
    signals["policy_breaches"] = float(len(breaches))
    details["policy_breaches"] = "; ".join(breaches) or "none"
    version = serving_version(predictions)
    if rows < limits.min_rows:
        message = _too_few(rows, signals, window.seconds, limits.min_rows)
        return Evaluation(now, INSUFFICIENT, message, rows, signals, details, model_version=version)
    result = detect(reference, predictions, limits.alpha)
    drift_signals, drift_details = _drift(result)
    signals |= drift_signals
    details |= drift_details
    signals["mean_probability"] = float(predictions["probability"].mean())
    if baseline is not None and baseline.version == version:
        scores = predictions.loc[
            (predictions["variant"] == "champion") & (predictions["model_version"] == version), "probability"
        ]
        if len(scores) >= limits.min_rows:
            p = p_value(pd.Series(baseline.probabilities), scores, categorical=False)
            signals |= {"prediction_drift_p_value": p, "prediction_drifted": float(p < limits.alpha)}
            estimate = estimated_accuracy(scores.to_numpy(dtype=float))
            signals |= {
                "estimated_accuracy": estimate,
                "estimated_accuracy_drop": estimated_accuracy(baseline.probabilities) - estimate,
            }
    if result.drifted:
        state, message = DRIFT, f"drift in {details['drifted_features']} ({rows} rows)"
    else:
        state, message = OK, f"no drift in {result.tested} features tested on {rows} rows"
    return Evaluation(now, state, message, rows, signals, details, result, version)
