"""The `lab` command: the one place that wires runtime, labs, drills and grader together.

Every `LabError` becomes one red line and exit code 1; commands that print a table also take `--json`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from lab_runtime.errors import LabError
from lab_runtime.settings import Settings, load_settings

if TYPE_CHECKING:
    from lab_runtime.backends.base import Backend

app = typer.Typer(help="Model-ops training lab: sandbox, labs and drills.", no_args_is_help=True, add_completion=False)
out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])
JSON = typer.Option(False, "--json", help="print JSON instead of a table")


def friendly(fn: F) -> F:
    """Turn a LabError into one clear line and exit code 1, never a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LabError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _settings(runtime: str | None = None) -> Settings:
    settings = load_settings()
    if runtime:
        settings = settings.model_copy(update={"runtime": runtime})
    return settings


def _backend(settings: Settings) -> Backend:
    from lab_runtime.backends import get_backend

    return get_backend(settings)


def _journal(settings: Settings):  # type: ignore[no-untyped-def]
    from lab_runtime.journal import Journal

    settings.ensure_dirs()
    return Journal(settings.journal_path, source="cli", learner=settings.learner)


def _urls(settings: Settings) -> dict[str, str]:
    return {
        "MLflow UI": settings.mlflow_url,
        "Model service API docs": f"{settings.service_url}/docs",
        "Service metrics": f"{settings.service_url}/metrics",
    }


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@app.command()
@friendly
def up(runtime: str = typer.Option(None, help="local (default) or compose")) -> None:
    """Start the sandbox and wait until every service is healthy."""
    settings = _settings(runtime)
    started = _backend(settings).up()
    out.print(f"sandbox up ({', '.join(started) or 'already running'})")
    for name, url in _urls(settings).items():
        out.print(f"  {name:<24} {url}")


@app.command()
@friendly
def down(force: bool = typer.Option(False, help="also clear pid files that cannot be read")) -> None:
    """Stop every sandbox service; no process is left behind."""
    settings = _settings()
    backend = _backend(settings)
    if force:
        for name in backend.clear_unreadable():
            out.print(f"cleared the unreadable pid file of {name}")
    stopped = backend.down()
    out.print(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")


@app.command()
@friendly
def status(as_json: bool = JSON) -> None:
    """Each service with its pid, port, health and uptime."""
    rows = _backend(_settings()).status()
    if as_json:
        _print_json([asdict(r) for r in rows])
        return
    table = Table("service", "state", "pid", "port", "uptime", "log")
    for r in rows:
        state = "[green]healthy[/]" if r.healthy else ("[yellow]unhealthy[/]" if r.running else "[red]stopped[/]")
        uptime = f"{r.uptime:.0f}s" if r.uptime is not None else "-"
        table.add_row(r.name, state, str(r.pid or "-"), str(r.port or "-"), uptime, r.log)
    out.print(table)


@app.command()
@friendly
def logs(service: str, lines: int = typer.Option(40, help="how many lines from the end")) -> None:
    """Print the end of a service's log."""
    path = _backend(_settings()).logs(service)
    out.print(f"[dim]{path}[/]")
    if os.path.exists(path):
        with open(path, errors="replace") as fh:
            typer.echo("".join(fh.readlines()[-lines:]), nl=False)


@app.command("labs")
@friendly
def list_labs(as_json: bool = JSON) -> None:
    """The labs there are."""
    from lab_runtime.labs import all_labs

    labs = all_labs()
    if as_json:
        _print_json([{"id": lab.id, "title": lab.title, "steps": len(lab.steps)} for lab in labs])
        return
    table = Table("lab", "title", "steps")
    for lab in labs:
        table.add_row(lab.id, lab.title, str(len(lab.steps)))
    out.print(table)


def _current_lab(settings: Settings):  # type: ignore[no-untyped-def]
    from lab_runtime.journal import LAB_STARTED
    from lab_runtime.labs import find_lab

    event = _journal(settings).last(LAB_STARTED) if settings.journal_path.exists() else None
    if event is None:
        raise LabError("no lab started yet; run `lab start lab-01` first (see `lab labs`)")
    return find_lab(event.payload["lab"]), event.ts


def _start(settings: Settings, lab_id: str):  # type: ignore[no-untyped-def]
    from lab_runtime.journal import LAB_STARTED
    from lab_runtime.labs import find_lab

    lab = find_lab(lab_id)
    _backend(settings).require("mlflow", "model-service")
    workspace = settings.workspace_dir / lab.id
    workspace.mkdir(parents=True, exist_ok=True)
    for name in lab.starter:
        if not (workspace / name).exists():  # never overwrite the learner's edits
            shutil.copy2(lab.directory / name, workspace / name)
    _journal(settings).append(LAB_STARTED, {"lab": lab.id, "workspace": str(workspace)})
    return lab, workspace


@app.command()
@friendly
def start(lab_id: str = typer.Argument(..., metavar="LAB")) -> None:
    """Start a lab: copy its starter files to your workspace and print the brief."""
    settings = _settings()
    lab, workspace = _start(settings, lab_id)
    out.rule(f"[bold]{lab.id}: {lab.title}")
    out.print(lab.summary)
    out.print("\n[bold]You will learn to[/]")
    for objective in lab.objectives:
        out.print(f"  - {objective}")
    out.print(f"\n{lab.brief.strip()}\n")
    out.print("[bold]Your sandbox[/]")
    for name, url in _urls(settings).items():
        out.print(f"  {name:<24} {url}")
    out.print(f"\n[bold]Your files[/] are in {workspace}: {', '.join(lab.starter) or '(none)'}")
    out.print(f"Lab guide: {lab.directory / 'README.md'}")
    out.print("\nNext: work through the TODOs, then run [bold]lab check[/] (and [bold]lab hint[/] when stuck).")
    out.print("Stop the sandbox with [bold]lab down[/] (or make down).")


def _results(settings: Settings):  # type: ignore[no-untyped-def]
    from lab_runtime.checks import CheckContext
    from lab_runtime.labs import check_lab
    from lab_runtime.registry import Registry

    lab, started_at = _current_lab(settings)
    _backend(settings).require("mlflow", "model-service")
    registry = Registry(settings.mlflow_url)
    try:
        return lab, check_lab(lab, CheckContext(settings, registry, started_at))
    finally:
        registry.close()


@app.command("check")
@friendly
def check_cmd(as_json: bool = JSON) -> None:
    """Check each step of the current lab: pass or fail, with a hint for each failing step."""
    from lab_runtime.journal import LAB_CHECK

    settings = _settings()
    lab, results = _results(settings)
    passed = sum(r.passed for r in results)
    _journal(settings).append(LAB_CHECK, {"lab": lab.id, "passed": passed, "steps": [asdict(r) for r in results]})
    if as_json:
        _print_json({"lab": lab.id, "passed": passed, "total": len(results), "steps": [asdict(r) for r in results]})
    else:
        table = Table("step", "result", "detail", title=f"{lab.id}: {lab.title}")
        for r in results:
            table.add_row(r.title, "[green]pass[/]" if r.passed else "[red]fail[/]", r.detail)
        out.print(table)
        for r in results:
            if r.hint:
                out.print(f"[yellow]hint[/] ({r.title}): {r.hint}")
        out.print(f"{passed}/{len(results)} steps passed")
    if passed < len(results):
        raise typer.Exit(1)


@app.command()
@friendly
def hint() -> None:
    """The hint for the first step of the current lab that does not pass yet."""
    _, results = _results(_settings())
    failing = next((r for r in results if not r.passed), None)
    out.print(f"[yellow]{failing.title}[/]: {failing.hint}" if failing else "every step passes: well done")


@app.command()
@friendly
def solve(lab_id: str = typer.Argument(..., metavar="LAB")) -> None:
    """Run the lab's reference solution against your sandbox."""
    from lab_runtime.backends.local import settings_env

    settings = _settings()
    lab, workspace = _start(settings, lab_id)
    env = {**os.environ, **settings_env(settings), "MLFLOW_TRACKING_URI": settings.mlflow_url}
    result = subprocess.run([sys.executable, str(lab.directory / lab.solution)], cwd=workspace, env=env, check=False)
    if result.returncode != 0:
        raise LabError(
            f"the reference solution of {lab.id} failed (exit code {result.returncode}); see its output above"
        )
    out.print(f"{lab.id} solved; run [bold]lab check[/] to see every step pass")


def main() -> None:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    app()


__all__ = ["app", "main"]


if __name__ == "__main__":
    main()
