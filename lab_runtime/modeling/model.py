"""The sandbox's toy model: a scikit-learn pipeline for the credit-risk data, trained and registered.

One code path (`train_on_rows`) trains, evaluates, logs and registers every version: the seeded
baseline, the regressed versions drills serve, and retraining on recent labelled traffic.
"""

from __future__ import annotations

import sqlite3
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from lab_runtime.durations import format_duration
from lab_runtime.errors import NotFound
from lab_runtime.modeling.columns import CATEGORICAL_FEATURES, FEATURES, INTEGER_FEATURES, LABEL, NUMERIC_FEATURES
from lab_runtime.modeling.data import DataGenerator, split_features
from lab_runtime.modeling.regression import Regression

if TYPE_CHECKING:
    from lab_runtime.settings import Settings

# Listing requirements skips MLflow's slow inference of them (a subprocess that imports the model).
PIP_REQUIREMENTS = ["scikit-learn", "pandas", "numpy"]
RETRAIN_EXPERIMENT = "retraining"
THRESHOLD = 0.5  # a probability of default at or over this predicts a default (accuracy, F1)


class SlowStep(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """A pass-through step whose transform sleeps `ms` milliseconds: a model that is slow to score.

    Defined here (not in a test or a drill) so the model service, which imports `lab_runtime`, can unpickle it.
    """

    def __init__(self, ms: float = 0.0) -> None:
        self.ms = ms

    def fit(self, X: Any, y: Any = None) -> SlowStep:
        return self

    def transform(self, X: Any) -> Any:
        time.sleep(self.ms / 1000.0)
        return X


# MLflow saves with skops, which loads only trusted types. Every version lists the same ones (whether it
# holds a SlowStep or not), so the model's files do not give a slow version away.
TRUSTED_TYPES = [f"{SlowStep.__module__}.{SlowStep.__qualname__}"]


def build_pipeline(
    C: float = 1.0, features: tuple[str, ...] = NUMERIC_FEATURES + CATEGORICAL_FEATURES, slow_ms: float = 0.0
) -> Pipeline:
    """Scale the numeric features, one-hot the categorical ones, then a logistic regression.

    Columns not in `features` are dropped by the ColumnTransformer, so the model still accepts them.
    """
    numeric = [f for f in features if f in NUMERIC_FEATURES]
    categorical = [f for f in features if f in CATEGORICAL_FEATURES]
    prep = ColumnTransformer(
        [("num", StandardScaler(), numeric), ("cat", OneHotEncoder(handle_unknown="ignore"), categorical)]
    )
    steps: list[tuple[str, Any]] = [("prep", prep)]
    if slow_ms > 0:
        steps.append(("slow", SlowStep(slow_ms)))
    return Pipeline([*steps, ("clf", LogisticRegression(C=C, max_iter=500))])


NOISY_MIN_DROP = 0.2  # accuracy a noisy-labels fit loses on its own training rows, at least (when a draw allows)
NOISY_DRAWS = 8


def flip_labels(y: np.ndarray, confidence: np.ndarray, share: float, seed: int) -> np.ndarray:
    """`y` with a `share` of its labels flipped: a seeded random half of the 2*share rows of highest `confidence`.

    Uniform random flips barely move a logistic regression (30 % flipped costs under a point of accuracy:
    the decision boundary stays where it was); flipping where a fit is surest does lower accuracy and AUC.
    """
    flipped = np.asarray(y).copy()
    count = round(share * len(flipped))
    if count == 0:
        return flipped
    pool = np.argsort(-confidence, kind="stable")[: min(len(flipped), 2 * count)]
    chosen = np.random.default_rng(seed).choice(pool, count, replace=False)
    flipped[chosen] = 1 - flipped[chosen]
    return flipped


def fit(
    X: pd.DataFrame, y: pd.Series, *, C: float = 1.0, seed: int = 42, regression: Regression | None = None
) -> Pipeline:
    """The pipeline fitted on `X`, `y`, made worse as `regression` says."""
    worse = regression or Regression()
    features = tuple(f for f in FEATURES if f != worse.drop_feature)
    labels = y.to_numpy().copy()
    if worse.repaid_from:
        labels[np.any([X[f].to_numpy() >= v for f, v in worse.repaid_from.items()], axis=0)] = 0
    if worse.repaid_in:
        labels[np.any([X[f].isin(values).to_numpy() for f, values in worse.repaid_in.items()], axis=0)] = 0
    if worse.noisy_labels > 0:
        labels = noisy(X, labels, features, C, worse.noisy_labels, seed)
    return build_pipeline(C, features, worse.slow_predict_ms).fit(X, labels)


def noisy(
    X: pd.DataFrame, labels: np.ndarray, features: tuple[str, ...], C: float, share: float, seed: int
) -> np.ndarray:
    """`labels` with a `share` flipped where a clean fit is surest (`flip_labels`), from the first of `NOISY_DRAWS`
    seeded draws whose fit loses `NOISY_MIN_DROP` of accuracy on these rows, else the draw that loses most.

    How much one draw costs varies with the rows it picks (at a share of 0.35: from 0.05 to 0.3 of accuracy), so a
    single draw can leave a version good enough to pass for the champion it replaces.
    """
    clean = build_pipeline(C, features).fit(X, labels)
    proba = clean.predict_proba(X)[:, 1]
    floor = accuracy_score(labels, proba >= THRESHOLD) - NOISY_MIN_DROP
    worst, worst_accuracy = labels, 1.0
    for draw in range(NOISY_DRAWS):
        flipped = flip_labels(labels, np.abs(proba - 0.5), share, seed + draw)
        fitted = build_pipeline(C, features).fit(X, flipped)
        accuracy = accuracy_score(labels, fitted.predict_proba(X)[:, 1] >= THRESHOLD)
        if accuracy <= floor:
            return flipped
        if accuracy < worst_accuracy:
            worst, worst_accuracy = flipped, accuracy
    return worst


def scores(y: pd.Series | np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Accuracy, F1 and ROC AUC of probabilities of default `proba` against labels `y` (a default predicted from
    `THRESHOLD`; no AUC when the labels hold only one class)."""
    pred = (proba >= THRESHOLD).astype(int)
    metrics = {"accuracy": float(accuracy_score(y, pred)), "f1": float(f1_score(y, pred, zero_division=0))}
    if len(np.unique(y)) > 1:
        metrics["roc_auc"] = float(roc_auc_score(y, proba))
    return metrics


def evaluate(model: Pipeline, frame: pd.DataFrame) -> dict[str, float]:
    """Accuracy, F1 and ROC AUC of `model` on labelled rows (no AUC when they hold only one class)."""
    X, y = split_features(frame)
    return scores(y, model.predict_proba(X)[:, 1])


@dataclass(frozen=True)
class Registered:
    version: str
    run_id: str
    metrics: dict[str, float]
    train_rows: int = 0
    test_rows: int = 0


def train_on_rows(
    tracking_url: str,
    model_name: str,
    frame: pd.DataFrame,
    *,
    holdout: pd.DataFrame | None = None,
    seed: int = 42,
    C: float = 1.0,
    regression: Regression | None = None,
    alias: str | None = None,
    description: str | None = None,
    experiment: str = "sandbox",
    params: dict[str, Any] | None = None,
) -> Registered:
    """Train on labelled `frame`, evaluate on `holdout` (default: a seeded 20 % of `frame`), log, register.

    The run's params are `C`, `seed`, `train_rows` and `params`: never the regression, so drills stay blind.
    """
    import mlflow
    from mlflow.models import infer_signature

    if holdout is None:
        frame, holdout = _split(frame, seed)
    X, y = split_features(frame)
    model = fit(X, y, C=C, seed=seed, regression=regression)
    metrics = evaluate(model, holdout)
    mlflow.set_tracking_uri(tracking_url)
    mlflow.set_registry_uri(tracking_url)
    mlflow.set_experiment(experiment)
    with mlflow.start_run() as run, warnings.catch_warnings():
        # Integer columns are meant: the service refuses a float where the data has whole numbers.
        warnings.filterwarnings("ignore", message=".*Inferred schema contains integer column", category=UserWarning)
        mlflow.log_params({"C": C, "seed": seed, "train_rows": len(frame), **(params or {})})
        mlflow.log_metrics(metrics)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(X, model.predict(X)),
            registered_model_name=model_name,
            pip_requirements=PIP_REQUIREMENTS,
            skops_trusted_types=TRUSTED_TYPES,
        )
    version = str(info.registered_model_version)
    client = mlflow.MlflowClient(tracking_url, registry_uri=tracking_url)
    if description:
        client.update_model_version(model_name, version, description=description)
    if alias:
        client.set_registered_model_alias(model_name, alias, version)
    return Registered(version, run.info.run_id, metrics, len(frame), len(holdout))


def train_and_register(
    tracking_url: str,
    model_name: str,
    *,
    seed: int = 42,
    C: float = 1.0,
    regression: Regression | None = None,
    alias: str | None = None,
    description: str | None = None,
    experiment: str = "sandbox",
) -> Registered:
    """Train on the seeded training set, evaluate on the seeded holdout, register, optionally alias."""
    data = DataGenerator(seed)
    return train_on_rows(
        tracking_url,
        model_name,
        data.training(),
        holdout=data.holdout(),
        seed=seed,
        C=C,
        regression=regression,
        alias=alias,
        description=description,
        experiment=experiment,
    )


def _split(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    counts = frame[LABEL].value_counts()
    stratify = frame[LABEL] if len(counts) == 2 and counts.min() >= 5 else None
    train, test = train_test_split(frame, test_size=0.2, random_state=seed, stratify=stratify)
    return train, test


def typed(rows: pd.DataFrame) -> pd.DataFrame:
    """Features (model order) and label with the training set's types, so the signature is the baseline's."""
    frame = rows[[*FEATURES, LABEL]].copy()
    for name in NUMERIC_FEATURES:
        frame[name] = frame[name].astype("int64" if name in INTEGER_FEATURES else "float64")
    for name in CATEGORICAL_FEATURES:
        frame[name] = frame[name].astype(str)
    frame[LABEL] = frame[LABEL].astype("int64")
    return frame.reset_index(drop=True)


# The newest label of each request (a request labelled twice counts once), joined to its prediction.
def labelled_traffic(settings: Settings, since: float) -> tuple[pd.DataFrame, int]:
    """Decisions served since `since` (the model's and the fallback's) that got a label, as typed training rows; and
    how many lacked a feature."""
    from lab_runtime.predlog import PredictionLog

    path = settings.prediction_log_path
    if not path.exists():
        return typed(pd.DataFrame(columns=[*FEATURES, LABEL])), 0
    log = PredictionLog(path)
    try:
        rows = log.labelled_features(since)
    except sqlite3.Error as exc:
        raise NotFound(f"cannot read labelled predictions from {path} ({exc}); is the sandbox up?") from exc
    finally:
        log.close()
    records = [{**features, LABEL: label} for features, label in rows]
    frame = pd.DataFrame.from_records(records, columns=[*FEATURES, LABEL])
    complete = frame.dropna()
    return typed(complete), len(frame) - len(complete)


def retrain_recent(settings: Settings, window_seconds: float, min_rows: int, *, seed: int = 42) -> Registered:
    """Train on the labelled traffic of the last `window_seconds`, evaluate on 20 % of it, register a version."""
    from lab_runtime.registry.rest import fail_fast

    rows, incomplete = labelled_traffic(settings, time.time() - window_seconds)
    window = format_duration(window_seconds)
    skipped = f" ({incomplete} more lack a feature)" if incomplete else ""
    if len(rows) < min_rows:
        raise NotFound(
            f"only {len(rows)} labelled predictions in the last {window}{skipped}, fewer than the {min_rows} "
            "needed; wait for more labels or widen --window"
        )
    if rows[LABEL].nunique() < 2:
        only = rows[LABEL].iloc[0]
        raise NotFound(f"all {len(rows)} labelled predictions in the window have label {only}; widen --window")
    with fail_fast():
        return train_on_rows(
            settings.mlflow_url,
            settings.model_name,
            rows,
            seed=seed,
            experiment=RETRAIN_EXPERIMENT,
            description=f"retrained on {len(rows)} labelled predictions of the last {window}",
            params={"source": "labelled traffic", "window_s": window_seconds},
        )


def holdout_metrics(settings: Settings, versions: list[str]) -> dict[str, dict[str, float]]:
    """Accuracy, F1 and ROC AUC of each registered version on the seeded holdout, all scored on the same rows."""
    import mlflow.sklearn

    from lab_runtime.registry.rest import fail_fast

    mlflow.set_tracking_uri(settings.mlflow_url)
    mlflow.set_registry_uri(settings.mlflow_url)
    holdout = DataGenerator(settings.seed).holdout()
    with fail_fast():
        return {v: evaluate(mlflow.sklearn.load_model(f"models:/{settings.model_name}/{v}"), holdout) for v in versions}
