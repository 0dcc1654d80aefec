"""Lab 03 end to end through the `lab` command: a candidate, a canary at 10 %, a swapped build, the abort."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab_runtime.journal import DRILL_ENDED, Journal
from tests.e2e.test_lab01 import lab, one_line_error
from tests.sandbox import FAST, wait_for

pytestmark = pytest.mark.integration
# Drills in labs run on the drill clock: at 0.3 a 10-minute limit is 3 minutes and a 20 s hold is 6 s.
LAB_DRILLS = {"LAB_DRILL_TIME_SCALE": "0.3"}


def drill_outcomes(env: dict[str, str]) -> list[str]:
    journal = Journal(Path(env["LAB_STATE_DIR"]) / "journal.db", source="test")
    return [e.payload["outcome"] for e in journal.events([DRILL_ENDED])]


def test_lab_03_from_start_to_every_step_passed(lab_env: dict[str, str]) -> None:
    env = {**lab_env, **FAST, **LAB_DRILLS}
    assert lab(env, "up").returncode == 0
    try:
        started = lab(env, "start", "lab-03")
        assert started.returncode == 0, started.stderr
        assert "Ship a canary" in started.stdout
        assert (Path(env["LAB_STATE_DIR"]) / "workspace" / "lab-03" / "canary.yaml").is_file()
        one_line_error(lab(env, "canary", "start", "9"), "has no version '9'; its versions: 1")
        before = json.loads(lab(env, "check", "--json").stdout)
        steps = {s["id"]: s for s in before["steps"]}
        assert steps["candidate"]["detail"] == "'credit-risk' has 1 version(s), 2 needed"
        assert steps["abort"]["detail"].startswith("the incident has not started yet")

        solved = lab(env, "solve", "lab-03", timeout=400)
        assert solved.returncode == 0, solved.stdout + solved.stderr
        assert "registered candidate version 2" in solved.stdout
        assert "against the champion's" in solved.stdout and "canary aborted: version 3" in solved.stdout

        after = lab(env, "check", "--json")
        report = json.loads(after.stdout)
        assert after.returncode == 0, report
        assert report["passed"] == report["total"] == 5
        changes = json.loads(lab(env, "model", "history", "--alias", "challenger", "--json").stdout)
        assert [(c["before"], c["after"], c["via"]) for c in changes] == [
            (None, "2", "lab canary start"),
            ("2", "3", "outside the lab commands (MLflow UI or API)"),
            ("3", None, "lab canary abort"),
        ]
        wait_for(lambda: drill_outcomes(env) != [], 120, "the lab's drill to end")
        assert drill_outcomes(env) == ["remediated"]
    finally:
        assert lab(env, "down").returncode == 0
