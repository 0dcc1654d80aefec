"""Drills run in this process: one (`run_one`), or several one after the other (`run_in_sequence`: a game day, the
capstone). Which results fail `lab drill run` and which stop a sequence is pure (`failed`, `stops`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from drills.engine import DrillRunner, RunOptions, RunResult, Say
from lab_runtime.errors import LabError

if TYPE_CHECKING:
    from drills.spec import Drill
    from lab_runtime.backends.base import Backend
    from lab_runtime.settings import Settings

STOPPING = ("interrupted", "aborted", "refused", "error")  # outcomes after which a sequence starts no other drill


@dataclass(frozen=True)
class Reports:
    """Where a run in the foreground reports: `started` gets its id and drill before the gate, `say` a line per
    step (a blind run says none), `ended` its result."""

    started: Callable[[str, Drill], None]
    ended: Callable[[RunResult], None]
    say: Say


def failed(result: RunResult) -> bool:
    """Whether a run failed its command: it erred, was refused, or left a fault it could not revert."""
    return result.outcome in ("error", "refused") or bool(result.revert_failures)


def stops(result: RunResult) -> bool:
    """Whether a sequence stops after this run: it was interrupted, aborted, refused or erred."""
    return result.outcome in STOPPING or result.interrupted


def run_one(
    settings: Settings, backend: Backend, drill: Drill, options: RunOptions, reports: Reports, run_id: str | None = None
) -> RunResult:
    """Run `drill` here, from the gate to the revert, and report it."""
    say = (lambda line: None) if options.blind else reports.say
    runner = DrillRunner(drill, settings, backend, options, say=say, run_id=run_id)
    reports.started(runner.run_id, drill)
    result = runner.run()
    reports.ended(result)
    return result


def run_in_sequence(
    settings: Settings,
    backend: Backend,
    steps: Iterable[tuple[Drill, float]],
    options: RunOptions,
    reports: Reports,
    what: str = "game day",
) -> list[str]:
    """Run each drill after its delay (seconds, scaled) with `options`; their outcomes. A run that `stops` the
    sequence ends it (a LabError naming the run)."""
    outcomes = []
    for drill, delay in steps:
        result = run_one(settings, backend, drill, replace(options, delay=delay), reports)
        outcomes.append(result.outcome)
        if stops(result):
            raise LabError(f"the {what} stopped: drill run {result.run_id} ended {result.outcome}")
    return outcomes
