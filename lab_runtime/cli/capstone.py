"""Capstone commands: `lab capstone start|status|score|abort` (and `run`, what `start` runs in the background).
The capstone is a seeded sequence of blind drills with random gaps within a time budget (drawn from a rubric
file), run in the background, then scored against the rubric."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from lab_runtime.cli.common import (
    JSON,
    app,
    backend,
    friendly,
    grid,
    journal,
    learner_name,
    out,
    plain,
    print_json,
    settings,
)
from lab_runtime.durations import format_duration
from lab_runtime.errors import LabError
from lab_runtime.events import CAPSTONE_ENDED, CAPSTONE_STARTED, DRILL_ENDED, CapstoneStarted

if TYPE_CHECKING:
    from drills.spec import Drill

capstone_app = typer.Typer(help="The capstone assessment: blind drills in sequence, then a rubric score.")
app.add_typer(capstone_app, name="capstone")


def _plan(rubric: Any, seed: int, scale: float) -> Any:
    from drills.spec import catalog
    from grader.capstone import plan

    return plan(rubric, seed, {d.id: d.time_limit for d in catalog()}, scale)


def _decisions(drills: tuple[str, ...]) -> int:
    """How many of `drills` have a decision table (the capstone judges the lever pulled first in those)."""
    from drills.spec import find_drill

    return sum(find_drill(d).decision is not None for d in drills)


@capstone_app.command("start")
@friendly
def start(
    seed: int | None = typer.Option(None, help="replay a capstone exactly (default: a random seed)"),
    rubric_file: Path | None = typer.Option(None, "--rubric", help="the rubric (default: grader/rubric.yaml)"),
    learner: str | None = typer.Option(None, help="whose capstone (default: LAB_LEARNER)"),
) -> None:
    """Start the capstone in the background: blind drills one after the other, each after a seeded pause."""
    from drills.capstone_runner import start as start_runner
    from grader.capstone import RUBRIC, latest_capstone, load_rubric

    current = settings()
    who = learner_name(learner, current)
    rubric = load_rubric(rubric_file or RUBRIC)
    chosen = seed if seed is not None else secrets.randbelow(1_000_000)
    plan = _plan(rubric, chosen, current.time_scale)  # refused here when it may not fit the budget
    backend(current).require("mlflow", "model-service")
    log = journal(current.model_copy(update={"learner": who}))
    last = latest_capstone(log.events([CAPSTONE_STARTED, CAPSTONE_ENDED]), who, None)  # one runner at a time
    unfinished = last.capstone_id if last is not None and last.ended is None else None

    def started(capstone_id: str) -> CapstoneStarted:
        return CapstoneStarted(capstone_id=capstone_id, seed=chosen, count=rubric.count, budget=rubric.budget,
                               longest=plan.longest, rubric=rubric.model_dump(by_alias=True),
                               decisions=_decisions(plan.drills))  # fmt: skip

    capstone_id = start_runner(current, log, unfinished, started)
    plain(  # not the seed: it gives the drills away (`lab capstone score` shows it once the capstone has ended)
        f"capstone {capstone_id} started: {rubric.count} blind drills, one after the other, within "
        f"{format_duration(plan.longest)}. Nobody tells you what breaks or when: watch `lab alerts` and "
        "`lab monitor status`, `lab declare` what you find, fix it. `lab capstone status` shows progress; "
        "`lab capstone score` the rubric score."
    )


@capstone_app.command("run", hidden=True)
@friendly
def run(capstone_id: str) -> None:
    """The capstone's runner (started by `lab capstone start`): its drills in sequence, then `capstone.ended`."""
    from drills.capstone_runner import run as run_capstone
    from drills.spec import find_drill
    from grader.capstone import Rubric
    from lab_runtime.cli.drill import reports

    current = settings()
    start = next(
        (e for e in journal(current).events([CAPSTONE_STARTED]) if e.payload["capstone_id"] == capstone_id), None
    )
    if start is None:
        raise LabError(f"no capstone {capstone_id} in the journal; start one with `lab capstone start`")
    seed, who = int(start.payload["seed"]), start.learner or current.learner
    log = journal(current.model_copy(update={"learner": who}))

    def schedule() -> list[tuple[Drill, float]]:  # in the runner: a catalog changed since the start still ends it
        plan = _plan(Rubric.model_validate(start.payload["rubric"]), seed, current.time_scale)
        return list(zip([find_drill(d) for d in plan.drills], plan.gaps, strict=True))

    team = start.payload.get("team")  # a team's skill check: its members act
    run_capstone(current, backend(current), log, capstone_id, seed, schedule, reports(seed, blind=True), team)


def _found(learner: str | None, form: str | None = "capstone") -> Any:
    """The learner's last capstone (`form` None: or skill check, whichever started last)."""
    from grader.capstone import latest_capstone
    from grader.grading import KINDS

    current = settings()
    found = latest_capstone(
        journal(current).events([*KINDS, CAPSTONE_STARTED, CAPSTONE_ENDED]), learner_name(learner, current), form
    )
    if found is None:
        raise LabError("no capstone in the journal yet; start one with `lab capstone start` (or `make capstone`)")
    return found


@capstone_app.command("status")
@friendly
def status(learner: str | None = typer.Option(None), as_json: bool = JSON) -> None:
    """The last capstone or skill check: running or finished, drills done, time used."""
    from lab_runtime.journal import Journal

    found = _found(learner, None)
    log: Journal = journal(settings())
    done = sum(1 for e in log.events([DRILL_ENDED]) if e.run_id in {g.run_id for g in found.grades})
    elapsed = (found.ended.ts if found.ended else time.time()) - found.started_at
    body = {
        "form": found.form,
        "capstone_id": found.capstone_id,
        "learner": found.learner,
        "state": "finished" if found.ended else "running",
        "drills_done": done,
        "drills": found.planned,
        "elapsed": elapsed,
    }
    if as_json:
        print_json(body)
        return
    plain(
        f"{_what(found)} {found.capstone_id} of {found.learner}: {body['state']}, {done} of {found.planned} drills "
        f"done, {format_duration(elapsed)} in"
    )


def _what(found: Any) -> str:
    return "capstone" if found.form == "capstone" else f"{found.form} skill check"


@capstone_app.command("score")
@friendly
def score_cmd(learner: str | None = typer.Option(None), as_json: bool = JSON) -> None:
    """The last capstone's rubric score: detection, diagnosis, remediation, collateral damage, time; pass or fail.
    Only once it has ended: a score that moved with each declaration would tell which one is right."""
    found = _found(learner)
    if found.ended is None:
        raise LabError(f"capstone {found.capstone_id} is still running; its score comes when it ends "
                       "(`lab capstone status`)")  # fmt: skip
    result = found.result()
    if as_json:
        print_json(found.summary())
        return
    table = grid(
        "dimension", "share", "weight", "points", title=escape(f"capstone {found.capstone_id} of {found.learner}")
    )
    for name, share in result.dimensions.items():
        weight = found.rubric.weights[name]
        table.add_row(name, f"{share:.0%}", f"{weight:g}", f"{weight * share:.1f}")
    out.print(table)
    verdict = "PASS" if result.passed else "FAIL: " + "; ".join(result.reasons)
    plain(f"score {result.score:g}/100, pass mark {found.rubric.pass_score:g}: {verdict} (seed {found.seed})")


@capstone_app.command("abort")
@friendly
def abort(learner: str | None = typer.Option(None)) -> None:
    """End the running capstone or skill check: its current drill is aborted (its faults reverted) and no further
    drill starts."""
    from drills.capstone_runner import stop

    found = _found(learner, None)
    if found.ended is not None or not stop(settings(), found.capstone_id):
        raise LabError(f"{_what(found)} {found.capstone_id} is not running; nothing to abort")
    plain(f"{_what(found)} {found.capstone_id} aborted; its drill's faults are reverted")
