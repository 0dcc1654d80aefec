"""Lab 06 end to end through the `lab` command: the levers rehearsed, three blind situations of unsafe output
each handled with the lever it calls for by the reference solution, the decision note checked against the
record, and the grader's decision and blast radius for each; at the end nothing is left running."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest

from drills.faults.pipeline import UNDONE_VIA
from tests.cli import lab, lab_process, sandbox_processes
from tests.e2e.test_labs import ENV
from tests.sandbox import wait_for

pytestmark = pytest.mark.integration
SITUATIONS = ["output-unsafe-champion", "output-load-surge", "output-bureau-rescale"]


@pytest.mark.timeout(900)  # three real drills on the tests' clock: about 4 minutes on a busy machine
def test_lab_06_three_situations_each_handled_with_its_best_lever_and_graded(lab_env: dict[str, str]) -> None:
    env = {**lab_env, **ENV}
    up = lab_process("up", env=env)
    assert up.returncode == 0, up.stderr
    try:
        started = lab("start", "lab-06", env=env)
        assert started.returncode == 0 and "Unsafe output" in started.stdout, started.stderr
        note = Path(env["LAB_STATE_DIR"]) / "workspace" / "lab-06" / "decision-note.md"
        assert note.read_text().count("Lever: TODO") == 3
        before = json.loads(lab("check", "--json", env=env).stdout)
        assert before["total"] == 6
        steps = {s["id"]: s for s in before["steps"]}
        assert steps["first"]["detail"].startswith("the incident has not started yet")

        # the solution is a child process: its output reaches a process's pipe, not CliRunner
        solved = lab_process("solve", "lab-06", env=env, timeout=840)
        assert solved.returncode == 0, solved.stdout + solved.stderr
        said = solved.stdout
        assert "decision note accepted" in said, said
        after = json.loads(lab("check", "--json", env=env).stdout)
        assert after["passed"] == after["total"] == 6, after

        runs = [r for r in json.loads(lab("grade", "--json", env=env).stdout) if r["drill"].startswith("output-")]
        assert [r["drill"] for r in runs] == SITUATIONS
        assert [(r["decision"], r["verdict"]) for r in runs] == [
            ("rollback", "best"),
            ("throttle", "best"),
            ("disable", "best"),
        ], runs
        assert all(r["outcome"] == "remediated" and r["blind"] and r["blast_radius"] >= 0 for r in runs), runs
        timing = [(r["drill"], r["ttd"], r["ttm"], r["ttr"]) for r in runs]
        assert all(None not in t and t[1] <= t[2] <= t[3] for t in timing), timing
        assert [r["wrong_declarations"] for r in runs] == [0, 0, 0]

        def champion_back() -> bool:  # the third situation's retrain learned a scale that is gone once it ended
            *_, retrain, back = json.loads(lab("model", "history", "--alias", "champion", "--json", env=env).stdout)
            return bool(
                (retrain["via"], back["before"], back["after"])
                == ("lab model retrain", retrain["after"], retrain["before"])
                and back["via"].startswith(f"{UNDONE_VIA}: version {retrain['after']} learned")
            )

        wait_for(champion_back, 10, "@champion back on the version before the retrain")
        written = note.read_text()
        for run in runs:
            assert f"- Lever: {run['decision']}\n" in written and f"- Blast radius: {run['blast_radius']}\n" in written

        # a note that names the wrong lever is refused, naming the situation
        note.write_text(written.replace("- Lever: throttle", "- Lever: disable", 1))
        steps = {s["id"]: s for s in json.loads(lab("check", "--json", env=env).stdout)["steps"]}
        assert steps["note"]["detail"] == (
            "Situation 2: Lever 'disable' is not the first lever you pulled (`lab grade`)"
        ), steps["note"]
        status = json.loads(lab("feature", "status", "--json", env=env).stdout)
        assert status["share"] == 1.0, status  # every lever put back: the model decides every request
        family = sandbox_processes(env)
    finally:
        down = lab("down", env=env)
    assert down.returncode == 0
    _, alive = psutil.wait_procs(family, timeout=5)
    assert alive == []
