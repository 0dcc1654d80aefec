"""Controlling drills from another process: status, abort, and `lab reset` (revert what a dead runner left)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from drills.engine import revert_faults, runner_alive
from drills.ledger import Ledger, RunRecord
from lab_runtime import journal as kinds
from lab_runtime.backends.base import SERVICES, Backend
from lab_runtime.errors import LabError, NotFound
from lab_runtime.journal import Journal
from lab_runtime.settings import Settings

ABORT_WAIT = 180.0  # seconds a runner may take to revert and re-check the steady state after an abort


@dataclass
class RunStatus:
    run: RunRecord
    state: str  # running | ended | runner died
    faults: list[dict[str, Any]] = field(default_factory=list)
    last_probe: dict[str, Any] | None = None


def _state(run: RunRecord) -> str:
    if run.ended is not None:
        return "ended"
    return "running" if runner_alive(run) else "runner died"


def status(settings: Settings) -> RunStatus | None:
    """The open run (or else the last one), its faults and its last probe."""
    settings.ensure_dirs()
    with Ledger(settings.drills_db_path) as ledger:
        runs = ledger.open_runs()
        run = runs[-1] if runs else ledger.last_run()
        if run is None:
            return None
        faults = [
            {"fault": f.idx, "type": f.type, "state": f.state, "injected_at": f.injected_at, "result": f.result}
            for f in ledger.faults(run.run_id)
        ]
    journal = Journal(settings.journal_path, source="cli")
    try:
        probes = journal.events([kinds.PROBE_RESULT], run_id=run.run_id)
    finally:
        journal.close()
    return RunStatus(run, _state(run), faults, probes[-1].payload | {"at": probes[-1].ts} if probes else None)


def _wait_ended(ledger: Ledger, run: RunRecord, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = ledger.run(run.run_id)
        if current is None or current.ended is not None or not runner_alive(run):
            return True
        time.sleep(0.2)
    return False


def _close_dead_run(
    settings: Settings, backend: Backend, ledger: Ledger, run: RunRecord, journal: Journal
) -> list[str]:
    """Revert what a dead runner left and end its run in the journal; returns the failures."""
    failures = revert_faults(settings, backend, journal, ledger, run, by="reset")
    current = ledger.run(run.run_id)
    if current is not None and current.ended is None:
        journal.append(
            kinds.DRILL_ENDED,
            {"drill": run.drill, "outcome": "reset", "detail": "its runner died; reverted by `lab reset`"},
            run_id=run.run_id,
        )
        ledger.end_run(run.run_id, "reset")
    return failures


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
                failures = _close_dead_run(settings, backend, ledger, run, journal)
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


def reset(settings: Settings, backend: Backend, say: Callable[[str], None]) -> dict[str, Any]:
    """Put the sandbox back in its steady state: start what is down, end open drills, revert every fault left,
    clear the service's fault table and the pipeline's conditions, then check the steady state."""
    from drills.conditions import parse_condition
    from drills.engine import wait_steady
    from drills.spec import DEFAULT_STEADY_STATE
    from lab_runtime.pipeline.store import CONCEPT, LABEL_FEED, ReleaseStore
    from lab_runtime.service.admin_client import ServiceAdmin

    settings.ensure_dirs()
    report: dict[str, Any] = {"runs_ended": [], "faults_reverted": 0, "failures": [], "services_started": []}
    for service in SERVICES:  # first: a revert needs the services it acts through
        try:
            if backend.ensure_running(service):
                report["services_started"].append(service)
        except LabError as exc:
            report["failures"].append(f"{service}: {exc}")
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
            journal = Journal(settings.journal_path, source="reset", learner=run.learner)
            try:
                before = len(ledger.unreverted(run.run_id))
                if (current := ledger.run(run.run_id)) is not None and current.ended is None:
                    report["failures"] += _close_dead_run(settings, backend, ledger, run, journal)
                    say(f"drill run {run.run_id} ({run.drill}): its runner died; reverted what it left")
                else:
                    report["failures"] += revert_faults(settings, backend, journal, ledger, run, by="reset")
                report["faults_reverted"] += before - len(ledger.unreverted(run.run_id))
            finally:
                journal.close()
    with contextlib.suppress(LabError):
        report["service_faults_cleared"] = ServiceAdmin(settings).clear()
    with ReleaseStore(settings.pipeline_db_path) as store:
        report["conditions_cleared"] = [n for n in (CONCEPT, LABEL_FEED) if store.clear_condition(n)]
    steady = tuple(parse_condition(c) for c in DEFAULT_STEADY_STATE)
    verdict = wait_steady(settings, backend, steady, settings.monitor_window + 5 * settings.monitor_interval)
    report["steady"], report["not_steady"] = verdict.ok, list(verdict.failing)
    journal = Journal(settings.journal_path, source="reset", learner=settings.learner)
    try:
        journal.append(kinds.SANDBOX_RESET, report)
    finally:
        journal.close()
    return report
