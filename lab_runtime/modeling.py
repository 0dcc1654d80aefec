"""The sandbox's toy model: a scikit-learn pipeline for the credit-risk data, trained and registered."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from lab_runtime.data import CATEGORICAL_FEATURES, NUMERIC_FEATURES, DataGenerator, split_features

# Listing requirements skips MLflow's slow inference of them (a subprocess that imports the model).
PIP_REQUIREMENTS = ["scikit-learn", "pandas", "numpy"]


def build_pipeline(C: float = 1.0, features: tuple[str, ...] = NUMERIC_FEATURES + CATEGORICAL_FEATURES) -> Pipeline:
    """Scale the numeric features, one-hot the categorical ones, then a logistic regression."""
    numeric = [f for f in features if f in NUMERIC_FEATURES]
    categorical = [f for f in features if f in CATEGORICAL_FEATURES]
    prep = ColumnTransformer(
        [("num", StandardScaler(), numeric), ("cat", OneHotEncoder(handle_unknown="ignore"), categorical)]
    )
    return Pipeline([("prep", prep), ("clf", LogisticRegression(C=C, max_iter=500))])


def evaluate(model: Pipeline, frame: pd.DataFrame) -> dict[str, float]:
    """Accuracy, F1 and ROC AUC of `model` on labelled rows."""
    X, y = split_features(frame)
    proba = model.predict_proba(X)[:, 1]
    pred = (proba >= 0.5).astype(int)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "roc_auc": float(roc_auc_score(y, proba)),
    }


@dataclass(frozen=True)
class Registered:
    version: str
    run_id: str
    metrics: dict[str, float]


def train_and_register(
    tracking_url: str,
    model_name: str,
    *,
    seed: int = 42,
    C: float = 1.0,
    alias: str | None = None,
    experiment: str = "sandbox",
) -> Registered:
    """Train on the seeded training set, log to MLflow with a signature, register, optionally alias."""
    import mlflow
    from mlflow.models import infer_signature

    data = DataGenerator(seed)
    X, y = split_features(data.training())
    model = build_pipeline(C).fit(X, y)
    metrics = evaluate(model, data.holdout())
    mlflow.set_tracking_uri(tracking_url)
    mlflow.set_experiment(experiment)
    with mlflow.start_run() as run:
        mlflow.log_params({"C": C, "seed": seed})
        mlflow.log_metrics(metrics)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(X, model.predict(X)),
            registered_model_name=model_name,
            pip_requirements=PIP_REQUIREMENTS,
        )
    version = str(info.registered_model_version)
    if alias:
        mlflow.MlflowClient().set_registered_model_alias(model_name, alias, version)
    return Registered(version, run.info.run_id, metrics)
