"""Which drill results fail `lab drill run` and which stop a game day or the capstone (pure), the drills
`lab drill run random` draws from, and the capstone's runner process: alive, stopped, refused while alive."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from drills.capstone_runner import runner_file, runner_pid, start, stop
from drills.engine import RunResult
from drills.schedule import eligible, pick
from drills.sequence import failed, stops
from drills.spec import catalog
from lab_runtime.errors import LabError
from lab_runtime.events import CAPSTONE_STARTED, CapstoneStarted
from lab_runtime.files.atomic import write_json_atomic
from lab_runtime.journal import Journal
from lab_runtime.settings import Settings


@pytest.mark.parametrize(
    ("result", "fails", "stopping"),
    [
        (RunResult("r", "remediated"), False, False),
        (RunResult("r", "time_limit"), False, False),
        (RunResult("r", "error"), True, True),
        (RunResult("r", "refused"), True, True),
        (RunResult("r", "aborted"), False, True),
        (RunResult("r", "interrupted"), False, True),
        (RunResult("r", "remediated", revert_failures=["latency: the service did not answer"]), True, False),
        (RunResult("r", "remediated", interrupted=True), False, True),  # a signal while reverting
    ],
)
def test_a_result_fails_the_command_or_stops_the_sequence(result: RunResult, fails: bool, stopping: bool) -> None:
    assert failed(result) is fails
    assert stops(result) is stopping


def test_random_draws_among_the_drills_of_its_kind_that_run_on_this_runtime() -> None:
    drills = catalog()
    local = eligible(drills, None, "local")
    assert local == [d.id for d in drills if "local" in d.runtimes]
    assert set(eligible(drills, None, "compose")) == {d.id for d in drills}
    assert len(local) < len(drills)  # container faults need the compose runtime
    canaries = eligible(drills, "canary", "local")
    assert canaries and all(d.kind == "canary" for d in drills if d.id in canaries)
    assert pick(3, canaries) in canaries
    with pytest.raises(LabError, match=r"^no drill matches; see `lab drill list`$"):
        pick(3, eligible(drills, "nothing-of-this-kind", "local"))


@pytest.fixture
def runner(lab_env: dict[str, str]) -> Iterator[tuple[Settings, subprocess.Popen[bytes]]]:
    """A live process recorded as the runner of capstone c1."""
    settings = Settings()
    settings.ensure_dirs()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    write_json_atomic(runner_file(settings), {"capstone_id": "c1", "pid": proc.pid})
    yield settings, proc
    proc.kill()
    proc.wait()


def test_a_capstone_runner_is_alive_until_stopped(runner: tuple[Settings, subprocess.Popen[bytes]]) -> None:
    settings, proc = runner
    assert runner_pid(settings, "c1") == proc.pid
    assert runner_pid(settings, "c2") is None  # the record names another capstone
    assert stop(settings, "c2") is False
    assert stop(settings, "c1", wait=10) is True
    assert proc.wait(5) == -15  # SIGTERM
    assert runner_pid(settings, "c1") is None  # dead, and reaped
    assert stop(settings, "c1") is False


def test_a_capstone_whose_runner_is_alive_refuses_a_new_one(runner: tuple[Settings, subprocess.Popen[bytes]]) -> None:
    settings, _ = runner
    log = Journal(settings.journal_path, source="cli", learner="ada")
    try:
        with pytest.raises(LabError, match=r"^capstone c1 of ada is still running; see `lab capstone status`$"):
            start(
                settings,
                log,
                "c1",
                lambda i: CapstoneStarted(capstone_id=i, seed=1, count=1, budget=1, longest=1, rubric={}),
            )
        assert log.events([CAPSTONE_STARTED]) == []
    finally:
        log.close()
