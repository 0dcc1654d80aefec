"""MLflow's telemetry is off in every Python process of the project's environment, whatever it imports first."""

from __future__ import annotations

import os
import subprocess
import sys

from lab_runtime import MLFLOW_DEFAULTS, SITE_DEFAULTS_FILE, site_defaults_line

# MLflow turns telemetry off by itself where one of these is set (pytest, CI): a learner's shell sets none.
_CI_MARKERS = ("PYTEST_CURRENT_TEST", "CI", "GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL", "BUILDKITE", "TF_BUILD")


def test_the_site_line_sets_each_default_and_keeps_a_value_already_set() -> None:
    environ = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "true"}
    exec(site_defaults_line().replace("os.environ", "environ"), {"environ": environ, "os": os})
    assert environ == {**MLFLOW_DEFAULTS, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "true"}


def test_a_learner_script_that_imports_mlflow_first_runs_without_telemetry() -> None:
    env = {k: v for k, v in os.environ.items() if k not in MLFLOW_DEFAULTS and k not in _CI_MARKERS}
    script = (
        "import mlflow, os\n"
        "from mlflow.telemetry.client import get_telemetry_client\n"
        "print(os.environ.get('MLFLOW_DISABLE_TELEMETRY'), get_telemetry_client())\n"
    )
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["true", "None"], f"{SITE_DEFAULTS_FILE} missing from the environment: make install"
