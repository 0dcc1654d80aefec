"""An automated learner for drill tests: runs a drill in its own process, waits until the fault shows in the
probes, declares the drill's diagnosis, applies the drill's reference remediation, and waits for the end."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from drills.spec import Drill
from lab_runtime import events as kinds
from lab_runtime.durations import parse_duration
from lab_runtime.journal import Event, Journal
from lab_runtime.settings import Settings
from tests import cli
from tests.cli import LAB, lab_process, ok
from tests.sandbox import wait_for

# Commands that start services, which must outlive the command: run in their own process.
STARTS_SERVICES = {"up", "restart", "reset"}


def lab(*args: str) -> str:
    """A learner's `lab` command (in this process, but those that start services); fails the test unless it exits
    0; its stdout. Its move is dated from when it was called, as a process's is from its start."""
    return ok(lab_process(*args) if args[0] in STARTS_SERVICES else cli.lab(*args))


def drill_argv(drill: str, *extra: str) -> list[str]:
    return [*LAB, "drill", "run", drill, "--seed", "11", *extra]


def start_drill(drill: str, *extra: str) -> subprocess.Popen[str]:
    """`lab drill run DRILL` in its own process (real signals, real exit paths)."""
    argv = drill_argv(drill, *extra)
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ))


def events(settings: Settings, run_id: str | None = None, kinds_: Sequence[str] | None = None) -> list[Event]:
    journal = Journal(settings.journal_path, source="test")
    try:
        return journal.events(kinds_, run_id=run_id)
    finally:
        journal.close()


def run_id_after(settings: Settings, since_id: int, timeout: float = 60) -> str:
    found: list[str] = []

    def started() -> bool:
        found.extend(e.run_id for e in events(settings, kinds_=[kinds.DRILL_STARTED]) if e.id > since_id and e.run_id)
        return bool(found)

    wait_for(started, timeout, "drill.started")
    return found[0]


def last_event_id(settings: Settings) -> int:
    all_events = events(settings)
    return all_events[-1].id if all_events else 0


def fault_visible(settings: Settings, run_id: str, n_faults: int, signal: str | None = None) -> bool:
    """Every fault injected, and a probe after the last injection in which the drill's conditions fail (with
    `signal`: in which a condition on it fails on a value, as an alert on it would show)."""
    run = events(settings, run_id)
    injected = [e for e in run if e.kind == kinds.FAULT_INJECTED]
    if len(injected) < n_faults:
        return False
    after = [e for e in run if e.kind == kinds.PROBE_RESULT and e.id > injected[-1].id]
    if signal is not None:
        return any(f.startswith(f"{signal} ") and ": is " in f for p in after for f in p.payload["failing"])
    return any(not (p.payload["steady"] and p.payload["remediated"]) for p in after)


def stop(proc: subprocess.Popen[str]) -> str:
    """End a drill runner the way an instructor would (SIGTERM: it reverts), SIGKILL only if it hangs."""
    if proc.poll() is None:
        proc.terminate()
    try:
        output, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
    return output or ""


@dataclass
class Outcome:
    run_id: str
    returncode: int
    output: str
    events: list[Event]


def respond(
    settings: Settings,
    drill: Drill,
    run_id: str,
    running: Callable[[], bool] = lambda: True,
    commands: Sequence[str] | None = None,
    signal: str | None = None,
) -> None:
    """As a learner: wait until run `run_id`'s fault shows in the probes (on `signal`, if given), declare the drill's
    diagnosis, and apply `commands` (default: its reference remediation). `running` says whether the run can still
    go on (fails fast when it ended early)."""
    wait_for(
        lambda: fault_visible(settings, run_id, len(drill.faults), signal) or not running(),
        120,
        f"{drill.id}: the fault in the probes",
    )
    assert running(), "the drill ended before its fault showed"
    injected = events(settings, run_id, [kinds.FAULT_INJECTED])[-1].ts
    lab("declare", drill.diagnosis)
    for command in drill.remediation.reference if commands is None else commands:
        window = re.search(r"--window (\S+)", command)
        if window:  # a learner retraining on fresh labels waits until the window holds only fresh ones
            fresh = injected + parse_duration(window.group(1)) + settings.scaled(settings.label_delay) + 1
            time.sleep(max(fresh - time.time(), 0))
        lab(*shlex.split(command)[1:])


def solve(
    settings: Settings,
    drill: Drill,
    timeout: float = 240,
    commands: Sequence[str] | None = None,
    signal: str | None = None,
) -> Outcome:
    """Run `drill`, detect it (on `signal`, if given), declare, remediate with `commands` (default: its reference);
    the run's journal at the end."""
    since = last_event_id(settings)
    proc = start_drill(drill.id)
    try:
        run_id = run_id_after(settings, since)
        respond(settings, drill, run_id, lambda: proc.poll() is None, commands, signal)
        output, _ = proc.communicate(timeout=timeout)
    except AssertionError as exc:
        output = stop(proc)
        raise AssertionError(f"{exc}\n--- lab drill run said:\n{output}") from None
    finally:
        stop(proc)
    return Outcome(run_id, proc.returncode, output, events(settings, run_id))


def in_order(run: list[Event], expected: Sequence[str]) -> bool:
    """Whether the kinds in `expected` occur in the run's events in that order (others may come between)."""
    kinds_seen = iter(e.kind for e in run)
    return all(any(k == want for k in kinds_seen) for want in expected)
