"""Lab 01 starter: train, log, register, promote and call the service. Work through the TODOs.

Run it (with the project's environment active: `source .venv/bin/activate` in the project folder) with
    python train.py          (from .lab/workspace/lab-01/, or give its path from any folder of the project)
then check your progress with
    lab check
"""

import httpx
import mlflow
from mlflow import MlflowClient
from mlflow.models import infer_signature

from lab_runtime.modeling.data import DataGenerator, split_features
from lab_runtime.modeling.model import PIP_REQUIREMENTS, build_pipeline, evaluate
from lab_runtime.settings import load_settings

settings = load_settings()
mlflow.set_tracking_uri(settings.mlflow_url)
mlflow.set_registry_uri(settings.mlflow_url)
MODEL_NAME = settings.model_name  # "credit-risk": the service serves this registered model

data = DataGenerator(seed=settings.seed)
X, y = split_features(data.training())
holdout = data.holdout()

mlflow.set_experiment("lab-01")
with mlflow.start_run(run_name="logreg-C1"):
    model = build_pipeline(C=1.0).fit(X, y)
    metrics = evaluate(model, holdout)
    print("holdout metrics:", metrics)
    # TODO 1: log the hyper-parameter C and the holdout metrics to this run
    #         (mlflow.log_params, mlflow.log_metrics).
    # TODO 2: give the model a signature: signature = infer_signature(X, model.predict(X)).
    #         What does the service do with it? (Hint: try GET /docs on the service once it serves your model.)
    # TODO 3: log the model with that signature AND register it, in one call:
    #         mlflow.sklearn.log_model(model, name="model", registered_model_name=MODEL_NAME,
    #                                  signature=signature, pip_requirements=PIP_REQUIREMENTS)

# TODO 4: train a second version (another C, e.g. 0.01) in its own run and register it too.

# TODO 5: compare the two versions' accuracy and point the "champion" alias at the better one:
#         MlflowClient().set_registered_model_alias(MODEL_NAME, "champion", version)

# TODO 6: wait until the service serves your champion (GET {settings.service_url}/model), then
#         POST a few production records to /predict:
#         features, _ = split_features(data.production(0, 5))  # the model's columns only: no ids, no labels
#         then one request per row of features.to_dict("records"):
#         {"request_id": f"mine-{i}", "features": {feature: value, ...}}
#         (your own request ids: the pipeline's traffic uses ids like s42-1001, and lab check counts only yours)
_ = (httpx, MlflowClient, infer_signature, PIP_REQUIREMENTS)  # used once the TODOs are done
