"""Capstone commands: `lab capstone start|status|score`. The capstone is a seeded sequence of blind drills with random
gaps within a time budget (drawn from a rubric file), run in the background, then scored against the rubric."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
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
from lab_runtime.events import CAPSTONE_ENDED, CAPSTONE_STARTED, DRILL_ENDED, CapstoneEnded, CapstoneStarted
from lab_runtime.files.atomic import read_json, write_json_atomic
from lab_runtime.settings import Settings

GATE_TIMEOUT = 120.0  # seconds a capstone drill waits for the steady state: the previous drill may still settle
capstone_app = typer.Typer(help="The capstone assessment: blind drills in sequence, then a rubric score.")
app.add_typer(capstone_app, name="capstone")


def _plan(rubric: Any, seed: int, scale: float) -> Any:
    from drills.spec import catalog
    from grader.capstone import plan

    return plan(rubric, seed, {d.id: d.time_limit for d in catalog()}, scale)


def _runner_file(current: Settings) -> Path:
    return current.run_dir / "capstone.json"


def _runner_alive(current: Settings, capstone_id: str) -> bool:
    """Whether the background runner of `capstone_id` is still alive (a killed one never journals its end)."""
    record = read_json(_runner_file(current))
    if not record or record.get("capstone_id") != capstone_id:
        return False
    try:
        return bool(psutil.Process(int(record["pid"])).status() != psutil.STATUS_ZOMBIE)
    except (psutil.Error, ValueError, KeyError):
        return False


@capstone_app.command("start")
@friendly
def start(
    seed: int | None = typer.Option(None, help="replay a capstone exactly (default: a random seed)"),
    rubric_file: Path | None = typer.Option(None, "--rubric", help="the rubric (default: grader/rubric.yaml)"),
    learner: str | None = typer.Option(None, help="whose capstone (default: LAB_LEARNER)"),
) -> None:
    """Start the capstone in the background: blind drills one after the other, each after a seeded pause."""
    from grader.capstone import RUBRIC, latest_capstone, load_rubric

    current = settings()
    who = learner_name(learner, current)
    rubric = load_rubric(rubric_file or RUBRIC)
    chosen = seed if seed is not None else secrets.randbelow(1_000_000)
    plan = _plan(rubric, chosen, current.time_scale)  # refused here when it may not fit the budget
    backend(current).require("mlflow", "model-service")
    log = journal(current.model_copy(update={"learner": who}))
    running = latest_capstone(log.events([CAPSTONE_STARTED, CAPSTONE_ENDED]), who)
    if running is not None and running.ended is None:
        if _runner_alive(current, running.capstone_id):
            raise LabError(f"capstone {running.capstone_id} of {who} is still running; see `lab capstone status`")
        log.append(CAPSTONE_ENDED, CapstoneEnded(capstone_id=running.capstone_id, outcomes=[], detail="runner gone"))
    capstone_id = secrets.token_hex(4)
    log.append(
        CAPSTONE_STARTED,
        CapstoneStarted(
            capstone_id=capstone_id,
            seed=chosen,
            count=rubric.count,
            budget=rubric.budget,
            longest=plan.longest,
            rubric=rubric.model_dump(by_alias=True),
        ),
    )
    current.ensure_dirs()
    argv = [sys.executable, "-m", "lab_runtime.cli", "capstone", "run", capstone_id]
    with open(current.logs_dir / f"capstone-{capstone_id}.log", "ab") as handle:
        proc = subprocess.Popen(
            argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    write_json_atomic(_runner_file(current), {"capstone_id": capstone_id, "pid": proc.pid})
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
    from drills.spec import find_drill
    from grader.capstone import Rubric
    from lab_runtime.cli.drill import run_in_sequence

    current = settings()
    start = next(
        (e for e in journal(current).events([CAPSTONE_STARTED]) if e.payload["capstone_id"] == capstone_id), None
    )
    if start is None:
        raise LabError(f"no capstone {capstone_id} in the journal; start one with `lab capstone start`")
    seed, who = int(start.payload["seed"]), start.learner or current.learner
    log = journal(current.model_copy(update={"learner": who}))
    outcomes: list[str] = []
    try:  # whatever goes wrong from here (the catalog changed, a signal), the capstone's end is journaled
        plan = _plan(Rubric.model_validate(start.payload["rubric"]), seed, current.time_scale)
        drills = [find_drill(d) for d in plan.drills]
        outcomes = run_in_sequence(
            current, drills, list(plan.gaps), who, seed, True, tag=f"capstone:{capstone_id}", what="capstone",
            gate=GATE_TIMEOUT,
        )  # fmt: skip
    finally:
        log.append(CAPSTONE_ENDED, CapstoneEnded(capstone_id=capstone_id, outcomes=outcomes))


def _found(learner: str | None) -> Any:
    from grader.capstone import latest_capstone
    from grader.grading import KINDS

    current = settings()
    found = latest_capstone(
        journal(current).events([*KINDS, CAPSTONE_STARTED, CAPSTONE_ENDED]), learner_name(learner, current)
    )
    if found is None:
        raise LabError("no capstone in the journal yet; start one with `lab capstone start` (or `make capstone`)")
    return found


@capstone_app.command("status")
@friendly
def status(learner: str | None = typer.Option(None), as_json: bool = JSON) -> None:
    """The last capstone: running or finished, drills done, time used."""
    from lab_runtime.journal import Journal

    found = _found(learner)
    log: Journal = journal(settings())
    done = sum(1 for e in log.events([DRILL_ENDED]) if e.run_id in {g.run_id for g in found.grades})
    elapsed = (found.ended.ts if found.ended else time.time()) - found.started_at
    body = {
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
        f"capstone {found.capstone_id} of {found.learner}: {body['state']}, {done} of {found.planned} drills done, "
        f"{format_duration(elapsed)} in"
    )


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
    """End the running capstone: its current drill is aborted (its faults reverted) and no further drill starts."""
    current = settings()
    found = _found(learner)
    record = read_json(_runner_file(current))
    if found.ended is not None or not record or not _runner_alive(current, found.capstone_id):
        raise LabError(f"capstone {found.capstone_id} is not running; nothing to abort")
    os.kill(int(record["pid"]), signal.SIGTERM)  # the runner reverts its drill and journals the capstone's end
    deadline = time.monotonic() + 120
    while _runner_alive(current, found.capstone_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    plain(f"capstone {found.capstone_id} aborted; its drill's faults are reverted")
