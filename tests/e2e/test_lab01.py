"""Lab 01 end to end through the `lab` command, as a learner runs it."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import psutil
import pytest

from tests.cli import lab, lab_process, one_line_error

pytestmark = pytest.mark.integration


def register(env: dict[str, str], C: float, signed: bool) -> None:
    """A learner's training run in lab 01, registered with or without a signature."""
    import mlflow
    from mlflow.models import infer_signature

    from lab_runtime.modeling.data import DataGenerator, split_features
    from lab_runtime.modeling.model import PIP_REQUIREMENTS, build_pipeline, evaluate

    url = f"http://127.0.0.1:{env['LAB_MLFLOW_PORT']}"
    mlflow.set_tracking_uri(url)
    mlflow.set_registry_uri(url)
    data = DataGenerator(42)
    X, y = split_features(data.training())
    model = build_pipeline(C=C).fit(X, y)
    mlflow.set_experiment("lab-01")
    with mlflow.start_run():
        mlflow.log_params({"C": C})
        mlflow.log_metrics(evaluate(model, data.holdout()))
        signature = infer_signature(X, model.predict(X)) if signed else None
        mlflow.sklearn.log_model(
            model, name="model", registered_model_name="credit-risk", signature=signature,
            pip_requirements=PIP_REQUIREMENTS,
        )  # fmt: skip


def test_lab_01_from_start_to_every_step_passed_then_nothing_left_running(lab_env: dict[str, str]) -> None:
    one_line_error(lab("check", env=lab_env), "no lab started yet; run `lab start lab-01` first")
    one_line_error(lab("start", "lab-01", env=lab_env), "the sandbox is not running")
    up = lab_process("up", env=lab_env)  # its own process, as the services it starts outlive it
    assert up.returncode == 0, up.stderr
    try:
        assert "MLflow UI" in up.stdout and lab_env["LAB_SERVICE_PORT"] in up.stdout
        one_line_error(lab("start", "lab-42", env=lab_env), "unknown lab 'lab-42'; labs are: lab-01, lab-02")
        started = lab("start", "lab-01", env=lab_env)
        assert started.returncode == 0 and "Deploy and version a model" in started.stdout
        assert (Path(lab_env["LAB_STATE_DIR"]) / "workspace" / "lab-01" / "train.py").is_file()

        before = lab("check", "--json", env=lab_env)
        assert before.returncode == 1
        report = json.loads(before.stdout)
        assert report["passed"] == 0 and report["total"] == 7
        first = report["steps"][0]
        assert first["detail"] == "no experiment named 'lab-01'" and "mlflow.log_metrics" in first["hint"]
        assert all(step["hint"] for step in report["steps"])

        # The order trap: a version registered before the signature existed, then the same training again.
        register(lab_env, C=1.0, signed=False)
        register(lab_env, C=1.0, signed=True)
        steps = {s["id"]: s for s in json.loads(lab("check", "--json", env=lab_env).stdout)["steps"]}
        assert steps["signature"]["passed"], steps["signature"]
        assert "older version(s) 1 unsigned (never served)" in steps["signature"]["detail"]
        assert not steps["second-version"]["passed"]
        assert "trained with C = 1.0: train one with another C" in steps["second-version"]["detail"]

        # the solution is a child process: its output reaches a process's pipe, not CliRunner
        solved = lab_process("solve", "lab-01", env=lab_env, timeout=400)
        assert solved.returncode == 0, solved.stdout + solved.stderr
        after = lab("check", "--json", env=lab_env)
        report = json.loads(after.stdout)
        assert after.returncode == 0, report
        assert report["passed"] == 7 and all(s["passed"] and s["hint"] is None for s in report["steps"])

        logs = lab("logs", "mlflow", "--lines", "5", env=lab_env)
        assert logs.returncode == 0 and 0 < len(logs.stdout.strip().splitlines()) <= 5, logs
        shown = lab("status", env=lab_env).stdout  # the addresses too, for a learner who lost the brief
        assert f"http://127.0.0.1:{lab_env['LAB_SERVICE_PORT']}/docs" in shown and "MLflow UI" in shown, shown
        assert re.search(r"model-service serves: @champion version \d+\n", shown), shown
        service_log = Path(lab_env["LAB_STATE_DIR"]) / "logs" / "model-service.log"
        assert "now serving champion version" in service_log.read_text()  # the learner's log says what changed
        status = json.loads(lab("status", "--json", env=lab_env).stdout)
        pids = [row["pid"] for row in status]
        assert all(row["healthy"] for row in status)
        family = [psutil.Process(p) for p in pids]
        family += [c for p in family for c in p.children(recursive=True)]
    finally:
        down = lab("down", env=lab_env)
    assert down.returncode == 0 and "stopped" in down.stdout
    _, alive = psutil.wait_procs(family, timeout=5)
    assert alive == []
    assert not any(row["running"] for row in json.loads(lab("status", "--json", env=lab_env).stdout))


def test_a_taken_port_gets_one_line_naming_port_and_fix(lab_env: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(lab_env["LAB_MLFLOW_PORT"])))
        taken.listen()
        result = lab("up", env=lab_env)  # refused before it starts anything
    one_line_error(result, f"port {lab_env['LAB_MLFLOW_PORT']} for mlflow is already in use")
    assert (
        "choose another port with LAB_MLFLOW_PORT (a line `LAB_MLFLOW_PORT=<port>` in the project's .env"
        in result.stderr
    )


def test_a_corrupt_state_directory_gets_one_line_naming_the_file(lab_env: dict[str, str]) -> None:
    state = Path(lab_env["LAB_STATE_DIR"])
    state.mkdir(parents=True)
    (state / "journal.db").write_bytes(b"garbage" * 500)
    one_line_error(lab("check", env=lab_env), "journal.db is corrupt or not a database")
    (state / "run").mkdir(exist_ok=True)
    (state / "run" / "mlflow.json").write_text("{oops")
    one_line_error(lab("status", env=lab_env), "mlflow.json is corrupt")
    cleared = lab("down", "--force", env=lab_env)
    assert cleared.returncode == 0 and not (state / "run" / "mlflow.json").exists()
