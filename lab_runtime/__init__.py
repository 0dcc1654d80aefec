"""The sandbox's runtime. Importing it sets MLflow's process-wide defaults, once, for every process the project
starts or runs in (the CLI, the services and what they spawn, tests, lab solutions): no telemetry (its thread
sets and unsets a variable while other threads read the environment: a `KeyError` under load) and no progress
bars. A variable already set wins. `make install` also writes them into the project's environment as a `.pth`
file (`write_site_defaults`), so a learner's own script that imports `mlflow` first gets them too."""

import os
import warnings
from pathlib import Path

MLFLOW_DEFAULTS = {"MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
SITE_DEFAULTS_FILE = "lab-runtime-defaults.pth"
for _name, _value in MLFLOW_DEFAULTS.items():
    os.environ.setdefault(_name, _value)

# MLflow hints on every signature with an integer column that missing values would not fit it. The service refuses
# a request with a missing value at its schema (a 422 naming the field), so the hint never applies here.
warnings.filterwarnings("ignore", message=r"Hint: Inferred schema contains integer column", category=UserWarning)


def site_defaults_line() -> str:
    """The `.pth` line that sets `MLFLOW_DEFAULTS` at the start of every Python process of an environment."""
    return f"import os; [os.environ.setdefault(k, v) for k, v in {MLFLOW_DEFAULTS!r}.items()]\n"


def write_site_defaults(site_packages: str) -> Path:
    """Writes the defaults' `.pth` file into `site_packages` (Python runs its `import` lines at start-up)."""
    path = Path(site_packages) / SITE_DEFAULTS_FILE
    path.write_text(site_defaults_line())
    return path
