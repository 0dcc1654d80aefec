"""Lab 04 end to end through the `lab` command: a gated promotion, two bad champions, the rollback to the good one."""

from __future__ import annotations

import json

import pytest

from tests.e2e.test_lab01 import lab
from tests.e2e.test_lab03 import LAB_DRILLS, drill_outcomes
from tests.sandbox import FAST, wait_for

pytestmark = pytest.mark.integration


def test_lab_04_from_start_to_every_step_passed(lab_env: dict[str, str]) -> None:
    env = {**lab_env, **FAST, **LAB_DRILLS}
    assert lab(env, "up").returncode == 0
    try:
        started = lab(env, "start", "lab-04")
        assert started.returncode == 0, started.stderr
        assert "Roll back a bad champion" in started.stdout
        before = json.loads(lab(env, "check", "--json").stdout)
        steps = {s["id"]: s for s in before["steps"]}
        assert steps["promote"]["detail"].startswith("no version promoted through the gate")
        assert steps["rollback"]["detail"].startswith("the incident has not started yet")

        solved = lab(env, "solve", "lab-04", timeout=400)
        assert solved.returncode == 0, solved.stdout + solved.stderr
        assert "version 2 passed the gate" in solved.stdout and "accuracy-floor resolved" in solved.stdout
        assert "@champion 2 -> 3 (outside" in solved.stdout and "@champion 3 -> 4 (outside" in solved.stdout
        assert "@champion rolled back from version 4 to 2" in solved.stdout

        after = lab(env, "check", "--json")
        report = json.loads(after.stdout)
        assert after.returncode == 0, report
        assert report["passed"] == report["total"] == 6
        champions = json.loads(lab(env, "model", "history", "--alias", "champion", "--json").stdout)
        assert [(c["after"], c["via"]) for c in champions][-4:] == [
            ("2", "lab model promote"),
            ("3", "outside the lab commands (MLflow UI or API)"),
            ("4", "outside the lab commands (MLflow UI or API)"),
            ("2", "lab model rollback"),
        ]
        wait_for(lambda: drill_outcomes(env) != [], 180, "the lab's drill to end")
        assert drill_outcomes(env) == ["remediated"]
    finally:
        assert lab(env, "down").returncode == 0
