"""Labs 07 and 08 end to end through the `lab` command, one after the other on one sandbox: a candidate evaluated,
its slice regression found, its queue reviewed, a no-go written and held by the canary's gate; then two builds
along the whole path, one stopped by its shadow, the other shipped through every gate. At the end nothing is left
running."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.cli import lab, lab_process, one_line_error, sandbox_processes
from tests.e2e.test_labs import ENV

pytestmark = pytest.mark.integration


def steps(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in json.loads(lab("check", "--json", env=env).stdout)["steps"]}


def lab_07(env: dict[str, str]) -> None:
    started = lab("start", "lab-07", env=env)
    assert started.returncode == 0 and "the candidate is version" in started.stdout, started.stdout + started.stderr
    candidate = started.stdout.split("the candidate is version ")[1].split()[0]
    before = steps(env)
    assert (
        before["evaluate"]["detail"]
        == f"the candidate (version {candidate}) has no evaluation against the champion yet"
    )
    one_line_error(lab("review", "label", "999", "approve", env=env), "no review item 999 in a current queue")

    solved = lab_process("solve", "lab-07", env=env, timeout=400)
    assert solved.returncode == 0, solved.stdout + solved.stderr
    said = solved.stdout
    assert "flagged: ['purpose=education']" in said and "- Decision: no-go" in said, said
    assert f"the evaluation of version {candidate} says no-go: " in said, said  # the canary's gate held it
    after = json.loads(lab("check", "--json", env=env).stdout)
    assert after["passed"] == after["total"] == 4, after
    report = Path(env["LAB_STATE_DIR"]) / "reports" / f"eval-{candidate}.html"
    assert "purpose=education" in report.read_text()

    note = Path(env["LAB_STATE_DIR"]) / "workspace" / "lab-07" / "evaluation-note.md"
    written = note.read_text()
    note.write_text(written.replace("- Decision: no-go", "- Decision: go").replace("purpose=education", "region=east"))
    detail = steps(env)["note"]["detail"]
    assert "Decision go is not what the evaluation's evidence says" in detail, detail
    assert "Slice 'region=east' is not the slice the evaluation flagged" in detail, detail
    coverage = json.loads(lab("eval", "coverage", "--json", env=env).stdout)
    assert coverage["covered"] == 0 and coverage["promoted"] >= 1, coverage  # the baseline champion: never evaluated


def lab_08(env: dict[str, str]) -> None:
    started = lab("start", "lab-08", env=env)
    assert started.returncode == 0 and "the build-b is version" in started.stdout, started.stdout + started.stderr
    a = started.stdout.split("the build-a is version ")[1].split()[0]
    b = started.stdout.split("the build-b is version ")[1].split()[0]
    one_line_error(lab("shadow", "start", a, env=env), f"version {a} is not @staging")

    solved = lab_process("solve", "lab-08", env=env, timeout=600)
    assert solved.returncode == 0, solved.stdout + solved.stderr
    said = solved.stdout
    assert f"build A (version {a}) stays out of production" in said, said
    after = json.loads(lab("check", "--json", env=env).stdout)
    assert after["passed"] == after["total"] == 5, after
    path = json.loads(lab("model", "history", "--version", b, "--json", env=env).stdout)
    assert [m["stage"] for m in path] == ["staging", "evaluation", "shadow", "shadow", "canary", "production"], path
    assert json.loads(lab("model", "list", "--json", env=env).stdout)  # still answers
    coverage = json.loads(lab("eval", "coverage", "--json", env=env).stdout)
    assert coverage["covered"] == 1 and coverage["versions"][-1]["version"] == b, coverage  # build B, evaluated first


@pytest.mark.timeout(1200)
def test_labs_07_and_08_in_sequence_on_one_sandbox(lab_env: dict[str, str]) -> None:
    env = {**lab_env, **ENV}
    up = lab_process("up", env=env)
    assert up.returncode == 0, up.stderr
    try:
        lab_07(env)
        lab_08(env)
        family = sandbox_processes(env)
    finally:
        down = lab("down", env=env)
    assert down.returncode == 0
    _, alive = psutil.wait_procs(family, timeout=5)
    assert alive == []
