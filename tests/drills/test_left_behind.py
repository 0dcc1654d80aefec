"""What `lab drill status` says of a run no runner will revert any more (pure: `drills.control.left_behind`)."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
from typing import Any

import psutil
import pytest

from drills.control import left_behind
from drills.engine import runner_alive
from drills.ledger import RunRecord
from lab_runtime.clock import process_identity
from tests.sandbox import wait_for

NOW = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
RUN = RunRecord("r1", "two-faults", "ada", 1, False, 4242, NOW - 100, NOW - 100, None, None, None, False)


def fault(state: str, expires: bool, expires_at: float = NOW + 90) -> dict[str, Any]:
    return {"fault": 0, "type": "x", "state": state, "expires": expires, "expires_at": expires_at}


@pytest.mark.parametrize(
    ("state", "faults", "line"),
    [
        (
            "runner died",
            [fault("active", True, NOW + 60), fault("failed", True, NOW + 90)],
            "its runner (pid 4242) died with 2 fault(s) not reverted: `lab reset` reverts them now, "
            "else they expire at 08:01:30 UTC",
        ),
        (
            "runner died",
            [fault("active", True), fault("planned", False), fault("reverted", False)],
            "its runner (pid 4242) died with 2 fault(s) not reverted: `lab reset` reverts them now, "
            "else 1 expire(s) by 08:01:30 UTC and 1 stay(s) until `lab reset`",
        ),
        (
            "runner died",
            [fault("active", False)],
            "its runner (pid 4242) died with 1 fault(s) not reverted: `lab reset` reverts them (they do not expire "
            "on their own)",
        ),
        (
            "runner died",
            [fault("active", True, NOW - 5)],
            "its runner (pid 4242) died with 1 fault(s) not reverted: they expired at 07:59:55 UTC; "
            "`lab reset` ends the run",
        ),
        (
            "runner died",
            [fault("reverted", True)],
            "its runner (pid 4242) died with no fault in place; `lab reset` ends the run",
        ),
        (
            "ended",
            [fault("failed", False)],
            "it ended with 1 fault(s) not reverted: `lab reset` reverts them (they do not expire on their own)",
        ),
        (
            "ended",
            [fault("failed", True, NOW - 5)],
            "it ended with 1 fault(s) not reverted: they expired at 07:59:55 UTC; `lab reset` clears their record",
        ),
        ("ended", [fault("reverted", True)], None),
        ("running", [fault("active", True)], None),
    ],
)
def test_a_run_no_runner_will_revert_says_what_it_left_and_the_fix(
    state: str, faults: list[dict[str, Any]], line: str | None
) -> None:
    assert left_behind(RUN, state, faults, NOW) == line


def test_a_blind_run_says_only_the_fix_not_how_many_faults_or_which_expire() -> None:
    blind = dataclasses.replace(RUN, blind=True)
    faults = [fault("active", True), fault("planned", False)]
    line = "its runner (pid 4242) died with faults not reverted: `lab reset` reverts them"
    assert left_behind(blind, "runner died", faults, NOW) == line


def test_a_runner_killed_but_not_reaped_yet_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run = dataclasses.replace(RUN, pid=child.pid, pid_created=process_identity(child.pid))
        assert runner_alive(run)
        child.send_signal(signal.SIGKILL)
        wait_for(lambda: psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE, 10, "a zombie")
        assert not runner_alive(run)  # its pid and start time are still there until its parent reaps it
    finally:
        child.kill()
        child.wait()


def test_a_run_recorded_with_a_wall_clock_start_is_still_judged_by_it() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run = dataclasses.replace(RUN, pid=child.pid, pid_created=psutil.Process(child.pid).create_time())
        assert runner_alive(run)
        assert not runner_alive(dataclasses.replace(run, pid_created=run.pid_created - 5))
    finally:
        child.kill()
        child.wait()
