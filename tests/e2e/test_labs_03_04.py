"""Labs 03 and 04 end to end through the `lab` command, one after the other on one sandbox, as a learner takes them:
a candidate shipped as a canary, a swapped build, the abort; then a gated promotion, two bad champions promoted
outside the lab commands, the rollback to the last good one. Each lab's incident is a real blind drill."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab_runtime.events import DRILL_ENDED
from lab_runtime.journal import Journal
from tests.cli import lab, lab_process, one_line_error
from tests.sandbox import FAST, wait_for

pytestmark = pytest.mark.integration
# On the tests' clock (a tenth): a drill's 10-minute limit is 1 minute, its 20 s hold 2 s; traffic to fill windows.
ENV = {**FAST, "LAB_PIPELINE_RATE": "60"}
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


@pytest.mark.timeout(600)  # two labs, each with a real drill: about 250 s, over the default 300 s on a busy machine
def test_labs_03_then_04_from_start_to_every_step_passed(lab_env: dict[str, str]) -> None:
    env = {**lab_env, **ENV}
    assert lab_process("up", env=env).returncode == 0  # its own process: the services it starts outlive it
    try:
        # Lab 03: ship a canary.
        started = lab("start", "lab-03", env=env)
        assert started.returncode == 0 and "Ship a canary" in started.stdout, started.stderr
        assert (Path(env["LAB_STATE_DIR"]) / "workspace" / "lab-03" / "canary.yaml").is_file()
        one_line_error(lab("canary", "start", "9", env=env), "has no version '9'; its versions: 1")
        steps = {s["id"]: s for s in json.loads(lab("check", "--json", env=env).stdout)["steps"]}
        assert steps["candidate"]["detail"] == "0 version(s) registered since lab-03 started, 1 needed"
        assert steps["abort"]["detail"].startswith("the incident has not started yet")

        # the solution is a child process: its output reaches a process's pipe, not CliRunner
        solved = lab_process("solve", "lab-03", env=env, timeout=400)
        assert solved.returncode == 0, solved.stdout + solved.stderr
        assert "registered candidate version 2" in solved.stdout
        assert "against the champion's" in solved.stdout and "canary aborted: version 3" in solved.stdout
        all_steps_pass(env, 5)
        assert history(env, "challenger") == [
            (None, "2", "lab canary start"),
            ("2", "3", OUTSIDE),  # the drill swapped the build
            ("3", None, "lab canary abort"),
        ]
        wait_for(lambda: len(drill_outcomes(env)) == 1, 120, "lab 03's drill to end")
        assert drill_outcomes(env) == ["remediated"]

        # Lab 04: roll back a bad champion, on the same sandbox.
        started = lab("start", "lab-04", env=env)
        assert started.returncode == 0 and "Roll back a bad champion" in started.stdout, started.stderr
        steps = {s["id"]: s for s in json.loads(lab("check", "--json", env=env).stdout)["steps"]}
        assert steps["candidate"]["detail"] == "0 version(s) registered since lab-04 started, 1 needed"  # not lab 03's
        assert steps["promote"]["detail"].startswith("no version promoted through the gate")
        assert steps["rollback"]["detail"].startswith("the incident has not started yet")

        # the solution is a child process: its output reaches a process's pipe, not CliRunner
        solved = lab_process("solve", "lab-04", env=env, timeout=400)
        assert solved.returncode == 0, solved.stdout + solved.stderr
        assert "version 4 passed the gate" in solved.stdout and "accuracy-floor resolved" in solved.stdout
        assert "@champion 4 -> 5 (outside" in solved.stdout and "@champion 5 -> 6 (outside" in solved.stdout
        assert "@champion rolled back from version 6 to 4" in solved.stdout
        all_steps_pass(env, 6)
        assert history(env, "champion")[-4:] == [
            ("1", "4", "lab model promote"),
            ("4", "5", OUTSIDE),
            ("5", "6", OUTSIDE),  # the job promoted twice: the previous champion is bad too
            ("6", "4", "lab model rollback"),
        ]
        wait_for(lambda: len(drill_outcomes(env)) == 2, 180, "lab 04's drill to end")
        assert drill_outcomes(env) == ["remediated", "remediated"]
    finally:
        assert lab("down", env=env).returncode == 0
