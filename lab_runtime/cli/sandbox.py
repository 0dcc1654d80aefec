"""Sandbox commands: up, down, status, logs, restart."""

from __future__ import annotations

from dataclasses import asdict
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
from lab_runtime.errors import ConfigError
from lab_runtime.events import LEARNER_ACTION, RESTART, UP, LearnerAction
from lab_runtime.settings import Settings, recorded_runtime

if TYPE_CHECKING:
    from lab_runtime.backends.base import Backend


@app.command()
@friendly
def up(
    runtime: str = typer.Option(None, help="local (default) or compose; later commands use the same one"),
    profile: list[str] = typer.Option([], help="compose only: observability, load or scale (repeatable)"),
) -> None:
    """Start the sandbox and wait until every service is healthy."""
    current = settings(runtime)
    if current.runtime not in ("local", "compose"):
        raise ConfigError(f"unknown runtime {current.runtime!r}; use --runtime local or --runtime compose")
    running = recorded_runtime(current)
    if running and running != current.runtime:
        raise ConfigError(f"the sandbox is running on the {running} runtime; stop it first with `lab down`")
    chosen = backend(current)
    started = chosen.up(profile)  # the compose backend records itself once its engine answers
    if started:
        journal(current).append(LEARNER_ACTION, LearnerAction(action=UP, started=started))
    out.print(f"sandbox up ({', '.join(started) or 'already running'})")
    print_urls(current, getattr(chosen, "profiles", list)())


@app.command()
@friendly
def down(
    force: bool = typer.Option(False, help="also clear pid files that cannot be read"),
    volumes: bool = typer.Option(False, help="compose only: also remove the named volumes (MLflow's store, ...)"),
) -> None:
    """Stop every sandbox service; no process is left behind. A running drill is aborted (and reverted) first."""
    current = settings()
    runtime = backend(current)
    _end_drill(current, runtime)
    if force:
        for name in runtime.clear_unreadable():
            out.print(f"cleared {name}")
        runtime = backend(settings())  # it may have forgotten a compose sandbox whose engine is gone
    stopped = runtime.down(volumes)  # the compose backend forgets its record
    out.print(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")


def _end_drill(current: Settings, runtime: Backend) -> None:
    """Abort the drill a live runner is running, so its faults are reverted while the services are still up."""
    if not current.drills_db_path.exists():  # no drill ever ran: no need to import the drill engine
        return
    from drills.control import end_running

    ended = end_running(current, runtime, out.print)
    if ended is None:
        return
    if ended.failure is not None:  # stopping the sandbox must not depend on the drill: `lab reset` reverts it later
        err.print(
            f"[yellow]warning:[/] the running drill could not be ended cleanly ({ended.failure}); "
            "`lab reset` after `lab up`"
        )
        return
    out.print(f"drill run {ended.run.run_id} aborted and reverted")


@app.command()
@friendly
def status(as_json: bool = JSON) -> None:
    """Each service with its pid, port, health and uptime."""
    current = settings()
    chosen = backend(current)
    rows = chosen.status()
    if as_json:
        print_json([asdict(r) for r in rows])
        return
    table = grid("service", "state", "pid", "port", "uptime", "log")
    for r in rows:
        state = "[green]healthy[/]" if r.healthy else ("[yellow]unhealthy[/]" if r.running else "[red]stopped[/]")
        uptime = f"{r.uptime:.0f}s" if r.uptime is not None else "-"
        table.add_row(r.name, state, str(r.pid or "-"), str(r.port or "-"), uptime, r.log)
    out.print(table)
    if any(r.healthy and r.name == "model-service" for r in rows):
        plain(f"model-service serves: {_served(current)}")
    if any(r.running for r in rows):
        print_urls(current, getattr(chosen, "profiles", list)())


def _served(current: Settings) -> str:
    """What the service answers with now, from its /model (the aliases it follows may not be loaded yet)."""
    from lab_runtime.service.client import served_model

    body = served_model(current)
    if body is None:
        return "(no answer from its /model)"
    if body.get("champion") is None:
        return "no model yet (see GET /model)"
    said = f"@champion version {body['champion']}"
    if body.get("challenger"):
        said += f", @challenger version {body['challenger']} at {body.get('canary_weight', 0):.0%}"
    waiting = {
        a: v for a, v in body.get("registry_aliases", {}).items() if v not in (body["champion"], body.get("challenger"))
    }
    if waiting:
        said += "; loading " + ", ".join(f"@{a} version {v}" for a, v in sorted(waiting.items()))
    return said


@app.command()
@friendly
def logs(service: str, lines: int = typer.Option(40, min=1, help="how many lines from the end")) -> None:
    """Print the end of a service's log, or say that it is empty."""
    runtime = backend(settings())
    text = runtime.logs(service, lines)
    if text:
        typer.echo(text, nl=False)
        return
    where = runtime.log_location(service)
    err.print(
        f"{service}'s log is empty ({where}): it has logged nothing since it started", highlight=False, soft_wrap=True
    )


@app.command()
@friendly
def restart(service: str) -> None:
    """Stop one service whatever its state (hung, paused, crashed) and start it again."""
    current = settings()
    backend(current).restart(service)
    # Timed from when the command began (the journal's stamp): its effect may show before it returns.
    journal(current).append(LEARNER_ACTION, LearnerAction(action=RESTART, service=service))
    out.print(f"{service} restarted and healthy")
