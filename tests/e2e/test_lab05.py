"""Lab 05 end to end through the `lab` command: a blind incident triaged, declared and remediated, an incident note
checked against the journal, then the learner's results exported as a signed bundle and verified."""

from __future__ import annotations

import json
import re
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.cli import lab, lab_process
from tests.e2e.test_labs_03_04 import ENV

pytestmark = pytest.mark.integration


@pytest.mark.timeout(500)
def test_lab_05_incident_note_and_signed_results(lab_env: dict[str, str], tmp_path: Path) -> None:
    env = {**lab_env, **ENV, "LAB_INSTRUCTOR_KEY": "a-key-of-the-instructor-for-tests"}
    assert lab_process("up", env=env).returncode == 0  # its own process: the services it starts outlive it
    try:
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

        (run,) = json.loads(lab("grade", "--json", env=env).stdout)
        assert (run["drill"], run["outcome"], run["wrong_declarations"]) == ("incident-error-burst", "remediated", 0)
        assert 0 < run["ttd"] < run["ttr"] and run["blind"] and run["finished"]

        bundle = tmp_path / "learner.json"
        exported = lab("results", "export", "--out", str(bundle), env=env)
        assert exported.returncode == 0 and "exported 1 drill run(s) and 1 lab(s)" in exported.stdout
        body = json.loads(bundle.read_text())
        assert body["labs"] == [{"lab": "lab-05", "passed": 4, "total": 4, "completed": True}]
        assert lab("results", "verify", str(bundle), env=env).returncode == 0
        body["runs"][0]["ttr"] = 1.0
        bundle.write_text(json.dumps(body))
        refused = lab("results", "verify", str(bundle), env=env)
        assert refused.returncode == 1 and "learner.json was changed after it was signed" in refused.stderr
    finally:
        assert lab("down", env=env).returncode == 0
