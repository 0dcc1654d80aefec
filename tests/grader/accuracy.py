"""The grader's accuracy scenario, shared by its test and `make bench-grading`: an automated learner acting through
the public CLI (each move its own `lab` process) at known times after each drill's injection, on drills of four
kinds, with a wrong guess first on one and no fix on the last; what the grader made of each move against when the
learner started it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from grader.grading import RunGrade, grade_run
from lab_runtime.events import FAULT_INJECTED, PROBE_RESULT
from lab_runtime.settings import Settings
from tests.cli import lab_process
from tests.drills.learner import events, last_event_id, run_id_after, start_drill, stop
from tests.sandbox import wait_for

# Drills at a tenth of their time (holds of 3 s), probed every 0.25 s; the learner's name on every event.
ENV = {"LAB_DRILL_PROBE_INTERVAL": "0.25", "LAB_LEARNER": "ada"}  # on FAST's clock
ACCURACY = 0.1  # seconds: graded figures against the learner's own command starts
MARKS = ("ttd", "ttm", "ttr")
CATALOG = Path(__file__).resolve().parents[2] / "drills" / "catalog"
NO_FIX = {  # the latency spike, over before anyone fixes it: a 4 s time limit at this scale
    **yaml.safe_load((CATALOG / "incident-latency-spike.yaml").read_text()),
    "id": "accuracy-no-fix",
    "remediation": {"conditions": ["latency_p99_ms < 250"], "hold": "10s", "reference": ["lab restart model-service"]},
    "time_limit": "40s",
}


@contextlib.contextmanager
def burning_cores() -> Iterator[None]:
    """A process burning a core, for each core this process may use: commands start slowly, as on a busy machine."""
    cores = min(len(os.sched_getaffinity(0)), 4)
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


@dataclass(frozen=True)
class Move:
    after: float  # seconds after the injection the learner starts the command (or once the one before returned)
    argv: tuple[str, ...]
    marks: tuple[str, ...] = ()  # what the move should be graded as: "ttd", "ttm", "ttr"
    gap: float = 0.0  # seconds at least after the move before returned (a learner looks before moving again)


@dataclass(frozen=True)
class Played:
    grade: RunGrade
    known: dict[str, float]  # mark -> when the learner's command started, seconds after the injection


def _impact_seen(settings: Settings, run_id: str) -> bool:
    return any(p.payload.get("impact") for p in events(settings, run_id, [PROBE_RESULT]))


def play(settings: Settings, drill: str, moves: Sequence[Move]) -> Played:
    """Run `drill`; once its impact shows in the probes, make each move at its time (a `lab` process, started when
    the learner would start it); the run graded, with the starts measured here for each mark."""
    since = last_event_id(settings)
    proc = start_drill(drill)
    known: dict[str, float] = {}
    try:
        run_id = run_id_after(settings, since)
        wait_for(lambda: bool(events(settings, run_id, [FAULT_INJECTED])) or proc.poll() is not None, 120, "injection")
        assert proc.poll() is None, "the drill ended before its fault was injected"
        injected = events(settings, run_id, [FAULT_INJECTED])[0].ts
        wait_for(lambda: _impact_seen(settings, run_id) or proc.poll() is not None, 60, f"{drill}: the impact")
        returned = 0.0
        for move in moves:
            time.sleep(max(0.0, injected + move.after - time.time(), returned + move.gap - time.time()))
            began = time.time()
            done = lab_process(*move.argv)  # its start is what the grader must find, timed from here
            returned = time.time()
            assert done.returncode == 0, f"`lab {' '.join(move.argv)}`: {done.stdout}{done.stderr}"
            for mark in move.marks:
                known.setdefault(mark, began - injected)
        proc.communicate(timeout=120)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- lab drill run said:\n{stop(proc)}") from None
    finally:
        stop(proc)
    return Played(grade_run(events(settings), run_id), known)


# The scenario's runs, in order: error burst (a wrong guess first), renamed column, slow champion, failing canary
# (mitigated by its share, remediated by the abort soon after), and a latency spike nobody fixes.
SCENARIO: dict[str, tuple[Move, ...]] = {
    "incident-error-burst": (  # a restart clears the service's fault table
        Move(2.0, ("declare", "latency")),
        Move(3.5, ("declare", "errors"), ("ttd",)),
        Move(5.0, ("restart", "model-service"), ("ttm", "ttr")),
    ),
    "schema-renamed-column": (  # every request refused: the pipeline's release rolled back
        Move(2.0, ("declare", "schema-skew"), ("ttd",)),
        Move(4.0, ("pipeline", "rollback"), ("ttm", "ttr")),
    ),
    "rollback-slow-champion": (  # a slow champion: @champion back on the version before it
        Move(2.0, ("declare", "bad-model"), ("ttd",)),
        Move(4.0, ("model", "rollback"), ("ttm", "ttr")),
    ),
    # the abort 2 s after the share change returned, while the recent requests still hold the errors
    "canary-failing-challenger": (
        Move(2.0, ("declare", "bad-model"), ("ttd",)),
        Move(4.0, ("canary", "set", "0"), ("ttm",)),
        Move(4.0, ("canary", "abort"), ("ttr",), gap=2.0),
    ),
    NO_FIX["id"]: (Move(1.5, ("declare", "latency"), ("ttd",)),),
}


def play_accuracy_scenario(settings: Settings, scratch: Path, drills: Sequence[str] = tuple(SCENARIO)) -> list[Played]:
    """The scenario's runs of `drills` (all of them by default), in the scenario's order."""
    assert set(drills) <= set(SCENARIO), f"not in the scenario: {set(drills) - set(SCENARIO)}"
    no_fix = scratch / f"{NO_FIX['id']}.yaml"
    no_fix.write_text(yaml.safe_dump(NO_FIX))
    return [
        play(settings, str(no_fix) if drill == NO_FIX["id"] else drill, moves)
        for drill, moves in SCENARIO.items()
        if drill in drills
    ]


def errors_ms(played: Played) -> dict[str, float | None]:
    """Graded minus known, per mark, in milliseconds (None: not graded)."""
    found = {}
    for mark, known in played.known.items():
        graded = getattr(played.grade, mark)
        found[mark] = None if graded is None else (graded - known) * 1000
    return found


def accuracy_table(plays: Sequence[Played]) -> str:
    rows = ["drill | mark | learner's command (s) | graded (s) | error (ms)"]
    for p in plays:
        for mark, error in errors_ms(p).items():
            graded = getattr(p.grade, mark)
            figures = ("-", "-") if graded is None or error is None else (f"{graded:.3f}", f"{error:+.0f}")
            rows.append(f"{p.grade.drill} | {mark} | {p.known[mark]:.3f} | {figures[0]} | {figures[1]}")
        recovery = p.grade.time_to_recovery
        rows.append(f"{p.grade.drill} | time_to_recovery | - | {'-' if recovery is None else f'{recovery:.3f}'} | -")
    return "\n".join(rows)
