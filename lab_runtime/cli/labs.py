"""Lab commands: labs, start, check, hint, solve."""

from __future__ import annotations

import shutil
import sys
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
    out,
    plain,
    print_json,
    print_urls,
    settings,
)
from lab_runtime.settings import Settings

if TYPE_CHECKING:
    from lab_runtime.labs.session import Started


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


def _start(current: Settings, lab_id: str, *, resume: bool = False) -> Started:
    """Start the lab, saying so when it first trains and promotes a @champion."""
    from lab_runtime.labs.session import start_lab

    def training() -> None:
        out.print(f"this lab starts from a served model: training {current.model_name!r} and promoting it to "
                  "@champion")  # fmt: skip

    def candidates() -> None:
        out.print("this lab gives you candidate versions to judge: training and registering them")

    started = start_lab(
        current, backend(current), lab_id, resume=resume, on_training=training, on_candidates=candidates
    )
    if started.champion is not None:
        champion = started.champion
        out.print(f"version {champion.version} is @champion (accuracy {champion.metrics['accuracy']:.3f})")
    for name, version in started.candidates.items():
        out.print(f"the {name} is version {version}")
    return started


@app.command()
@friendly
def start(lab_id: str = typer.Argument(..., metavar="LAB")) -> None:
    """Start a lab: copy its starter files to your workspace and print the brief."""
    current = settings()
    started = _start(current, lab_id)
    lab, workspace = started.lab, started.workspace
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


@app.command("check")
@friendly
def check_cmd(as_json: bool = JSON) -> None:
    """Check each step of the current lab: pass or fail, with a hint for each failing step."""
    from grader.grading import grade_run
    from lab_runtime.labs.session import check

    current = settings()
    checked = check(current, backend(current), grade_run, lambda line: err.print(line, highlight=False))
    lab, results, passed = checked.judged.lab, checked.judged.results, checked.judged.passed
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
    for line in checked.announcements:
        (err if as_json else out).print(f"[bold magenta]meanwhile[/]: {line}")
    if passed < len(results):
        raise typer.Exit(1)


@app.command()
@friendly
def hint() -> None:
    """The hint for the first step of the current lab that does not pass yet."""
    from grader.grading import grade_run
    from lab_runtime.labs.session import judge

    current = settings()
    judged = judge(current, backend(current), grade_run, until_failing=True)  # the steps after it are not needed
    failing = next((r for r in judged.results if not r.passed), None)
    out.print(f"[yellow]{failing.title}[/]: {failing.hint}" if failing else "every step passes: well done")


@app.command()
@friendly
def solve(lab_id: str = typer.Argument(..., metavar="LAB")) -> None:
    """Run the lab's reference solution against your sandbox (the current lab goes on where it is; another starts)."""
    from lab_runtime.labs.session import run_solution

    current = settings()
    started = _start(current, lab_id, resume=True)
    run_solution(current, started)
    out.print(f"{started.lab.id} solved; run [bold]lab check[/] to see every step pass")
