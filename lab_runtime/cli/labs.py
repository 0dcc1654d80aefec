"""Lab commands: labs, start, check, hint, solve, declare."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from lab_runtime.cli.common import (
    JSON,
    app,
    backend,
    err,
    friendly,
    grid,
    journal,
    out,
    plain,
    print_json,
    print_urls,
    settings,
)
from lab_runtime.errors import LabError
from lab_runtime.settings import Settings

if TYPE_CHECKING:
    from lab_runtime.journal import Journal
    from lab_runtime.labs.catalog import Lab, StepResult


def activation_line() -> str | None:
    """The line that puts this environment's `lab` on the PATH, unless the shell already finds it there."""
    bin_dir = Path(sys.prefix) / "bin"
    found = shutil.which("lab")
    if not (bin_dir / "activate").is_file() or (found and Path(found).resolve().parent == bin_dir.resolve()):
        return None
    return f"source {bin_dir / 'activate'}"


@app.command("labs")
@friendly
def list_labs(as_json: bool = JSON) -> None:
    """The labs there are."""
    from lab_runtime.labs.catalog import all_labs

    labs = all_labs()
    if as_json:
        print_json([{"id": lab.id, "title": lab.title, "steps": len(lab.steps)} for lab in labs])
        return
    table = grid("lab", "title", "steps")
    for lab in labs:
        table.add_row(lab.id, lab.title, str(len(lab.steps)))
    out.print(table)


def _current_lab(current: Settings):  # type: ignore[no-untyped-def]
    from lab_runtime.events import LAB_STARTED
    from lab_runtime.labs.catalog import find_lab

    event = journal(current).last(LAB_STARTED) if current.journal_path.exists() else None
    if event is None:
        raise LabError("no lab started yet; run `lab start lab-01` first (see `lab labs`)")
    return find_lab(event.payload["lab"]), event.ts


def _ensure_champion(current: Settings) -> None:
    """Register and promote a first model version when the registry has no @champion yet."""
    from lab_runtime.modeling.model import train_and_register
    from lab_runtime.registry.rest import CHAMPION, Registry

    registry = Registry(current.mlflow_url)
    try:
        state = registry.model(current.model_name)
    finally:
        registry.close()
    if state is None or CHAMPION not in state.aliases:
        out.print(f"this lab starts from a served model: training {current.model_name!r} and promoting it to @champion")
        registered = train_and_register(current.mlflow_url, current.model_name, alias=CHAMPION)
        out.print(f"version {registered.version} is @champion (accuracy {registered.metrics['accuracy']:.3f})")


def _start(current: Settings, lab_id: str, *, resume: bool = False):  # type: ignore[no-untyped-def]
    """Start lab `lab_id` (its starter files copied, never over the learner's); with `resume`, a lab that is
    already the current one goes on where it is (its scripted events, e.g. a running incident, stay counted)."""
    from lab_runtime.events import LAB_STARTED, LabStarted
    from lab_runtime.labs.catalog import find_lab

    lab = find_lab(lab_id)
    last = journal(current).last(LAB_STARTED) if current.journal_path.exists() else None
    resume = resume and last is not None and last.payload.get("lab") == lab.id
    backend(current).require("mlflow", "model-service")
    if lab.needs_champion:
        _ensure_champion(current)
    workspace = current.workspace_dir / lab.id
    workspace.mkdir(parents=True, exist_ok=True)
    for name in lab.starter:
        if not (workspace / name).exists():  # never overwrite the learner's edits
            shutil.copy2(lab.directory / name, workspace / name)
    if not resume:
        journal(current).append(LAB_STARTED, LabStarted(lab=lab.id, workspace=str(workspace)))
    return lab, workspace


@app.command()
@friendly
def start(lab_id: str = typer.Argument(..., metavar="LAB")) -> None:
    """Start a lab: copy its starter files to your workspace and print the brief."""
    current = settings()
    lab, workspace = _start(current, lab_id)
    out.rule(f"[bold]{lab.id}: {lab.title}")
    out.print(lab.summary)
    out.print("\n[bold]You will learn to[/]")
    for objective in lab.objectives:
        out.print(f"  - {objective}")
    out.print(f"\n{lab.brief.strip()}\n")
    out.print("[bold]Your sandbox[/]")
    print_urls(current)
    out.print(f"\n[bold]Your files[/] are in {workspace}: {', '.join(lab.starter) or '(none)'}")
    out.print(f"Lab guide: {lab.directory / 'README.md'}")
    if activate := activation_line():
        out.print("\n[bold]In each new terminal[/], put `lab` and the lab's `python` on your PATH with:")
        plain(f"  {activate}")
    out.print("\nNext: follow the lab guide's steps; run [bold]lab check[/] after each ([bold]lab hint[/] when stuck).")
    out.print("Stop the sandbox with [bold]lab down[/] (or make down).")


def _results(current: Settings):  # type: ignore[no-untyped-def]
    from grader.grading import grade_run
    from lab_runtime.labs.catalog import check_lab
    from lab_runtime.labs.checks import CheckContext
    from lab_runtime.registry.rest import Registry

    lab, started_at = _current_lab(current)
    backend(current).require("mlflow", "model-service")
    registry = Registry(current.mlflow_url)
    try:
        context = CheckContext(current, registry, started_at, lab.id, grade_run=grade_run)
        return lab, started_at, check_lab(lab, context)
    finally:
        registry.close()


def _run_events(current: Settings, lab: Lab, started_at: float, results: list[StepResult]) -> list[str]:
    """Run the lab's scripted events whose step now passes (once each); their announcements."""
    from lab_runtime.events import LAB_EVENT, LabEvent
    from lab_runtime.labs.catalog import due_events
    from lab_runtime.pipeline.store import ReleaseStore, ship
    from lab_runtime.registry import model_ops

    log = journal(current, source=f"{lab.id}-scenario")
    happened = len(log.events([LAB_EVENT], since=started_at))
    announcements = []
    for number, event in enumerate(due_events(lab, results, happened), start=happened):
        # What served before the incident: the checks compare with it.
        payload = LabEvent(lab=lab.id, event=number, aliases_before=model_ops.aliases(current))
        if event.ship_release is not None:
            with ReleaseStore(current.pipeline_db_path) as store:
                ship(store, log, event.ship_release, by=f"{lab.id} scenario")
            payload["release"] = event.ship_release.version
        else:
            payload["drill"] = str(event.run_drill)
            payload["run_id"] = _start_drill(current, log, payload["drill"])
        log.append(LAB_EVENT, payload)
        announcements.append(event.announce.strip())
    return announcements


DRILL_START_TIMEOUT = 120.0  # seconds for a lab's drill to pass its gate and put its first fault in place
PROGRESS_EVERY = 10.0  # seconds between two progress lines while it does


def _start_drill(current: Settings, log: Journal, drill_id: str) -> str:
    """Start a lab's drill in the background, blind, for the current learner (`lab drill run --detach`), and wait
    until its first fault is in place (its run id): a drill its gate refuses is an error here, so the next
    `lab check` tries again, instead of an incident that never comes."""
    from lab_runtime.events import DRILL_ENDED, DRILL_STARTED, FAULT_INJECTED

    since = time.time()
    argv = [sys.executable, "-m", "lab_runtime.cli", "drill", "run", drill_id, "--detach", "--blind"]
    result = subprocess.run([*argv, "--learner", current.learner], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise LabError(f"the lab's incident (drill {drill_id}) could not start: {reason}")
    err.print(f"getting the lab's next phase ready (its drill waits for steady traffic; at most "
              f"{DRILL_START_TIMEOUT:.0f}s)...", highlight=False)  # fmt: skip
    started = time.monotonic()
    told = 0.0
    while (waited := time.monotonic() - started) < DRILL_START_TIMEOUT:
        runs = [e.run_id for e in log.events([DRILL_STARTED], since=since) if e.payload.get("drill") == drill_id]
        if runs:
            first = log.events([FAULT_INJECTED, DRILL_ENDED], run_id=runs[0])
            if first and first[0].kind == FAULT_INJECTED:
                err.print(f"ready after {waited:.0f}s", highlight=False)
                return str(runs[0])
            if first:
                detail = first[0].payload.get("detail") or first[0].payload.get("outcome")
                raise LabError(f"the lab's incident (drill {drill_id}) did not start: {detail}; run `lab check` again")
        if waited >= told + PROGRESS_EVERY:
            told += PROGRESS_EVERY
            err.print(f"  still getting ready ({told:.0f}s)", highlight=False)
        time.sleep(0.2)
    raise LabError(f"the lab's incident (drill {drill_id}) did not start within {DRILL_START_TIMEOUT:.0f}s; "
                   "see `lab drill status`")  # fmt: skip


@app.command("check")
@friendly
def check_cmd(as_json: bool = JSON) -> None:
    """Check each step of the current lab: pass or fail, with a hint for each failing step."""
    from lab_runtime.events import LAB_CHECK, LabCheck

    current = settings()
    lab, started_at, results = _results(current)
    announcements = _run_events(current, lab, started_at, results)
    if announcements:  # the lab moved on: judge the steps again, so the table says what is true now
        lab, started_at, results = _results(current)
    passed = sum(r.passed for r in results)
    journal(current).append(LAB_CHECK, LabCheck(lab=lab.id, passed=passed, steps=[asdict(r) for r in results]))
    if as_json:
        print_json({"lab": lab.id, "passed": passed, "total": len(results), "steps": [asdict(r) for r in results]})
    else:
        table = grid("step", "result", "detail", title=f"{lab.id}: {lab.title}")
        for r in results:
            table.add_row(r.title, "[green]pass[/]" if r.passed else "[red]fail[/]", r.detail)
        out.print(table)
        for r in results:
            if r.hint:
                out.print(f"[yellow]hint[/] ({r.title}): {r.hint}")
        out.print(f"{passed}/{len(results)} steps passed")
    for line in announcements:
        (err if as_json else out).print(f"[bold magenta]meanwhile[/]: {line}")
    if passed < len(results):
        raise typer.Exit(1)


@app.command()
@friendly
def hint() -> None:
    """The hint for the first step of the current lab that does not pass yet."""
    _, _, results = _results(settings())
    failing = next((r for r in results if not r.passed), None)
    out.print(f"[yellow]{failing.title}[/]: {failing.hint}" if failing else "every step passes: well done")


@app.command()
@friendly
def solve(lab_id: str = typer.Argument(..., metavar="LAB")) -> None:
    """Run the lab's reference solution against your sandbox (the current lab goes on where it is; another starts)."""
    from lab_runtime.backends.local import settings_env

    current = settings()
    lab, workspace = _start(current, lab_id, resume=True)
    env = {**os.environ, **settings_env(current), "MLFLOW_TRACKING_URI": current.mlflow_url}
    result = subprocess.run([sys.executable, str(lab.directory / lab.solution)], cwd=workspace, env=env, check=False)
    if result.returncode != 0:
        raise LabError(
            f"the reference solution of {lab.id} failed (exit code {result.returncode}); see its output above"
        )
    out.print(f"{lab.id} solved; run [bold]lab check[/] to see every step pass")
