"""Labs 01 to 05 end to end through the `lab` command, one after the other on one sandbox, as a learner takes them:
register and promote a model; read the drift report, write an alert rule and roll back a broken release; ship a
canary and abort it on a swapped build; roll back a bad champion; a blind incident with an incident note and the
learner's signed results. Each lab's incident is a real (blind) drill; at the end nothing is left running."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path

import psutil
import pytest

from lab_runtime.events import DRILL_ENDED
from lab_runtime.journal import Journal
from lab_runtime.labs.catalog import find_lab
from tests.cli import lab, lab_process, one_line_error
from tests.sandbox import FAST, wait_for

pytestmark = pytest.mark.integration
# On the tests' clock (a tenth): a drill's 10-minute limit is 1 minute, its 20 s hold 2 s; traffic to fill windows.
ENV = {**FAST, "LAB_PIPELINE_RATE": "60", "LAB_INSTRUCTOR_KEY": "a-key-of-the-instructor-for-tests"}
OUTSIDE = "outside the lab commands (MLflow UI or API)"


def drill_outcomes(env: dict[str, str]) -> list[str]:
    journal = Journal(Path(env["LAB_STATE_DIR"]) / "journal.db", source="test")
    return [e.payload["outcome"] for e in journal.events([DRILL_ENDED])]


def history(env: dict[str, str], alias: str) -> list[tuple[str | None, str | None, str]]:
    changes = json.loads(lab("model", "history", "--alias", alias, "--json", env=env).stdout)
    return [(c["before"], c["after"], c["via"]) for c in changes]


def all_steps_pass(env: dict[str, str], total: int) -> None:
    after = lab("check", "--json", env=env)
    report = json.loads(after.stdout)
    assert after.returncode == 0, report
    assert report["passed"] == report["total"] == total


@pytest.mark.timeout(1200)  # five labs, three with a real drill: about 6 minutes on a busy machine
def test_labs_01_to_05_in_sequence_on_one_sandbox_then_nothing_left_running(
    lab_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**lab_env, **ENV}
    one_line_error(lab("check", env=env), "no lab started yet; run `lab start lab-01` first")
    one_line_error(lab("start", "lab-01", env=env), "the sandbox is not running")
    up = lab_process("up", env=env)  # its own process, as the services it starts outlive it
    assert up.returncode == 0, up.stderr
    try:
        assert "MLflow UI" in up.stdout and env["LAB_SERVICE_PORT"] in up.stdout
        lab_01(env)
        lab_02(env)
        labs_03_and_04(env)
        lab_05(env, tmp_path)
        # the five labs as evidence of skills: lab 04's and lab 05's blind incidents count as drill runs too
        skills = json.loads(lab("skills", "--role", "sre", "--json", env=env).stdout)
        found = {s["skill"]: (s["level"], s["evidence"]) for s in skills["skills"]}
        assert found["deploy-and-version"] == (2, "lab-04 steps candidate, promote"), found
        assert found["canary"] == (2, "lab-03 completed") and found["incident-response"][0] == 2, found
        assert found["roll-back"][0] == 2 and found["monitor-and-detect"][0] >= 1, found
        assert skills["role"]["met"] == ["day-30"], skills["role"]
        logs = lab("logs", "mlflow", "--lines", "5", env=env)
        assert logs.returncode == 0 and 0 < len(logs.stdout.strip().splitlines()) <= 5, logs
        shown = lab("status", env=env).stdout  # the addresses too, for a learner who lost the brief
        assert f"http://127.0.0.1:{env['LAB_SERVICE_PORT']}/docs" in shown and "MLflow UI" in shown, shown
        assert re.search(r"model-service serves: @champion version \d+\n", shown), shown
        service_log = Path(env["LAB_STATE_DIR"]) / "logs" / "model-service.log"
        assert "now serving champion version" in service_log.read_text()  # the learner's log says what changed
        status = json.loads(lab("status", "--json", env=env).stdout)
        pids = [row["pid"] for row in status]
        assert all(row["healthy"] for row in status)
        family = [psutil.Process(p) for p in pids]
        family += [c for p in family for c in p.children(recursive=True)]
    finally:
        down = lab("down", env=env)
    assert down.returncode == 0 and "stopped" in down.stdout
    _, alive = psutil.wait_procs(family, timeout=5)
    assert alive == []
    assert not any(row["running"] for row in json.loads(lab("status", "--json", env=env).stdout))


def lab_01(env: dict[str, str]) -> None:
    """Lab 01: a signed version registered, the better one promoted, the service calling it."""
    one_line_error(lab("start", "lab-42", env=env), "unknown lab 'lab-42'; labs are: lab-01, lab-02")
    started = lab("start", "lab-01", env=env)
    assert started.returncode == 0 and "Deploy and version a model" in started.stdout
    assert (Path(env["LAB_STATE_DIR"]) / "workspace" / "lab-01" / "train.py").is_file()

    before = lab("check", "--json", env=env)
    assert before.returncode == 1
    report = json.loads(before.stdout)
    assert report["passed"] == 0 and report["total"] == 7
    first = report["steps"][0]
    assert first["detail"] == "no experiment named 'lab-01'" and "mlflow.log_metrics" in first["hint"]
    assert all(step["hint"] for step in report["steps"])

    # The order trap: a version registered before the signature existed, then the same training again.
    register(env, C=1.0, signed=False)
    register(env, C=1.0, signed=True)
    steps = {s["id"]: s for s in json.loads(lab("check", "--json", env=env).stdout)["steps"]}
    assert steps["signature"]["passed"], steps["signature"]
    assert "older version(s) 1 unsigned (never served)" in steps["signature"]["detail"]
    assert not steps["second-version"]["passed"]
    assert "trained with C = 1.0: train one with another C" in steps["second-version"]["detail"]
    hinted = lab("hint", env=env)  # the first step that does not pass: the three before it do
    assert hinted.returncode == 0
    assert " ".join(hinted.stdout.split()) == " ".join(
        f"{steps['second-version']['title']}: {steps['second-version']['hint']}".split()
    )

    # the solution is a child process: its output reaches a process's pipe, not CliRunner
    solved = lab_process("solve", "lab-01", env=env, timeout=400)
    assert solved.returncode == 0, solved.stdout + solved.stderr
    after = lab("check", "--json", env=env)
    report = json.loads(after.stdout)
    assert after.returncode == 0, report
    assert report["passed"] == 7 and all(s["passed"] and s["hint"] is None for s in report["steps"])


def lab_02(env: dict[str, str]) -> None:
    """Lab 02: the drift report read, an alert rule written, a broken release caught and rolled back."""
    started = lab("start", "lab-02", env=env)
    assert started.returncode == 0, started.stderr
    assert "Detect data drift" in started.stdout
    assert "starts from a served model: training" not in started.stdout  # lab 01's champion serves
    workspace = Path(env["LAB_STATE_DIR"]) / "workspace" / "lab-02"
    bad_rule = lab("monitor", "add-rules", str(workspace / "prediction-drift.yaml"), env=env)
    one_line_error(bad_rule, "prediction-drift.yaml: rules.0.signal: Value error, unknown signal 'TODO'")
    assert "rules.0.threshold: Input should be a valid number" in bad_rule.stderr
    one_line_error(lab("declare", "aliens", env=env), "unknown diagnosis 'aliens'; declare one of: data-drift, ")

    before = json.loads(lab("check", "--json", env=env).stdout)
    steps = {s["id"]: s for s in before["steps"]}
    assert steps["read-report"]["detail"] == "answers.yaml: credit_score_test, feature_threshold still say TODO"
    assert steps["alert"]["detail"].startswith("the incident has not started yet")
    releases = json.loads(lab("pipeline", "releases", "--json", env=env).stdout)
    assert [r["version"] for r in releases] == ["v1"]  # nothing shipped before the steps pass

    # the solution is a child process: its output reaches a process's pipe, not CliRunner
    solved = lab_process("solve", "lab-02", env=env, timeout=400)
    assert solved.returncode == 0, solved.stdout + solved.stderr
    assert "feature-drift fired: credit_score" in solved.stdout and "rolled back from v2 to v1" in solved.stdout
    after = lab("check", "--json", env=env)
    report = json.loads(after.stdout)
    assert after.returncode == 0, report
    assert report["passed"] == report["total"] == 7
    alerts = json.loads(lab("alerts", "--all", "--json", env=env).stdout)
    assert {"feature-drift", "prediction-drift"} <= {a["rule"] for a in alerts}
    assert all(a["state"] == "resolved" for a in alerts if a["rule"] == "feature-drift")


def labs_03_and_04(env: dict[str, str]) -> None:
    """Lab 03: a candidate shipped as a canary, a swapped build, the abort; lab 04: a gated promotion,
    two bad champions promoted outside the lab commands, the rollback to the last good one."""
    rows = json.loads(lab("model", "list", "--json", env=env).stdout)
    versions = sorted((str(r["version"]) for r in rows), key=int)
    (champion,) = [str(r["version"]) for r in rows if "champion" in r["aliases"]]  # lab 01's

    # Lab 03: ship a canary.
    started = lab("start", "lab-03", env=env)
    assert started.returncode == 0 and "Ship a canary" in started.stdout, started.stderr
    assert (Path(env["LAB_STATE_DIR"]) / "workspace" / "lab-03" / "canary.yaml").is_file()
    one_line_error(lab("canary", "start", "99", env=env), f"has no version '99'; its versions: {', '.join(versions)}")
    steps = {s["id"]: s for s in json.loads(lab("check", "--json", env=env).stdout)["steps"]}
    assert steps["candidate"]["detail"] == "0 version(s) registered since lab-03 started, 1 needed"
    assert steps["abort"]["detail"].startswith("the incident has not started yet")

    # the solution is a child process: its output reaches a process's pipe, not CliRunner
    solved = lab_process("solve", "lab-03", env=env, timeout=600)
    assert solved.returncode == 0, solved.stdout + solved.stderr
    candidate = history(env, "challenger")[0][1]  # the first candidate whose evaluation said go
    assert f"registered candidate version {candidate}; its evaluation: go" in solved.stdout
    swapped = str(max(int(r["version"]) for r in json.loads(lab("model", "list", "--json", env=env).stdout)))
    assert "against the champion's" in solved.stdout and f"canary aborted: version {swapped}" in solved.stdout
    all_steps_pass(env, 5)
    assert history(env, "challenger") == [
        (None, candidate, "lab canary start"),
        (candidate, swapped, OUTSIDE),  # the drill swapped the build
        (swapped, None, "lab canary abort"),
    ]
    wait_for(lambda: len(drill_outcomes(env)) == 1, 120, "lab 03's drill to end")
    assert drill_outcomes(env) == ["remediated"]

    # Lab 04: roll back a bad champion, on the same sandbox; it registers three versions.
    promoted, bad, worse = (str(int(swapped) + n) for n in range(1, 4))
    started = lab("start", "lab-04", env=env)
    assert started.returncode == 0 and "Roll back a bad champion" in started.stdout, started.stderr
    steps = {s["id"]: s for s in json.loads(lab("check", "--json", env=env).stdout)["steps"]}
    assert steps["candidate"]["detail"] == "0 version(s) registered since lab-04 started, 1 needed"  # not lab 03's
    assert steps["promote"]["detail"].startswith("no version promoted through the gate")
    assert steps["rollback"]["detail"].startswith("the incident has not started yet")

    # the solution is a child process: its output reaches a process's pipe, not CliRunner
    solved = lab_process("solve", "lab-04", env=env, timeout=400)
    assert solved.returncode == 0, solved.stdout + solved.stderr
    assert f"version {promoted} passed the gate" in solved.stdout and "accuracy-floor resolved" in solved.stdout
    assert f"@champion {promoted} -> {bad} (outside" in solved.stdout
    assert f"@champion {bad} -> {worse} (outside" in solved.stdout
    assert f"@champion rolled back from version {worse} to {promoted}" in solved.stdout
    all_steps_pass(env, 6)
    assert history(env, "champion")[-4:] == [
        (champion, promoted, "lab model promote"),
        (promoted, bad, OUTSIDE),
        (bad, worse, OUTSIDE),  # the job promoted twice: the previous champion is bad too
        (worse, promoted, "lab model rollback"),
    ]
    wait_for(lambda: len(drill_outcomes(env)) == 2, 180, "lab 04's drill to end")
    assert drill_outcomes(env) == ["remediated", "remediated"]


def lab_05(env: dict[str, str], tmp_path: Path) -> None:
    """Lab 05: a blind incident triaged, declared and remediated, an incident note checked against the journal,
    then the learner's results exported as a signed bundle and verified."""
    started = lab("start", "lab-05", env=env)
    assert started.returncode == 0 and "Incident response" in started.stdout, started.stderr
    note = Path(env["LAB_STATE_DIR"]) / "workspace" / "lab-05" / "incident-note.md"
    assert "Diagnosis: TODO" in note.read_text()
    lab_files = Path(__file__).parents[2] / "labs" / "lab-05-incident-response"
    assert "error" not in (lab_files / "lab.yaml").read_text().split("run_drill")[0].lower()  # blind: not told

    # The check that starts the shift waits for the incident's drill: it says so, then reports what is true.
    def first_check_on_call() -> subprocess.CompletedProcess[str]:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            checked = lab("check", "--json", env=env)
            if {s["id"]: s for s in json.loads(checked.stdout)["steps"]}["on-call"]["passed"]:
                return checked
        raise AssertionError("the monitor saw no traffic within 120s")

    on_call = first_check_on_call()
    assert "getting the lab's next phase ready" in on_call.stderr and "ready after" in on_call.stderr
    assert "meanwhile: your shift has started" in on_call.stderr
    steps = {s["id"]: s for s in json.loads(on_call.stdout)["steps"]}
    assert steps["diagnose"]["detail"] == "no diagnosis declared yet", steps

    # the solution is a child process: its output reaches a process's pipe, not CliRunner
    solved = lab_process("solve", "lab-05", env=env, timeout=400)
    assert solved.returncode == 0, solved.stdout + solved.stderr
    assert "error-rate fired" in solved.stdout and "incident note accepted" in solved.stdout
    report = json.loads(lab("check", "--json", env=env).stdout)
    assert report["passed"] == report["total"] == 4, report

    # The note is judged against the journal: a wrong diagnosis and a detection five minutes off are named.
    good = note.read_text()
    detected = re.search(r"- Detected: (\S+)", good)
    assert detected is not None
    later = (datetime.strptime(detected[1], "%H:%M:%S") + timedelta(minutes=5)).strftime("%H:%M:%S")
    wrong = good.replace("Diagnosis: errors", "Diagnosis: latency").replace(detected[0], f"- Detected: {later}")
    note.write_text(wrong)
    steps = {s["id"]: s for s in json.loads(lab("check", "--json", env=env).stdout)["steps"]}
    assert not steps["note"]["passed"]
    assert "Diagnosis: 'latency' is not what happened" in steps["note"]["detail"]
    # The note has whole seconds, the journal does not: 5 minutes later reads as 4m59s or 5m.
    assert re.search(
        rf"Detected: {later} is (4m59s|5m) after what the journal recorded \(allowed: 1m\)", steps["note"]["detail"]
    )
    note.write_text(good)

    runs = json.loads(lab("grade", "--json", env=env).stdout)
    assert [r["drill"] for r in runs] == ["canary-swapped-build", "rollback-nightly-promotions", "incident-error-burst"]
    run = runs[-1]
    assert (run["outcome"], run["wrong_declarations"]) == ("remediated", 0)
    assert 0 < run["ttd"] < run["ttr"] and run["blind"] and run["finished"]

    bundle = tmp_path / "learner.json"
    exported = lab("results", "export", "--out", str(bundle), env=env)
    assert exported.returncode == 0 and "exported 3 drill run(s) and 5 lab(s)" in exported.stdout
    body = json.loads(bundle.read_text())
    totals = {"lab-01": 7, "lab-02": 7, "lab-03": 5, "lab-04": 6, "lab-05": 4}
    steps = {k: [s.id for s in find_lab(k).steps] for k in totals}
    checked = [lab.pop("checked_at") for lab in body["labs"]]  # when the check that passed them all began
    assert checked == sorted(checked) and all(isinstance(t, float) for t in checked), checked
    assert body["labs"] == [
        {"lab": k, "passed": n, "total": n, "completed": True, "steps": steps[k]} for k, n in totals.items()
    ]
    body = json.loads(bundle.read_text())
    assert lab("results", "verify", str(bundle), env=env).returncode == 0
    body["runs"][0]["ttr"] = 1.0
    bundle.write_text(json.dumps(body))
    refused = lab("results", "verify", str(bundle), env=env)
    assert refused.returncode == 1 and "learner.json was changed after it was signed" in refused.stderr


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
