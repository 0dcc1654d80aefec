"""The grader on a real sandbox, on a loaded machine: an automated learner acting through the public CLI (its own
processes) at known times after the injection gets TTD, TTM and TTR back within 100 ms, on drills of four kinds;
and a capstone runs its blind drills in the background and is scored against its rubric."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
import yaml

from drills.spec import catalog, find_drill
from grader.capstone import Rubric, plan
from grader.grading import RunGrade, grade_run
from lab_runtime.journal import CAPSTONE_ENDED, DRILL_ENDED, DRILL_STARTED, FAULT_INJECTED, PROBE_RESULT
from lab_runtime.settings import Settings
from tests.drills.learner import events, last_event_id, respond, run_id_after, start_drill, stop
from tests.grader.test_capstone import RULES
from tests.sandbox import Sandbox, running_sandbox, wait_for

pytestmark = pytest.mark.integration

# Drills at a tenth of their time (holds of 3 s), probed every 0.25 s; the learner's name on every event.
ENV = {"LAB_DRILL_PROBE_INTERVAL": "0.25", "LAB_DRILL_TIME_SCALE": "0.1", "LAB_LEARNER": "ada"}
ACCURACY = 0.1  # seconds: graded figures against the learner's own command starts
NO_FIX = {  # the latency spike, over before anyone fixes it: a 4 s time limit at this scale
    **yaml.safe_load((Path(__file__).parents[2] / "drills/catalog/incident-latency-spike.yaml").read_text()),
    "id": "accuracy-no-fix",
    "remediation": {"conditions": ["latency_p99_ms < 250"], "hold": "10s", "reference": ["lab restart model-service"]},
    "time_limit": "40s",
}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path_factory.mktemp("grader") / "state", ENV, versions=1) as box:
        yield box


@pytest.fixture
def loaded_machine() -> Iterator[None]:
    """A process burning a core, for each core: the learner's commands start slowly, as on a busy machine."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def sleep_until(ts: float) -> None:
    time.sleep(max(0.0, ts - time.time()))


@dataclass(frozen=True)
class Move:
    after: float  # seconds after the injection the learner starts the command
    argv: tuple[str, ...]
    marks: tuple[str, ...] = ()  # what the move should be graded as: "ttd", "ttm", "ttr"


@dataclass
class Played:
    grade: RunGrade
    known: dict[str, float]  # mark -> when the learner's command started, seconds after the injection


def impact_seen(settings: Settings, run_id: str) -> bool:
    return any(p.payload.get("impact") for p in events(settings, run_id, [PROBE_RESULT]))


def play(settings: Settings, drill: str, moves: Sequence[Move]) -> Played:
    """Run `drill`; once its impact shows in the probes, make each move at its time (a `lab` process, started when
    the learner would start it); the run graded, with the starts the test measured for each mark."""
    since = last_event_id(settings)
    proc = start_drill(drill)
    known: dict[str, float] = {}
    try:
        run_id = run_id_after(settings, since)
        wait_for(lambda: bool(events(settings, run_id, [FAULT_INJECTED])) or proc.poll() is not None, 120, "injection")
        assert proc.poll() is None, "the drill ended before its fault was injected"
        injected = events(settings, run_id, [FAULT_INJECTED])[0].ts
        wait_for(lambda: impact_seen(settings, run_id) or proc.poll() is not None, 60, f"{drill}: the impact")
        for move in moves:
            sleep_until(injected + move.after)
            began = time.time()
            done = subprocess.run(
                [sys.executable, "-m", "lab_runtime.cli", *move.argv], capture_output=True, text=True, timeout=120
            )
            assert done.returncode == 0, f"`lab {' '.join(move.argv)}`: {done.stdout}{done.stderr}"
            for mark in move.marks:
                known.setdefault(mark, began - injected)
        proc.communicate(timeout=120)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- lab drill run said:\n{stop(proc)}") from None
    finally:
        stop(proc)
    return Played(grade_run(events(settings), run_id), known)


@pytest.mark.timeout(600)
def test_ttd_ttm_and_ttr_are_the_learners_command_starts_within_100_ms_on_a_loaded_machine(
    sandbox: Sandbox, loaded_machine: None, tmp_path: Path
) -> None:
    settings = sandbox.settings
    no_fix = tmp_path / "accuracy-no-fix.yaml"
    no_fix.write_text(yaml.safe_dump(NO_FIX))
    plays = [
        play(  # a wrong guess first, then the right one; a restart clears the service's fault table
            settings,
            "incident-error-burst",
            [
                Move(2.0, ("declare", "latency")),
                Move(3.5, ("declare", "errors"), ("ttd",)),
                Move(5.0, ("restart", "model-service"), ("ttm", "ttr")),
            ],
        ),
        play(  # every request refused: the pipeline's release rolled back
            settings,
            "schema-renamed-column",
            [Move(2.0, ("declare", "schema-skew"), ("ttd",)), Move(4.0, ("pipeline", "rollback"), ("ttm", "ttr"))],
        ),
        play(  # a slow champion: @champion back on the version before it
            settings,
            "rollback-slow-champion",
            [Move(2.0, ("declare", "bad-model"), ("ttd",)), Move(4.0, ("model", "rollback"), ("ttm", "ttr"))],
        ),
        play(  # the canary fails: its share to zero stops the errors (mitigated), the abort removes it (remediated),
            settings,  # right after, while the last seconds of requests still hold the errors
            "canary-failing-challenger",
            [
                Move(2.0, ("declare", "bad-model"), ("ttd",)),
                Move(4.0, ("canary", "set", "0"), ("ttm",)),
                Move(4.5, ("canary", "abort"), ("ttr",)),
            ],
        ),
        play(settings, str(no_fix), [Move(1.5, ("declare", "latency"), ("ttd",))]),  # nobody fixes it
    ]
    rows = ["drill | mark | learner's command (s) | graded (s) | error (ms)"]
    for p in plays:
        for mark, known in p.known.items():
            graded = getattr(p.grade, mark)
            figure, error = ("-", "-") if graded is None else (f"{graded:.3f}", f"{(graded - known) * 1000:+.0f}")
            rows.append(f"{p.grade.drill} | {mark} | {known:.3f} | {figure} | {error}")
        recovery = p.grade.time_to_recovery
        rows.append(f"{p.grade.drill} | time_to_recovery | - | {'-' if recovery is None else f'{recovery:.3f}'} | -")
    table = "\n".join(rows)
    print(table)
    burst, schema, rollback, canary, nobody = (p.grade for p in plays)
    assert burst.wrong_declarations == 1, table
    assert [g.outcome for g in (burst, schema, rollback, canary)] == ["remediated"] * 4, table
    for p in plays[:4]:
        for mark in ("ttd", "ttm", "ttr"):
            graded = getattr(p.grade, mark)
            assert graded is not None and abs(graded - p.known[mark]) <= ACCURACY, f"{p.grade.drill} {mark}\n{table}"
        assert p.grade.time_to_recovery is not None and p.grade.time_to_recovery >= p.grade.ttr, table
    assert canary.ttm is not None and canary.ttr is not None and canary.ttm < canary.ttr, table
    assert nobody.ttd is not None and abs(nobody.ttd - plays[4].known["ttd"]) <= ACCURACY, table
    assert (nobody.outcome, nobody.ttm, nobody.ttr, nobody.time_to_recovery) == ("not remediated", None, None, None)


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
