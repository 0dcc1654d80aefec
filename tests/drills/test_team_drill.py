"""A team's drill on the real sandbox: the runner records the team, a member who is not the team's name declares,
another fixes, and the grade credits each (`lab grade --json`), the run in each member's bundle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drills.spec import find_drill
from lab_runtime import events as kinds
from tests import cli
from tests.drills.learner import events, fault_visible, last_event_id, run_id_after, start_drill, stop
from tests.sandbox import Sandbox, wait_for

pytestmark = pytest.mark.integration


def test_a_team_run_is_detected_by_one_member_and_fixed_by_another(sandbox: Sandbox, tmp_path: Path) -> None:
    settings, drill = sandbox.settings, find_drill("incident-latency-spike")
    since = last_event_id(settings)
    proc = start_drill(drill.id, "--team", "blue", "--members", "ada,bob", "--roles", "ada=commander")
    try:
        run_id = run_id_after(settings, since)
        (started,) = events(settings, run_id, [kinds.DRILL_STARTED])
        assert started.learner == "blue"
        assert started.payload["team"] == {"name": "blue", "members": ["ada", "bob"], "roles": {"ada": "commander"}}
        wait_for(lambda: fault_visible(settings, run_id, len(drill.faults)), 120, "the fault in the probes")
        cli.ok(cli.lab("declare", "data-drift", env={"LAB_LEARNER": "ada"}))  # a wrong guess by the commander
        cli.ok(cli.lab("declare", drill.diagnosis, env={"LAB_LEARNER": "bob"}))
        cli.ok(cli.lab_process("restart", "model-service", env={"LAB_LEARNER": "ada"}))
        output, _ = proc.communicate(timeout=180)
    finally:
        stop(proc)
    assert proc.returncode == 0, output
    graded = {g["run_id"]: g for g in json.loads(cli.lab("grade", "--json").stdout)}[run_id]
    assert (graded["learner"], graded["team"], graded["outcome"]) == ("blue", "blue", "remediated")
    assert (graded["detected_by"], graded["remediated_by"], graded["wrong_declarations"]) == ("bob", "ada", 1)
    parts = {m["learner"]: m for m in graded["members"]}
    assert parts["ada"]["role"] == "commander" and parts["ada"]["remediated"] and parts["ada"]["ttd"] is None
    assert parts["bob"]["ttd"] == graded["ttd"] and not parts["bob"]["remediated"]
    key = ["--key-file", str(tmp_path / "key")]
    (tmp_path / "key").write_text("k" * 64)
    for member in ("ada", "bob"):
        out = tmp_path / f"{member}.json"
        cli.ok(cli.lab("results", "export", "--out", str(out), "--learner", member, *key))
        assert run_id in {r["run_id"] for r in json.loads(out.read_text())["runs"]}
    report = json.loads(cli.lab("cohort", "report", str(tmp_path / "ada.json"), str(tmp_path / "bob.json"), "--json",
                                *key).stdout)  # fmt: skip
    (team,) = report["teams"]
    assert (team["team"], team["runs"], team["detected_by"], team["remediated_by"]) == (
        "blue",
        1,
        {"bob": 1},
        {"ada": 1},
    )
