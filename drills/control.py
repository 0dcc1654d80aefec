"""Controlling drills from another process: a runner started in the background, status, abort, and `lab reset`
(revert what a dead runner left)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from drills.conditions import Verdict
from drills.engine import Say, monitor_settle, new_run_id, revert_faults, runner_alive
from drills.faults import FAULTS
from drills.ledger import REVERTED, Ledger, RunRecord
from drills.teams import team_args
from lab_runtime import events as kinds
from lab_runtime.backends.base import Backend
from lab_runtime.backends.services import SERVICES
from lab_runtime.errors import LabError, NotFound
from lab_runtime.events import DrillEnded, DrillSteadyState, SandboxReset, Team
from lab_runtime.journal import Journal
from lab_runtime.labs.scripting import LAB
from lab_runtime.settings import Settings

ABORT_WAIT = 180.0  # seconds a runner may take to revert and re-check the steady state after an abort


@dataclass(frozen=True)
class Detached:
    run_id: str
    pid: int


def in_background(settings: Settings, args: list[str], log: str) -> int:
    """Start `lab ARGS` in its own session, in the background, its output appended to `log` in the logs folder;
    its pid."""
    settings.ensure_dirs()
    with open(settings.logs_dir / log, "ab") as handle:
        proc = subprocess.Popen(
            [*LAB, *args],
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return proc.pid


def detach(
    settings: Settings,
    drill_id: str,
    learner: str,
    seed: int,
    delay: float,
    blind: bool,
    gate: float,
    team: Team | None = None,
) -> Detached:
    """Start `lab drill run` for these choices in the background (its output in `drill-<run id>.log`): the run's
    id and the runner's pid."""
    run_id = new_run_id()
    args = ["drill", "run", drill_id, *(team_args(team) if team else ["--learner", learner])]
    args += ["--seed", str(seed), "--after", f"{delay:.3f}s", "--gate-timeout", f"{gate:.3f}s", "--run-id", run_id]
    args += ["--blind"] if blind else []
    return Detached(run_id, in_background(settings, args, f"drill-{run_id}.log"))


@dataclass
class RunStatus:
    run: RunRecord
    state: str  # running | ended | runner died
    faults: list[dict[str, Any]] = field(default_factory=list)
    last_probe: dict[str, Any] | None = None
    left: str | None = None  # what a runner that is gone left in place, and the fix (`left_behind`)


def _state(run: RunRecord) -> str:
    if run.ended is not None:
        return "ended"
    return "running" if runner_alive(run) else "runner died"


def utc_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S UTC")


def left_behind(run: RunRecord, state: str, faults: list[dict[str, Any]], now: float) -> str | None:
    """One line for a run no runner will revert any more: the faults it left in place and the fix (`lab reset`
    now, else when they expire). None while its runner runs, or when an ended run left nothing."""
    left = [f for f in faults if f["state"] != REVERTED]
    if state == "running" or (state == "ended" and not left):
        return None
    how = f"its runner (pid {run.pid}) died" if state == "runner died" else "it ended"
    if not left:
        return f"{how} with no fault in place; `lab reset` ends the run"
    if run.blind:  # how many faults, and which kinds expire, would tell what they are
        return f"{how} with faults not reverted: `lab reset` reverts them"
    found = f"{how} with {len(left)} fault(s) not reverted"
    expiring = [f["expires_at"] for f in left if f["expires"]]
    if not expiring:
        return f"{found}: `lab reset` reverts them (they do not expire on their own)"
    last = max(expiring)
    if last <= now and len(expiring) == len(left):
        fix = "ends the run" if state == "runner died" else "clears their record"
        return f"{found}: they expired at {utc_time(last)}; `lab reset` {fix}"
    if len(expiring) == len(left):
        return f"{found}: `lab reset` reverts them now, else they expire at {utc_time(last)}"
    stay = len(left) - len(expiring)
    return (
        f"{found}: `lab reset` reverts them now, else {len(expiring)} expire(s) by {utc_time(last)} "
        f"and {stay} stay(s) until `lab reset`"
    )


def busy(settings: Settings) -> str | None:
    """Why no drill can start now (a run is open: its runner is alive, or died before reverting), as the runner's
    claim would refuse it; None when one can. Said before a runner is started in the background."""
    settings.ensure_dirs()
    with Ledger(settings.drills_db_path) as ledger:
        runs = ledger.open_runs()
    if not runs:
        return None
    run = runs[-1]
    if runner_alive(run):
        return f"drill run {run.run_id} is running (pid {run.pid}); wait for it or end it with `lab drill abort`"
    return f"drill run {run.run_id} ended without reverting (its runner died); run `lab reset` first"


def status(settings: Settings) -> RunStatus | None:
    """The open run (or else the last one), its faults, its last probe, and what a gone runner left in place."""
    settings.ensure_dirs()
    with Ledger(settings.drills_db_path) as ledger:
        runs = ledger.open_runs()
        run = runs[-1] if runs else ledger.last_run()
        if run is None:
            return None
        faults = [
            {
                "fault": f.idx,
                "type": f.type,
                "state": f.state,
                "injected_at": f.injected_at,
                "result": f.result,
                "expires": FAULTS[f.type].expires,
                "expires_at": f.expires_at,
            }
            for f in ledger.faults(run.run_id)
        ]
    journal = Journal(settings.journal_path, source="cli")
    try:
        probes = journal.events([kinds.PROBE_RESULT], run_id=run.run_id)
    finally:
        journal.close()
    state = _state(run)
    last_probe = probes[-1].payload | {"at": probes[-1].ts} if probes else None
    return RunStatus(run, state, faults, last_probe, left_behind(run, state, faults, time.time()))


def _wait_ended(ledger: Ledger, run: RunRecord, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = ledger.run(run.run_id)
        if current is None or current.ended is not None or not runner_alive(run):
            return True
        time.sleep(0.2)
    return False


def _checked(steady: Verdict) -> DrillSteadyState:
    """The payload of a `drill.steady_state` event of `lab reset`."""
    return DrillSteadyState(ok=steady.ok, failing=list(steady.failing), by="reset")


def _end_dead_run(ledger: Ledger, run: RunRecord, journal: Journal, steady: Verdict | None = None) -> None:
    """Journal the end of a run whose runner died (after the steady state it was checked against, if any)."""
    current = ledger.run(run.run_id)
    if current is None or current.ended is not None:
        return
    if steady is not None:
        journal.append(kinds.DRILL_STEADY_STATE, _checked(steady), run_id=run.run_id)
    detail = "its runner died; reverted by `lab reset`"
    ended = DrillEnded(drill=run.drill, outcome="reset", detail=detail)
    if steady is not None:
        ended["steady_after"] = steady.ok
    journal.append(kinds.DRILL_ENDED, ended, run_id=run.run_id)
    ledger.end_run(run.run_id, "reset")


def abort(settings: Settings, backend: Backend, say: Callable[[str], None]) -> RunRecord:
    """End the running drill: its runner reverts and ends it (a dead runner's faults are reverted here)."""
    settings.ensure_dirs()
    with Ledger(settings.drills_db_path) as ledger:
        runs = ledger.open_runs()
        if not runs:
            raise NotFound("no drill is running (`lab drill status` shows the last one)")
        run = runs[-1]
        ledger.request_abort(run.run_id)
        if runner_alive(run):
            with contextlib.suppress(ProcessLookupError):
                os.kill(run.pid, signal.SIGTERM)
            say(f"asked the runner (pid {run.pid}) to end drill run {run.run_id}; it is reverting")
            if not _wait_ended(ledger, run, ABORT_WAIT):
                raise LabError(f"the runner (pid {run.pid}) did not end within {ABORT_WAIT:.0f}s; run `lab reset`")
        if not runner_alive(run) and (current := ledger.run(run.run_id)) and current.ended is None:
            journal = Journal(settings.journal_path, source="reset", learner=run.learner)
            try:
                failures = revert_faults(settings, backend, journal, ledger, run, by="reset")
                _end_dead_run(ledger, run, journal)
            finally:
                journal.close()
            if failures:
                raise LabError("could not revert: " + "; ".join(failures) + "; run `lab reset` again")
        left = ledger.unreverted(run.run_id)
        if left:
            raise LabError(
                f"drill run {run.run_id} ended, but {len(left)} fault(s) could not be reverted "
                f"({', '.join(f.type for f in left)}); run `lab reset`"
            )
        return run


@dataclass(frozen=True)
class Ended:
    run: RunRecord
    failure: str | None = None  # why the abort did not end it cleanly (`lab reset` reverts it later)


def end_running(settings: Settings, backend: Backend, say: Say) -> Ended | None:
    """Abort the drill a live runner is running, so its faults are reverted (while the services are still up);
    None when no runner runs one."""
    found = status(settings)
    if found is None or found.state != "running":
        return None
    try:
        abort(settings, backend, say)
    except LabError as exc:
        return Ended(found.run, str(exc))
    return Ended(found.run)


def reset(settings: Settings, backend: Backend, say: Say) -> SandboxReset:
    """Put the sandbox back in its steady state, saying each step: start what is down, end open drills, revert
    every fault left, clear the service's fault table and the pipeline's conditions, then check the steady state
    (first on the service's last seconds of requests, then in the monitor's window, as a drill's gate judges it)
    and journal it."""
    from drills.conditions import parse_condition, recent_view
    from drills.engine import wait_steady
    from drills.probes import observer_for, recent_seconds
    from drills.spec import DEFAULT_STEADY_STATE
    from lab_runtime.pipeline.conditions import CONDITIONS
    from lab_runtime.pipeline.store import ReleaseStore
    from lab_runtime.service.admin_client import ServiceAdmin

    settings.ensure_dirs()
    report = SandboxReset(
        services_started=[],
        runs_ended=[],
        faults_reverted=0,
        failures=[],
        conditions_cleared=[],
        steady=False,
        not_steady=[],
    )
    for service in SERVICES:  # first: a revert needs the services it acts through
        try:
            if backend.ensure_running(service):
                report["services_started"].append(service)
                say(f"started {service}")
        except LabError as exc:
            report["failures"].append(f"{service}: {exc}")
            say(f"could not start {service}: {exc}")
    dead: list[RunRecord] = []  # runs whose runner died: ended once the steady state is checked
    with Ledger(settings.drills_db_path) as ledger:
        for run in ledger.open_runs():
            if runner_alive(run):
                say(f"drill run {run.run_id} is running: aborting it")
                try:
                    abort(settings, backend, say)
                except LabError as exc:
                    report["failures"].append(str(exc))
            report["runs_ended"].append(run.run_id)
        left = {r.run_id: r for r in [*ledger.open_runs(), *ledger.runs_with_unreverted()]}
        for run in left.values():
            if (current := ledger.run(run.run_id)) is not None and current.ended is None:
                dead.append(run)
                say(f"drill run {run.run_id} ({'blind' if run.blind else run.drill}): its runner died; reverting")
            else:
                say(f"drill run {run.run_id}: reverting the faults it could not revert")
            journal = Journal(settings.journal_path, source="reset", learner=run.learner)
            try:
                before = len(ledger.unreverted(run.run_id))
                report["failures"] += revert_faults(settings, backend, journal, ledger, run, by="reset", say=say)
                report["faults_reverted"] += before - len(ledger.unreverted(run.run_id))
            finally:
                journal.close()
        with contextlib.suppress(LabError):
            report["service_faults_cleared"] = ServiceAdmin(settings).clear()
            if report["service_faults_cleared"]:
                say(f"cleared {report['service_faults_cleared']} other fault(s) from the model service")
        with ReleaseStore(settings.pipeline_db_path) as store:
            report["conditions_cleared"] = [n for n in CONDITIONS if store.clear_condition(n)]
        if report["conditions_cleared"]:
            say(f"cleared the pipeline's {' and '.join(report['conditions_cleared'])} condition")
        steady = tuple(parse_condition(c) for c in DEFAULT_STEADY_STATE)
        observe = observer_for(steady)
        timeout = monitor_settle(settings)
        recent = recent_seconds(settings)
        say(f"checking the steady state on the service's last {recent:g}s of requests "
            f"(up to {timeout:g}s): {', '.join(DEFAULT_STEADY_STATE)}")  # fmt: skip
        started = time.monotonic()
        verdict = wait_steady(settings, backend, steady, timeout, lambda s, b: recent_view(observe(s, b)))
        if verdict.ok:  # then the monitor's window, which a drill's gate judges, must pass the faults' requests
            so_far = time.monotonic() - started
            window = settings.scaled(settings.monitor_window)
            say(f"the service is steady again ({so_far:.1f}s); waiting for the monitor's {window:g}s window "
                f"to agree (up to {timeout:g}s; a drill's gate reads it)")  # fmt: skip
            verdict = wait_steady(settings, backend, steady, timeout, observe)
        took = time.monotonic() - started
        say(f"steady state holds ({took:.1f}s)" if verdict.ok else f"not steady after {took:.0f}s: "
            + "; ".join(verdict.failing))  # fmt: skip
        report["steady"], report["not_steady"] = verdict.ok, list(verdict.failing)
        for run in dead:
            journal = Journal(settings.journal_path, source="reset", learner=run.learner)
            try:
                _end_dead_run(ledger, run, journal, verdict)
            finally:
                journal.close()
    journal = Journal(settings.journal_path, source="reset", learner=settings.learner)
    try:
        if not dead:  # the sandbox's check, of no drill run
            journal.append(kinds.DRILL_STEADY_STATE, _checked(verdict))
        journal.append(kinds.SANDBOX_RESET, report)
    finally:
        journal.close()
    return report
