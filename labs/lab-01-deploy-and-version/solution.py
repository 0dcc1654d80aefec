"""Lab 01 reference solution: two registered versions, the better one @champion, served and called."""

import json
import time

import httpx
import mlflow
from mlflow import MlflowClient
from mlflow.models import infer_signature

from lab_runtime.modeling.columns import FEATURES
from lab_runtime.modeling.data import DataGenerator, split_features
from lab_runtime.modeling.model import PIP_REQUIREMENTS, build_pipeline, evaluate
from lab_runtime.settings import load_settings

settings = load_settings()
mlflow.set_tracking_uri(settings.mlflow_url)
mlflow.set_registry_uri(settings.mlflow_url)
MODEL_NAME = settings.model_name

data = DataGenerator(seed=settings.seed)
X, y = split_features(data.training())
holdout = data.holdout()

mlflow.set_experiment("lab-01")
accuracy = {}
for C in (1.0, 0.001):
    with mlflow.start_run(run_name=f"logreg-C{C}"):
        model = build_pipeline(C=C).fit(X, y)
        metrics = evaluate(model, holdout)
        mlflow.log_params({"C": C})
        mlflow.log_metrics(metrics)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=MODEL_NAME,
            signature=infer_signature(X, model.predict(X)),
            pip_requirements=PIP_REQUIREMENTS,
        )
        accuracy[str(info.registered_model_version)] = metrics["accuracy"]
        print(f"version {info.registered_model_version}: C={C} {metrics}")

# Consider every version in the registry, not only this script's: the champion must be the best.
client = MlflowClient()
for mv in client.search_model_versions(f"name='{MODEL_NAME}'"):
    run_metrics = client.get_run(mv.run_id).data.metrics if mv.run_id else {}
    if "accuracy" in run_metrics:
        accuracy.setdefault(mv.version, run_metrics["accuracy"])
best = max(accuracy, key=lambda v: accuracy[v])
client.set_registered_model_alias(MODEL_NAME, "champion", best)
print(f"@champion -> version {best} (accuracy {accuracy[best]:.4f})")

deadline = time.monotonic() + 30
while httpx.get(f"{settings.service_url}/model").json()["champion"] != best:
    if time.monotonic() > deadline:
        raise SystemExit(f"the service did not pick up version {best} within 30 s: see GET /model")
    time.sleep(0.2)

for i, (_, row) in enumerate(data.production(0, 10).iterrows()):
    features = json.loads(row[list(FEATURES)].to_json())
    answer = httpx.post(f"{settings.service_url}/predict", json={"request_id": f"mine-{i}", "features": features})
    answer.raise_for_status()
    print(answer.json())
