"""What every `lab` command shares: the Typer app, consoles, error handling, settings and the backend."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Column, Table
from rich.text import Text

from lab_runtime import clock
from lab_runtime.errors import LabError
from lab_runtime.settings import HOME_VARIABLE, Settings, home, learner_refusal, load_settings

if TYPE_CHECKING:
    from lab_runtime.backends.base import Backend
    from lab_runtime.journal import Journal

app = typer.Typer(help="Model-ops training lab: sandbox, labs and drills.", no_args_is_help=True, add_completion=False)


def _console(stderr: bool = False) -> Console:
    """A console; when its output is a pipe or a file (no terminal, no COLUMNS), 200 columns instead of Rich's 80,
    so tables and long lines reach `grep`, `less` and log files whole."""
    console = Console(stderr=stderr)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPE_WIDTH
    return console


PIPE_WIDTH = 200
out = _console()
err = _console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])
JSON = typer.Option(False, "--json", help="print JSON instead of a table")
# When this process started, set by `main()`: a command run in its own process dates the learner's move from it.
process_began: float | None = None
_announced = False  # whether this command said which sandbox it uses


def friendly(fn: F) -> F:
    """Mark the command's start (the learner's move is dated from it); turn a LabError into one clear line and
    exit code 1, never a traceback."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        global _announced
        _announced = False
        clock.start_command(process_began)  # in-process callers (tests' CliRunner): from now
        try:
            return fn(*args, **kwargs)
        except LabError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        finally:
            clock.end_command()

    return wrapper  # type: ignore[return-value]


def settings(runtime: str | None = None) -> Settings:
    """The sandbox's settings; from a folder other than its home, the command first says which sandbox it uses."""
    global _announced
    current = load_settings()
    if not _announced:
        _announced = True
        found, here = home(), Path.cwd().resolve()
        if found != here:
            how = f"{HOME_VARIABLE}" if os.environ.get(HOME_VARIABLE) else "the project folder above"
            err.print(f"using the sandbox in {found} ({how})", style="dim", highlight=False, soft_wrap=True)
    if runtime:
        current = current.model_copy(update={"runtime": runtime})
    return current


def backend(current: Settings) -> Backend:
    from lab_runtime.backends import get_backend

    return get_backend(current)


def journal(current: Settings, source: str = "cli", *, dated: bool = True) -> Journal:
    """The journal, written as the learner: events from the CLI are the learner's moves, each dated from when the
    command started. A long-running command that acts later on its own (the canary analysis) is not `dated`."""
    from lab_runtime.journal import learner_journal

    return learner_journal(current, source, dated=dated)


def urls(current: Settings, profiles: Sequence[str] = ()) -> dict[str, str]:
    found = {
        "MLflow UI": current.mlflow_url,
        "Model service API docs": f"{current.service_url}/docs",
        "Service metrics": f"{current.service_url}/metrics",
        "Monitor status": f"{current.monitor_url}/status",
        "Drift report": f"{current.reports_dir / 'latest.html'} (rendered by `lab monitor report`)",
    }
    if "observability" in profiles:
        found["Prometheus"] = f"http://127.0.0.1:{current.prometheus_port}"
        found["Grafana (dashboards)"] = f"http://127.0.0.1:{current.grafana_port}/d/lab-sandbox"
    return found


class Grid(Table):
    """A table whose headers are never cut short ("varia..."): cells wrap in a narrow terminal, and where even
    that cannot fit, each row is printed as `header: value` lines instead."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self.__rich_measure__(console, options).minimum <= options.max_width:
            yield from super().__rich_console__(console, options)
            return
        if self.title:
            yield Text(str(self.title), style="bold")
        for row in range(self.row_count):
            record = Table.grid(padding=(0, 1))
            for column in self.columns:
                record.add_row(Text(f"{column.header}:", style="dim"), list(column.cells)[row])
            yield record
            yield Text("")


def grid(*headers: str, **options: Any) -> Grid:
    """A `Grid` with these column headers (`options` as for a Rich Table)."""
    columns = [Column(h, min_width=max((len(w) for w in h.split()), default=1), overflow="fold") for h in headers]
    return Grid(*columns, **options)


def print_urls(current: Settings, profiles: Sequence[str] = ()) -> None:
    """The sandbox's addresses, one per line, as the brief, `lab up` and `lab status` show them."""
    for name, url in urls(current, profiles).items():
        out.print(f"  {name:<24} {url}", highlight=False, soft_wrap=True)


def plain(text: str) -> None:
    """Print `text` as it is: no Rich markup or highlighting (it may hold brackets, paths, user input)."""
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def seconds_option(value: str, option: str) -> float:
    """A duration option (`30s`, `2m`) in seconds; a bad one is a LabError naming the option."""
    from lab_runtime.durations import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise LabError(f"{option}: {exc}") from None


def learner_name(value: str | None, current: Settings) -> str:
    """The learner a `--learner` option names, else the sandbox's; a name that cannot be one is refused in a line."""
    if value is None:
        return current.learner
    if refusal := learner_refusal(value, "--learner"):
        raise LabError(refusal)
    return value


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))
