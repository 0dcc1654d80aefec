"""Drill commands: `lab drill list|show|validate|run|status|abort|gameday` and `lab reset`.

The drill engine lives in the `drills` package; this module only parses options and prints.
"""

from __future__ import annotations

import secrets
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from lab_runtime.cli.common import (
    JSON,
    app,
    backend,
    err,
    friendly,
    grid,
    learner_name,
    out,
    plain,
    print_json,
    seconds_option,
    settings,
)
from lab_runtime.durations import format_duration
from lab_runtime.errors import InvalidDrill, LabError

if TYPE_CHECKING:
    from drills.engine import RunResult
    from drills.sequence import Reports
    from drills.spec import Drill
    from lab_runtime.settings import Settings

drill_app = typer.Typer(
    help="Failure drills: inject faults into the running sandbox, and measure.", no_args_is_help=True
)
app.add_typer(drill_app, name="drill")


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S") if ts else "-"


@drill_app.command("list")
@friendly
def list_cmd(as_json: bool = JSON) -> None:
    """The drills in the catalog."""
    from drills.spec import catalog

    drills = catalog()
    if as_json:
        print_json(
            [
                {"id": d.id, "title": d.title, "kind": d.kind, "difficulty": d.difficulty, "runtimes": d.runtimes}
                for d in drills
            ]
        )
        return
    table = grid("drill", "kind", "difficulty", "title")
    for d in drills:
        table.add_row(d.id, d.kind, d.difficulty, d.title)
    out.print(table)


@drill_app.command("show")
@friendly
def show(drill_id: str, as_json: bool = JSON) -> None:
    """One drill: brief, diagnosis, faults, steady state, remediation and its reference solution."""
    from drills.spec import find_drill

    drill = find_drill(drill_id)
    if as_json:
        print_json(drill.model_dump(mode="json"))
        return
    plain(f"{drill.id}: {drill.title} ({drill.kind}, {drill.difficulty})")
    plain(f"brief: {drill.brief.strip()}")
    plain(f"diagnosis: {drill.diagnosis}")
    for i, fault in enumerate(drill.faults):
        at = f" at +{format_duration(fault.at)}" if fault.at else ""
        plain(f"fault {i}: {fault.type} {fault.args}{at}")
    plain(f"steady state: {'; '.join(drill.steady_state)}")
    plain(
        f"remediated when: {'; '.join(drill.remediation.conditions)} (held {format_duration(drill.remediation.hold)})"
    )
    plain(f"reference remediation: {' && '.join(drill.remediation.reference)}")
    plain(f"time limit: {format_duration(drill.time_limit)}")


@drill_app.command("validate")
@friendly
def validate(files: list[Path] = typer.Argument(None, help="drill files; default: the whole catalog")) -> None:
    """Validate drill files (every field, every fault's arguments) without running anything."""
    from drills.spec import CATALOG_DIR, load_drill

    paths = files or sorted(CATALOG_DIR.glob("*.yaml"))
    problems = []
    for path in paths:
        try:
            load_drill(path)
            plain(f"ok  {path}")
        except InvalidDrill as exc:
            problems.append(str(exc))
    if problems:
        raise InvalidDrill("\n".join(problems))


def _options(current: Settings, learner: str | None, seed: int | None) -> tuple[str, int]:
    return learner_name(learner, current), seed if seed is not None else secrets.randbelow(1_000_000)


def reports(seed: int, blind: bool) -> Reports:
    """How a drill run in the foreground prints: its id (and seed and drill, unless blind), its steps, its end."""
    from drills.sequence import Reports

    def started(run_id: str, drill: Drill) -> None:
        plain(f"drill run {run_id}" if blind else f"drill run {run_id} (seed {seed}): {drill.id}")

    return Reports(started, lambda result: _report(result, blind), lambda line: plain(f"[{_when(time.time())}] {line}"))


def _report(result: RunResult, blind: bool) -> None:
    if result.revert_failures:  # said even in blind mode: the sandbox is not clean
        err.print(f"could not revert: {'; '.join(result.revert_failures)}; run `lab reset`", markup=False)
    if blind:
        plain(f"drill run {result.run_id} ended")
        return
    line = f"drill run {result.run_id}: {result.outcome}"
    if result.detail:
        line += f" ({result.detail})"
    if result.remediated_at and result.injected_at:
        line += f"; remediated {result.remediated_at - result.injected_at:.1f}s after injection"
    if result.steady_after is not None:
        line += "; steady state holds again" if result.steady_after else f"; not steady: {result.failing_after}"
    plain(line)


@drill_app.command("run")
@friendly
def run(
    drill_id: str = typer.Argument(..., help="a drill id, `random` for one drawn from the seed, or a drill file"),
    learner: str = typer.Option(None, help="whose drill this is (default: LAB_LEARNER)"),
    seed: int = typer.Option(None, help="replay a run exactly (default: a new seed, printed)"),
    after: str = typer.Option(None, help="inject after this delay, e.g. 2m"),
    between: tuple[str, str] | None = typer.Option(None, help="inject after a seeded delay in this range: 1m 5m"),
    blind: bool = typer.Option(False, help="tell nobody which fault is active"),
    kind: str = typer.Option(None, help="with `random`: draw among drills of this kind"),
    detach: bool = typer.Option(False, help="run in the background; `lab drill status` follows it"),
    gate_timeout: str = typer.Option("30s", help="how long to wait for the steady state before refusing"),
    team: str = typer.Option(None, help="a team's run: its name (the members act under their own names)"),
    members: str = typer.Option(None, help="with --team: the members, comma-separated (ada,bob)"),
    roles: str = typer.Option(None, help="with --team: member=role,... (commander, operator, communications, scribe)"),
    run_id: str = typer.Option(None, hidden=True),
) -> None:
    """Run a drill on the running sandbox: gate, inject, probe, detect remediation, revert. With --team, every
    member's declarations and moves count for the run, graded as the team's and per member."""
    from drills.control import busy
    from drills.control import detach as in_the_background
    from drills.engine import RunOptions
    from drills.schedule import draw_delay, eligible, pick
    from drills.sequence import failed, run_one
    from drills.spec import catalog, find_drill, load_drill
    from drills.teams import team_of

    current = settings()
    crew = team_of(team, members, roles, learner)
    who, chosen_seed = _options(current, crew["name"] if crew else learner, seed)
    if kind is not None and drill_id != "random":
        raise LabError("--kind only applies to `lab drill run random`")
    if drill_id == "random":
        drill_id = pick(chosen_seed, eligible(catalog(), kind, current.runtime))
    drill = load_drill(Path(drill_id)) if drill_id.endswith((".yaml", ".yml")) else find_drill(drill_id)
    span = None
    if between is not None:
        span = (seconds_option(between[0], "--between"), seconds_option(between[1], "--between"))
    delay = draw_delay(chosen_seed, drill.id, seconds_option(after, "--after") if after else None, span)
    gate = seconds_option(gate_timeout, "--gate-timeout")
    if detach and (refusal := drill.runtime_refusal(current.runtime) or busy(current)):
        raise LabError(refusal)  # said now, not in a background runner's log
    backend(current).require("model-service")
    if detach:
        target = drill_id if drill_id.endswith((".yaml", ".yml")) else drill.id
        started = in_the_background(current, target, who, chosen_seed, delay, blind, gate, crew)
        plain(
            f"drill run {started.run_id} started in the background (pid {started.pid}); `lab drill status` follows it"
        )
        return
    scaled = delay * current.time_scale
    options = RunOptions(learner=who, seed=chosen_seed, delay=scaled, blind=blind, gate_timeout=gate, team=crew)
    if failed(run_one(current, backend(current), drill, options, reports(chosen_seed, blind), run_id)):
        raise typer.Exit(1)


@drill_app.command("status")
@friendly
def status_cmd(as_json: bool = JSON) -> None:
    """The running drill (or the last one): state, time left, faults and the last probe. Blind runs show less."""
    from drills.control import status

    st = status(settings())
    if st is None:
        raise LabError("no drill has run in this sandbox yet (`lab drill list`, then `lab drill run ID`)")
    run = st.run
    body: dict[str, Any] = {
        "run_id": run.run_id,
        "state": st.state,
        "outcome": run.outcome,
        "learner": run.learner,
        "started": run.started,
        "blind": run.blind,
    }
    if run.deadline and st.state == "running":
        body["time_left"] = max(run.deadline - time.time(), 0.0)
    if st.left:
        body["left_behind"] = st.left
    if not run.blind:
        body |= {"drill": run.drill, "seed": run.seed, "faults": st.faults, "last_probe": st.last_probe}
    if as_json:
        print_json(body)
        return
    name = "(blind)" if run.blind else run.drill
    plain(f"drill run {run.run_id} {name}: {st.state}{f' ({run.outcome})' if run.outcome else ''}")
    if st.left:
        plain(st.left)
    plain(f"for {run.learner!r}, started {_when(run.started)}")
    if "time_left" in body:
        plain(f"time left: {format_duration(body['time_left'])}")
    for fault in body.get("faults", []):
        plain(
            f"fault {fault['fault']}: {fault['type']} {fault['state']}"
            + (f" ({fault['result']})" if fault["result"] else "")
        )
    probe = body.get("last_probe")
    if probe:
        verdict = "remediation holds" if probe["remediated"] and probe["steady"] else "; ".join(probe["failing"])
        plain(f"last probe {_when(probe['at'])}: {verdict}")


@drill_app.command("abort")
@friendly
def abort_cmd() -> None:
    """End the running drill now; every fault it injected is reverted."""
    from drills.control import abort

    current = settings()
    run = abort(current, backend(current), plain)
    plain(f"drill run {run.run_id} aborted; its faults are reverted")


@drill_app.command("gameday")
@friendly
def gameday(
    drills: str = typer.Option(..., help="drill ids in order, comma-separated"),
    between: tuple[str, str] = typer.Option(..., help="a seeded delay in this range before each drill: 2m 6m"),
    seed: int = typer.Option(None, help="replay a game day exactly"),
    learner: str = typer.Option(None, help="whose game day this is"),
    blind: bool = typer.Option(False, help="tell nobody which faults are active"),
    detach: bool = typer.Option(False, help="run in the background; `lab drill status` follows each run"),
) -> None:
    """Several drills in sequence, each after a seeded random delay."""
    from drills.control import busy, in_background
    from drills.engine import RunOptions
    from drills.schedule import gameday as plan_gameday
    from drills.sequence import run_in_sequence
    from drills.spec import find_drill

    current = settings()
    who, chosen_seed = _options(current, learner, seed)
    ids = [d.strip() for d in drills.split(",") if d.strip()]
    if not ids:
        raise LabError("--drills names no drill; give drill ids separated by commas (`lab drill list`)")
    chosen = [find_drill(d) for d in ids]  # every id checked before the first drill starts
    span = (seconds_option(between[0], "--between"), seconds_option(between[1], "--between"))
    plan = plan_gameday(chosen_seed, ids, span)  # a reversed range is refused here, before anything runs
    if refusals := [r for d in chosen if (r := d.runtime_refusal(current.runtime))]:
        raise LabError("; ".join(refusals))
    if detach and (refusal := busy(current)):
        raise LabError(refusal)
    backend(current).require("model-service")
    if detach:
        args = ["drill", "gameday", "--drills", ",".join(ids), "--between", *between, "--seed", str(chosen_seed)]
        pid = in_background(current, [*args, "--learner", who, *(["--blind"] if blind else [])], "gameday.log")
        plain(f"game day of {len(chosen)} drills started in the background (pid {pid}); `lab drill status` follows it")
        return
    plain(f"game day of {len(chosen)} drills" + ("" if blind else f" (seed {chosen_seed})"))
    steps = [(drill, delay * current.time_scale) for drill, (_, delay) in zip(chosen, plan, strict=True)]
    options = RunOptions(learner=who, seed=chosen_seed, blind=blind)
    outcomes = run_in_sequence(current, backend(current), steps, options, reports(chosen_seed, blind))
    plain(f"game day done: {', '.join(outcomes)}")


@app.command()
@friendly
def reset(as_json: bool = JSON) -> None:
    """Put the sandbox back in its steady state: end drills, revert every fault left, start what is down."""
    from drills.control import reset as do_reset

    current = settings()
    report = do_reset(current, backend(current), lambda line: err.print(line, markup=False) if as_json else plain(line))
    if as_json:
        print_json(report)
        return
    plain(
        f"reset: {len(report['runs_ended'])} drill run(s) ended, {report['faults_reverted']} fault(s) reverted, "
        f"started {', '.join(report['services_started']) or 'nothing'}; "
        + ("steady state holds" if report["steady"] else f"not steady yet: {'; '.join(report['not_steady'])}")
    )
    if report["failures"]:
        raise LabError("could not revert: " + "; ".join(report["failures"]))
