"""The sandbox's runtime. Importing it sets MLflow's process-wide defaults, once, for every process the project
starts or runs in (the CLI, the services and what they spawn, tests, lab solutions): no telemetry (its thread
sets and unsets a variable while other threads read the environment: a `KeyError` under load) and no progress
bars. A variable already set wins."""

import os
import warnings

MLFLOW_DEFAULTS = {"MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
for _name, _value in MLFLOW_DEFAULTS.items():
    os.environ.setdefault(_name, _value)

# MLflow hints on every signature with an integer column that missing values would not fit it. The service refuses
# a request with a missing value at its schema (a 422 naming the field), so the hint never applies here.
warnings.filterwarnings("ignore", message=r"Hint: Inferred schema contains integer column", category=UserWarning)
