"""The capstone's runner, a `lab capstone run ID` process in the background: starting it (its pid in
`.lab/run/capstone.json`), whether it is alive, stopping it, and its work: the capstone's drills in sequence, blind,
then `capstone.ended`."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from drills.control import in_background
from drills.engine import RunOptions
from drills.sequence import Reports, run_in_sequence
from lab_runtime.errors import LabError
from lab_runtime.events import CAPSTONE_ENDED, CAPSTONE_STARTED, CapstoneEnded, CapstoneStarted, Team
from lab_runtime.files.atomic import read_json, write_json_atomic
from lab_runtime.journal import Journal

if TYPE_CHECKING:
    from drills.spec import Drill
    from lab_runtime.backends.base import Backend
    from lab_runtime.settings import Settings

GATE_TIMEOUT = 120.0  # seconds a capstone drill waits for the steady state: the previous drill may still settle
STOP_WAIT = 120.0  # seconds `stop` waits for a runner to revert its drill and end


def runner_file(settings: Settings) -> Path:
    return settings.run_dir / "capstone.json"


def runner_pid(settings: Settings, capstone_id: str) -> int | None:
    """The pid of the runner of `capstone_id` while it is alive (a killed one never journals its end), else None."""
    record = read_json(runner_file(settings))
    if not record or record.get("capstone_id") != capstone_id:
        return None
    try:
        pid = int(record["pid"])
        return pid if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE else None
    except (psutil.Error, ValueError, KeyError):
        return None


def start(settings: Settings, log: Journal, unfinished: str | None, started: Callable[[str], CapstoneStarted]) -> str:
    """Journal a new capstone's start for `log`'s learner (`started`: its `capstone.started` payload, given its id)
    and start its runner (its output in `capstone-<id>.log`); its id. `unfinished`, the learner's last capstone
    when the journal has no end of it, is refused while its runner is alive, else ended."""
    if unfinished is not None:
        if runner_pid(settings, unfinished) is not None:
            raise LabError(f"capstone {unfinished} of {log.learner} is still running; see `lab capstone status`")
        log.append(CAPSTONE_ENDED, CapstoneEnded(capstone_id=unfinished, outcomes=[], detail="runner gone"))
    capstone_id = secrets.token_hex(4)
    log.append(CAPSTONE_STARTED, started(capstone_id))
    pid = in_background(settings, ["capstone", "run", capstone_id], f"capstone-{capstone_id}.log")
    write_json_atomic(runner_file(settings), {"capstone_id": capstone_id, "pid": pid})
    return capstone_id


def stop(settings: Settings, capstone_id: str, wait: float = STOP_WAIT) -> bool:
    """Ask the runner of `capstone_id` to end (it reverts its drill's faults and journals the capstone's end) and
    wait up to `wait` seconds for it; False when no runner of it is alive."""
    pid = runner_pid(settings, capstone_id)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while runner_pid(settings, capstone_id) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    return True


def run(
    settings: Settings,
    backend: Backend,
    log: Journal,
    capstone_id: str,
    seed: int,
    schedule: Callable[[], list[tuple[Drill, float]]],
    reports: Reports,
    team: Team | None = None,
) -> list[str]:
    """The runner's work for `log`'s learner (a team's, with `team`): the drills `schedule` gives (each with its
    gap, scaled) in sequence, blind, tagged `capstone:<id>`; then `capstone.ended` with their outcomes, whatever
    happened (none when the schedule failed, say the catalog changed, or the sequence stopped)."""
    learner = log.learner or settings.learner
    tag = f"capstone:{capstone_id}"
    options = RunOptions(learner=learner, seed=seed, blind=True, gate_timeout=GATE_TIMEOUT, tag=tag, team=team)
    outcomes: list[str] = []
    try:
        outcomes = run_in_sequence(settings, backend, schedule(), options, reports, what="capstone")
    finally:
        log.append(CAPSTONE_ENDED, CapstoneEnded(capstone_id=capstone_id, outcomes=outcomes))
    return outcomes
