"""Lab 02 end to end through the `lab` command: drift report, alert rule, a broken release, rollback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli import lab, lab_process, one_line_error
from tests.sandbox import FAST

pytestmark = pytest.mark.integration


def test_lab_02_from_start_to_every_step_passed(lab_env: dict[str, str]) -> None:
    env = {**lab_env, **FAST}
    assert lab_process("up", env=env).returncode == 0  # its own process: the services it starts outlive it
    try:
        started = lab("start", "lab-02", env=env)
        assert started.returncode == 0, started.stderr
        assert "this lab starts from a served model" in started.stdout and "Detect data drift" in started.stdout
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
    finally:
        assert lab("down", env=env).returncode == 0
