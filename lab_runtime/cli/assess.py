"""Skill-check commands: `lab assess baseline|final` (a form of blind drills, run in the background by the
capstone's runner) and `lab assess score` (both forms side by side: score, MTTD, MTTR)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import typer

from lab_runtime.cli.common import JSON, app, backend, friendly, grid, journal, learner_name, out, plain, print_json
from lab_runtime.cli.common import settings as current_settings
from lab_runtime.durations import format_duration
from lab_runtime.events import CAPSTONE_ENDED, CAPSTONE_STARTED, CapstoneStarted

assess_app = typer.Typer(help="The before/after skill check: a baseline before the course, a final after it.")
app.add_typer(assess_app, name="assess")
FORM_FILE = typer.Option(None, "--form-file", help="the skill check's slots (default: grader/assessment.yaml)")
LEARNER = typer.Option(None, "--learner", help="whose skill check (default: LAB_LEARNER)")
TEAM = typer.Option(None, "--team", help="a team's skill check: its name (its members act as themselves)")
MEMBERS = typer.Option(None, "--members", help="with --team: the members, comma-separated")
ROLES = typer.Option(None, "--roles", help="with --team: member=role,... (commander, operator, ...)")
Crew = tuple[str | None, str | None, str | None]  # --team, --members, --roles


def _start(form: str, seed: int | None, form_file: Path | None, learner: str | None, crew: Crew) -> None:
    """Start `form` for the learner (or team): its drills drawn with the pairing seed (the baseline's, for the
    final)."""
    from drills.capstone_runner import start as start_runner
    from drills.spec import catalog
    from drills.teams import team_of
    from grader.assessment import ASSESSMENT, draw, form_seed, load_assessment
    from grader.capstone import latest_capstone, plan

    current = current_settings()
    team = team_of(*crew, learner)
    who = team["name"] if team else learner_name(learner, current)
    assessment = load_assessment(form_file or ASSESSMENT)
    log = journal(current.model_copy(update={"learner": who}))
    events = log.events([CAPSTONE_STARTED, CAPSTONE_ENDED])
    baseline = latest_capstone(events, who, "baseline")
    note = ""
    if form == "final" and seed is None:
        seed = baseline.pairing_seed if baseline is not None else None
        if seed is None:
            note = " No baseline of yours is in the journal: the cohort report will list you without a pair."
    pairing = seed if seed is not None else secrets.randbelow(1_000_000)
    drills = {d.id: d for d in catalog() if current.runtime in d.runtimes}
    pool: dict[tuple[str, str], list[str]] = {}
    for d in drills.values():
        pool.setdefault((d.kind, d.difficulty), []).append(d.id)
    rubric = assessment.rubric(draw(assessment, form, pairing, pool))
    chosen = form_seed(pairing, form)
    schedule = plan(rubric, chosen, {d: drills[d].time_limit for d in rubric.drills}, current.time_scale)
    backend(current).require("mlflow", "model-service")
    last = latest_capstone(events, who, None)
    unfinished = last.capstone_id if last is not None and last.ended is None else None

    def started(capstone_id: str) -> CapstoneStarted:
        decisions = sum(drills[d].decision is not None for d in rubric.drills)
        payload = CapstoneStarted(capstone_id=capstone_id, seed=chosen, count=rubric.count, budget=rubric.budget,
                                  longest=schedule.longest, rubric=rubric.model_dump(by_alias=True),
                                  decisions=decisions, form=form, pairing_seed=pairing)  # fmt: skip
        if team is not None:
            payload["team"] = team
        return payload

    capstone_id = start_runner(current, log, unfinished, started)
    plain(
        f"{form} skill check {capstone_id} started: {rubric.count} blind drills, one after the other, within "
        f"{format_duration(schedule.longest)}. Watch `lab alerts` and `lab monitor status`, `lab declare` what "
        f"you find, fix it. `lab capstone status` shows progress; `lab assess score` the result.{note}"
    )


@assess_app.command("baseline")
@friendly
def baseline(
    seed: int | None = typer.Option(None, help="the pairing seed (default: a random one)"),
    form_file: Path | None = FORM_FILE,
    learner: str | None = LEARNER,
    team: str | None = TEAM,
    members: str | None = MEMBERS,
    roles: str | None = ROLES,
) -> None:
    """Start the baseline: a short blind check before the course, scored like the capstone (a team's with --team)."""
    _start("baseline", seed, form_file, learner, (team, members, roles))


@assess_app.command("final")
@friendly
def final(
    seed: int | None = typer.Option(None, help="the pairing seed (default: the baseline's)"),
    form_file: Path | None = FORM_FILE,
    learner: str | None = LEARNER,
    team: str | None = TEAM,
    members: str | None = MEMBERS,
    roles: str | None = ROLES,
) -> None:
    """Start the final: the same kinds and difficulty as the baseline, other drills (or other seeds)."""
    _start("final", seed, form_file, learner, (team, members, roles))


def _cell(value: Any, fmt: str = "") -> str:
    return "-" if value is None else format(value, fmt)


@assess_app.command("score")
@friendly
def score(learner: str | None = LEARNER, as_json: bool = JSON) -> None:
    """Your baseline and final side by side: state, score, pass, MTTD, MTTR (a drill not detected or not remediated
    counts as its time limit)."""
    from grader.assessment import FORMS, assessments
    from grader.grading import KINDS

    current = current_settings()
    who = learner_name(learner, current)
    found = assessments(journal(current).events([*KINDS, CAPSTONE_STARTED, CAPSTONE_ENDED]), who)
    if as_json:
        print_json(found)
        return
    if not found:
        plain(f"no skill check of {who} yet: `lab assess baseline` starts the baseline")
        return
    table = grid("form", "state", "drills", "score", "pass", "MTTD", "MTTR")
    for form in FORMS:
        f = found.get(form)
        if f is None:
            table.add_row(form, "not taken", *["-"] * 5)
        elif not f["finished"]:
            table.add_row(form, "running", *["-"] * 5)  # its drills and figures would give the answers away
        elif not f["complete"]:
            table.add_row(form, "incomplete", ", ".join(f["drills"]) or "-", *["-"] * 4)  # aborted: not paired
        else:
            secs = ["-" if f[k] is None else format_duration(f[k]) for k in ("mttd", "mttr")]
            table.add_row(
                form, "finished", ", ".join(f["drills"]), _cell(f["score"], "g"), "yes" if f["passed"] else "no", *secs
            )
    out.print(table)
