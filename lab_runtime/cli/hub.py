"""`lab hub up|start|status|passwords|down|k8s-values`: a class on JupyterHub, a server with its own sandbox per
learner (lab_runtime.hub)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from lab_runtime.cli.common import JSON, app, friendly, grid, out, plain, print_json, settings
from lab_runtime.errors import ConfigError, HubError
from lab_runtime.hub.plan import CONSOLE_PREFIX, CPUS, LEARNER_IMAGE, MEMORY, PORT

if TYPE_CHECKING:
    from lab_runtime.hub.control import Hub
    from lab_runtime.hub.status import LearnerState

hub_app = typer.Typer(help="A class on JupyterHub: a JupyterLab and a sandbox per learner.", no_args_is_help=True)
app.add_typer(hub_app, name="hub")


def _hub() -> Hub:
    from lab_runtime.hub.control import Hub

    return Hub(settings().root / "hub")


def _show(states: list[LearnerState], as_json: bool) -> None:
    if as_json:
        print_json([{**asdict(s), "ready": s.ready} for s in states])
        return
    table = grid("learner", "server", "sandbox", "why")
    for s in states:
        why = s.reason or (f"not healthy: {', '.join(s.unhealthy)}" if s.unhealthy else "")
        table.add_row(s.learner, s.server, s.sandbox, why or "-")
    out.print(table)


def _start_all(hub: Hub, wait: float, as_json: bool) -> None:
    hub.start_all()
    states = hub.wait_ready(wait, plain)
    _show(states, as_json)
    if failed := [s.learner for s in states if not s.ready]:
        raise HubError(f"not ready: {', '.join(failed)} (`lab hub status`; a server's log: docker logs lab-hub-NAME)")


@hub_app.command("up")
@friendly
def up(
    learners: int | None = typer.Option(None, "--learners", help="a class of N learners: learner-01 .. learner-N"),
    users: Path | None = typer.Option(None, "--users", help="a file with one learner's name a line"),
    swarm: bool = typer.Option(False, "--swarm", help="spawn on this engine's Docker Swarm (SwarmSpawner)"),
    port: int = typer.Option(PORT, help="the hub's port on this machine's loopback"),
    memory: str = typer.Option(MEMORY, help="each learner server's memory limit"),
    cpus: float = typer.Option(CPUS, help="each learner server's share of the cores"),
    cull_idle: int = typer.Option(3600, "--cull-idle", help="seconds idle before a server is stopped (0: never)"),
    image: str = typer.Option(LEARNER_IMAGE, "--image", help="the image learners' servers run (built: the default)"),
    start: bool = typer.Option(True, "--start/--no-start", help="start every learner's server now"),
    wait: float = typer.Option(600, help="seconds to wait for every server and sandbox to be ready"),
    as_json: bool = JSON,
) -> None:
    """Start the class hub: build its images, start JupyterHub with the console, then every learner's server."""
    from pydantic import ValidationError

    from grader.console.store import SqliteStore
    from lab_runtime.hub.plan import HubPlan, numbered, read_users

    if (learners is None) == (users is None):
        raise ConfigError("give the class as --learners N or as --users FILE (one name a line), not both")
    names = numbered(learners) if learners is not None else read_users(users)  # type: ignore[arg-type]
    try:
        plan = HubPlan(
            engine="swarm" if swarm else "docker",
            learners=names,
            port=port,
            memory=memory,
            cpus=cpus,
            cull_idle=cull_idle,
            learner_image=image,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        said = str(first["msg"]).removeprefix("Value error, ")
        option = {"learner_image": "image"}.get(str(first["loc"][0]), str(first["loc"][0])).replace("_", "-")
        raise ConfigError(said if said.startswith("--") else f"--{option}: {said}") from None
    hub = _hub()
    store = SqliteStore(hub.folder / "console" / "console.db")

    def issue(learner: str | None) -> str:
        return store.issue("learner" if learner else "instructor", learner)[1]

    hub.up(plan, issue, plain)
    url = f"http://127.0.0.1:{plan.port}"
    if start:
        _start_all(hub, wait, as_json)
    plain(
        f"hub on {url} ({len(plan.learners)} learners; passwords: `lab hub passwords`); "
        f"console on {url}{CONSOLE_PREFIX}/ (the instructor signs in to the hub)"
    )


@hub_app.command("start")
@friendly
def start_cmd(
    wait: float = typer.Option(600, help="seconds to wait for every server and sandbox to be ready"),
    as_json: bool = JSON,
) -> None:
    """Start every learner's server now (before a class), and wait for their sandboxes."""
    _start_all(_hub(), wait, as_json)


@hub_app.command("status")
@friendly
def status(as_json: bool = JSON) -> None:
    """Each learner: their server (running, starting, stopped, failed and why) and their sandbox's health."""
    _show(_hub().status(), as_json)


@hub_app.command("passwords")
@friendly
def passwords(as_json: bool = JSON) -> None:
    """Each learner's and the instructor's password to sign in to the hub (hand them out; kept in the hub's
    folder, readable by you only)."""
    hub = _hub()
    plan, found = hub.plan(), hub.secrets().passwords
    rows = {name: found.get(name, "") for name in (plan.instructor, *plan.learners)}
    if as_json:
        print_json(rows)
        return
    table = grid("name", "password")
    for name, password in rows.items():
        table.add_row(name, password)
    out.print(table)


@hub_app.command("down")
@friendly
def down(
    volumes: bool = typer.Option(False, "--volumes", help="also remove every learner's volume: their work and journal"),
) -> None:
    """Remove the hub, every learner's server and the class's network (their volumes stay unless --volumes)."""
    removed = _hub().down(volumes)
    plain(f"removed {len(removed)}: {', '.join(removed)}" if removed else "no class hub was running")


@hub_app.command("k8s-values")
@friendly
def k8s_values(registry: str = typer.Option("registry.example.org/lab", help="where the cluster pulls images")) -> None:
    """Zero to JupyterHub's values (helm upgrade --install ... --values) for the hub's class on Kubernetes."""
    import yaml

    from lab_runtime.hub.plan import k8s_values as values

    print(yaml.safe_dump(values(_hub().plan(), registry), sort_keys=False), end="")
