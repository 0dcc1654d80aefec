"""The start of a process as the kernel recorded it: what a learner's move is dated by."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from lab_runtime import clock
from lab_runtime.backends.supervisor import ProcessRecord, _live
from lab_runtime.cli import app
from lab_runtime.events import LEARNER_DECLARED
from lab_runtime.journal import Journal


def test_a_child_process_starts_within_10_ms_of_when_it_was_spawned() -> None:
    errors = []
    for _ in range(5):
        spawned = time.time()
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
        try:
            errors.append(clock.process_started(child.pid) - spawned)
        finally:
            child.kill()
            child.wait()
    assert all(-0.01 <= e <= 0.05 for e in errors), errors  # 10 ms ticks, centred; the fork follows the stamp


def test_this_process_started_before_now_and_its_start_does_not_move() -> None:
    first = clock.process_started()
    assert first < time.time() and abs(clock.process_started() - first) < 1e-3


def test_a_command_run_in_its_own_process_is_dated_from_the_process_start(tmp_path: Path) -> None:
    env = {"LAB_STATE_DIR": str(tmp_path / "state"), "LAB_LEARNER": "ada", "PATH": "/usr/bin:/bin"}
    spawned = time.time()
    done = subprocess.run(
        [sys.executable, "-m", "lab_runtime.cli", "declare", "latency"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0 and "declared latency at" in done.stdout, done.stderr
    (event,) = Journal(tmp_path / "state" / "journal.db", source="test").events([LEARNER_DECLARED])
    assert event.began is not None and abs(event.began - spawned) < 0.05  # not after the imports
    assert event.ts - event.began > 0.1 and event.at == event.began  # written once the command had loaded


def test_in_process_commands_are_dated_from_when_each_began(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path / "state"))
    runner = CliRunner()
    before = time.time()
    assert runner.invoke(app, ["declare", "errors"]).exit_code == 0
    assert runner.invoke(app, ["declare", "latency"]).exit_code == 0
    first, second = Journal(tmp_path / "state" / "journal.db", source="test").events([LEARNER_DECLARED])
    assert first.began is not None and second.began is not None and before <= first.began <= second.began


def test_a_journal_written_before_events_carried_a_start_opens_and_reads_them_as_written(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, learner TEXT, run_id TEXT,"
        " source TEXT NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL);"
        "INSERT INTO events (ts, learner, run_id, source, kind, payload) VALUES (100.0, 'ada', NULL, 'cli',"
        " 'learner.declared', '{\"diagnosis\": \"latency\"}');"
    )
    old.close()
    journal = Journal(path, source="cli", learner="ada", began=150.0)
    journal.append(LEARNER_DECLARED, {"diagnosis": "errors"})
    before, after = journal.events([LEARNER_DECLARED])
    assert (before.began, before.at) == (None, 100.0)
    assert after.began == 150.0 and after.at == 150.0 and after.ts > after.began


def test_a_process_identity_is_its_start_after_boot_which_a_clock_change_cannot_move(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        mine, theirs = clock.process_identity(os.getpid()), clock.process_identity(child.pid)
        up = time.clock_gettime(time.CLOCK_BOOTTIME)
        assert 0 < mine <= theirs <= up
        monkeypatch.setattr(time, "time", lambda: 4_000_000_000.0)  # the wall clock set years ahead
        assert clock.process_identity(child.pid) == theirs
    finally:
        child.kill()
        child.wait()
    with pytest.raises(OSError):
        clock.process_identity(child.pid)


def test_a_service_is_still_running_when_the_clock_moved_since_its_pid_file_was_written(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        # the wall-clock start another process computed before the system clock was set back 5 s
        moved = psutil.Process(child.pid).create_time() + 5.0
        record = ProcessRecord("svc", child.pid, moved, None, 0.0, "log", clock.process_identity(child.pid))
        assert _live(record) is not None
        assert _live(dataclasses.replace(record, after_boot=None)) is None  # the old record: wrongly called dead
    finally:
        child.kill()
        child.wait()
    assert _live(record) is None
