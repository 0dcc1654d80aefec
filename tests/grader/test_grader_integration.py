"""The grader on a real sandbox: a simulated learner's known delays come back as TTD and TTR within 100 ms, and a
capstone runs its blind drills in the background and is scored against its rubric."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import yaml

from drills.spec import catalog, find_drill
from grader.capstone import Rubric, plan
from grader.grading import grade_run
from lab_runtime.journal import (
    CAPSTONE_ENDED,
    DRILL_ENDED,
    DRILL_STARTED,
    FAULT_INJECTED,
    LEARNER_ACTION,
    LEARNER_DECLARED,
    PROBE_RESULT,
    Journal,
)
from lab_runtime.settings import Settings
from tests.drills.learner import events, last_event_id, respond, run_id_after, start_drill, stop
from tests.grader.test_capstone import RULES
from tests.sandbox import Sandbox, running_sandbox, wait_for

pytestmark = pytest.mark.integration

# The runner probes every 20 ms. The simulated learner's fault is the registry hung (SIGSTOP), its fix the resume
# (SIGCONT): the health check the probe makes sees it at once, so the test knows when the remediation took effect.
ENV = {"LAB_DRILL_PROBE_INTERVAL": "0.02", "LAB_LEARNER": "ada"}
DETECT_AFTER, FIX_AFTER = 4.0, 8.0  # when the simulated learner declares and fixes, after the injection
HUNG_REGISTRY = {
    "id": "accuracy-hung-registry",
    "title": "The registry hangs",
    "kind": "incident",
    "difficulty": "easy",
    "brief": "Every registry call hangs.",
    "diagnosis": "dependency-outage",
    "steady_state": ["up.model-service == 1", "ready == 1", "up.mlflow == 1"],
    "faults": [{"type": "dependency_outage", "args": {"service": "mlflow", "mode": "pause"}}],
    "remediation": {"conditions": ["up.mlflow == 1"], "hold": "2s", "reference": ["lab restart mlflow"]},
    "time_limit": "2m",
}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path_factory.mktemp("grader") / "state", ENV, versions=1) as box:
        yield box


def sleep_until(ts: float) -> None:
    time.sleep(max(0.0, ts - time.time()))


def test_ttd_and_ttr_match_a_simulated_learners_delays_within_100_ms(sandbox: Sandbox, tmp_path: Path) -> None:
    settings = sandbox.settings
    drill_file = tmp_path / "accuracy-hung-registry.yaml"
    drill_file.write_text(yaml.safe_dump(HUNG_REGISTRY))
    since = last_event_id(settings)
    proc = start_drill(str(drill_file))
    try:
        run_id = run_id_after(settings, since)
        wait_for(lambda: bool(events(settings, run_id, [FAULT_INJECTED])) or proc.poll() is not None, 90, "injection")
        injected = events(settings, run_id, [FAULT_INJECTED])[0].ts
        # The learner acts on the fault only once the runner has seen it (a probe with the registry down).
        wait_for(lambda: any(not p.payload["remediated"] for p in events(settings, run_id, [PROBE_RESULT])), 30)
        assert time.time() < injected + DETECT_AFTER, "the fault took too long to show; the delays are too short"
        learner = Journal(settings.journal_path, source="cli", learner="ada")
        sleep_until(injected + DETECT_AFTER)
        learner.append(LEARNER_DECLARED, {"diagnosis": "dependency-outage", "note": "simulated"})
        sleep_until(injected + FIX_AFTER)
        learner.append(LEARNER_ACTION, {"action": "resume", "service": "mlflow"})  # what it is about to do
        sandbox.backend.resume("mlflow")
        fixed = time.time() - injected
        proc.communicate(timeout=90)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- lab drill run said:\n{stop(proc)}") from None
    output = stop(proc)
    graded = grade_run(events(settings), run_id)
    assert graded.outcome == "remediated", output
    print(f"TTD {graded.ttd:.3f}s for {DETECT_AFTER}s; TTR {graded.ttr:.3f}s for {FIX_AFTER}s (done at {fixed:.3f}s)")
    assert graded.ttd == pytest.approx(DETECT_AFTER, abs=0.1)
    assert graded.ttr == pytest.approx(FIX_AFTER, abs=0.1), f"TTR {graded.ttr:.3f}s for a fix at {FIX_AFTER}s"


def lab(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "lab_runtime.cli", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env={**os.environ, **env})


def ended(settings: Settings, run_id: str) -> bool:
    return bool(events(settings, run_id, [DRILL_ENDED]))


def respond_to_capstone(settings: Settings, since: int) -> list[str]:
    """As the learner, each capstone drill in turn (the instructor's view of the journal says which one runs: a
    learner would not know); the drills seen, once the capstone has ended."""
    seen: list[str] = []
    for _ in range(2):
        run_id = run_id_after(settings, since)
        start = events(settings, run_id, [DRILL_STARTED])[0]
        since = start.id
        assert start.payload["tag"].startswith("capstone:") and start.payload["blind"]
        seen.append(start.payload["drill"])
        respond(settings, find_drill(start.payload["drill"]), run_id)
        wait_for(partial(ended, settings, run_id), 120, "the run's end")
    wait_for(lambda: bool(events(settings, kinds_=[CAPSTONE_ENDED])), 60, "the capstone's end")
    return seen


@pytest.mark.timeout(420)
def test_a_capstone_runs_its_blind_drills_in_sequence_and_is_scored(sandbox: Sandbox, tmp_path: Path) -> None:
    settings = sandbox.settings
    rubric = tmp_path / "rubric.yaml"
    pool = {
        "drills": ["incident-latency-spike", "schema-null-column"],
        "count": 2,
        "gap": ["2s", "4s"],
        "budget": "25m",
    }
    rubric.write_text(yaml.safe_dump({**RULES, **pool}))
    env = {"LAB_DRILL_TIME_SCALE": "0.1", "LAB_DRILL_PROBE_INTERVAL": "0.5"}
    assert "no capstone in the journal yet" in lab(env, "capstone", "score").stderr
    since = last_event_id(settings)
    started = lab(env, "capstone", "start", "--seed", "5", "--rubric", str(rubric))
    assert started.returncode == 0 and "2 blind drills" in started.stdout, started.stderr
    again = lab(env, "capstone", "start", "--rubric", str(rubric))
    assert again.returncode == 1 and "is still running; see `lab capstone status`" in again.stderr
    assert "seed" not in started.stdout  # the seed names the drills
    early = lab(env, "capstone", "score")
    assert early.returncode == 1 and "is still running; its score comes when it ends" in early.stderr
    try:
        seen = respond_to_capstone(settings, since)
    except AssertionError as exc:
        logs = "".join(p.read_text() for p in settings.logs_dir.glob("capstone-*.log"))
        ends = [e.payload for e in events(settings, kinds_=[DRILL_ENDED])]
        raise AssertionError(f"{exc}\n--- the capstone's log:\n{logs}\n--- drill ends: {ends}") from None
    limits = {d.id: d.time_limit for d in catalog()}
    assert seen == list(plan(Rubric.model_validate({**RULES, **pool}), 5, limits, 0.1).drills)  # the seed's draw
    status = json.loads(lab(env, "capstone", "status", "--json").stdout)
    assert (status["state"], status["drills_done"], status["drills"]) == ("finished", 2, 2)
    score = json.loads(lab(env, "capstone", "score", "--json").stdout)
    assert score["passed"] and score["runs"] == 2, score
    assert score["dimensions"]["detection"] == score["dimensions"]["remediation"] == 1.0
    table = lab(env, "capstone", "score")
    assert "PASS" in table.stdout and "(seed 5)" in table.stdout and "detection" in table.stdout
