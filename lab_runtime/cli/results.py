"""Result commands: `lab results export|verify|keygen` (signed bundles), `lab results xapi|gradebook` (evidence for an
LMS) and `lab cohort report` (a cohort's figures)."""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from lab_runtime.cli.common import (
    JSON,
    app,
    err,
    friendly,
    grid,
    journal,
    learner_name,
    out,
    plain,
    print_json,
    settings,
)
from lab_runtime.errors import InvalidBundle, LabError
from lab_runtime.files.atomic import write_atomic

if TYPE_CHECKING:
    from grader.bundles import LoadedCohort
    from grader.cohort import Cohort

results_app = typer.Typer(
    help="Signed result bundles: export, verify; as xAPI statements (to an LRS) and an LMS gradebook.",
    no_args_is_help=True,
)
cohort_app = typer.Typer(help="Cohort reports from result bundles.", no_args_is_help=True)
app.add_typer(results_app, name="results")
app.add_typer(cohort_app, name="cohort")
KEY_FILE = typer.Option(None, "--key-file", help="the instructor key (default: LAB_INSTRUCTOR_KEY[_FILE])")


@results_app.command("keygen")
@friendly
def keygen(out_file: Path = typer.Option(..., "--out", help="where to write the new key (mode 0600)")) -> None:
    """Make a new instructor key: give it to the lab machines (LAB_INSTRUCTOR_KEY_FILE) and keep it to verify."""
    try:  # created with mode 0600 from the start, and never over an existing key
        fd = os.open(out_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise LabError(
            f"{out_file} exists; choose another path (a new key would make old bundles unverifiable)"
        ) from None
    except OSError as exc:
        raise LabError(f"cannot create {out_file}: {exc.strerror}") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    plain(f"instructor key written to {out_file}")


@results_app.command("export")
@friendly
def export(
    out_file: Path = typer.Option(..., "--out", help="the bundle to write (JSON)"),
    learner: str | None = typer.Option(None, "--learner", help="whose results (default: LAB_LEARNER)"),
    key_file: Path | None = KEY_FILE,
) -> None:
    """Your labs, graded drill runs and capstone, with a digest of your journal, signed under the instructor key."""
    from grader.assessment import assessments, team_assessments
    from grader.bundles import instructor_key
    from grader.capstone import capstone_summary
    from grader.results import build_bundle, sign

    current = settings()
    who = learner_name(learner, current)
    key = instructor_key(current, key_file)
    events = journal(current).events()
    forms, teams = assessments(events, who), team_assessments(events, who)
    body = build_bundle(events, who, time.time(), capstone_summary(events, who), forms, teams)
    bundle = sign(body, key)
    if not bundle["labs"] and not bundle["runs"]:
        raise LabError(f"the journal holds no lab or drill run of {who!r}; check --learner (or LAB_LEARNER)")
    _write(out_file, json.dumps(bundle, indent=1))
    plain(
        f"exported {len(bundle['runs'])} drill run(s) and {len(bundle['labs'])} lab(s) of {who} to {out_file} "
        f"(signed, key id {bundle['signature']['key_id']})"
    )


@results_app.command("verify")
@friendly
def verify_cmd(files: list[Path] = typer.Argument(..., help="bundle files"), key_file: Path | None = KEY_FILE) -> None:
    """Check each bundle's signature: any change after export is detected."""
    from grader.bundles import instructor_key
    from grader.results import read_bundle

    key = instructor_key(settings(), key_file)
    bad = 0
    for path in files:
        try:
            bundle = read_bundle(path, key)
        except InvalidBundle as exc:
            err.print(f"[bold red]refused:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            bad += 1
            continue
        plain(f"{path}: signature valid ({bundle.learner}, {len(bundle.runs)} drill run(s))")
    if bad:
        raise typer.Exit(1)


def _write(path: Path, text: str) -> None:
    try:
        write_atomic(path, text.encode())
    except OSError as exc:
        raise LabError(f"cannot write {path}: {exc.strerror}") from None


def _load_cohort(name: str, paths: list[Path], key: bytes, skip_invalid: bool) -> LoadedCohort:
    from grader.bundles import load_cohort

    def skipped(reason: str) -> None:
        err.print(f"[yellow]skipped:[/] {escape(reason)}", highlight=False, soft_wrap=True)

    loaded = load_cohort(name, paths, key, skip_invalid, skipped)
    if loaded.repeated:
        err.print(f"[yellow]note:[/] {len(loaded.repeated)} learner(s) had several bundles; the latest export of "
                  "each counts")  # fmt: skip
    if loaded.older:
        err.print(
            f"[yellow]note:[/] {loaded.older} bundle(s) were exported before TTR was timed from the learner's fix: "
            "their TTR is the verified span's start (time_to_recovery), and they have no TTM; re-export them to "
            "compare like with like"
        )
    return loaded


def _summary(c: Cohort, other: Cohort | None) -> None:
    from grader.report import unpaired

    def cell(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    table = grid("drill", "cohort", "runs", "detected", "right 1st", "remediated", "TTD p50/p90/max",
                  "TTM p50/p90/max", "TTR p50/p90/max", title=escape(f"{c.name}: {c.bundles} learner(s)"))  # fmt: skip
    cohorts = [c] + ([other] if other else [])
    for name in sorted({d.drill for k in cohorts for d in k.drills}):
        for k in cohorts:
            d = k.drill(name)
            if d is None:
                table.add_row(escape(name), escape(k.name), "0", *["-"] * 6)
                continue
            table.add_row(
                escape(name),
                escape(k.name),
                str(d.runs),
                cell(d.detection_rate, ".0%"),
                cell(d.diagnosis_accuracy, ".0%"),
                cell(d.remediation_rate, ".0%"),
                *("/".join(cell(v, ".0f") for v in (s.p50, s.p90, s.max)) for s in (d.ttd, d.ttm, d.ttr)),
            )
    out.print(table)
    board = grid("rank", "learner", "runs", "detected", "remediated", "harm", "score", "capstone", title="leaderboard")
    for s in c.leaderboard[:10]:
        figures = (s.runs, s.detected, s.remediated, s.collateral)
        board.add_row(str(s.rank), escape(s.learner), *map(str, figures), cell(s.mean_score, ".1f"), s.capstone)
    out.print(board)
    for who, ba in (("learner", c.before_after), ("team", c.team_before_after)):
        if ba is None:
            continue
        table = grid("figure", "pairs", "baseline", "final", "change", "interval", "p", "improved",
                     title=f"skill check, {who}s: baseline against final ({len(ba.pairs)} pair(s))")  # fmt: skip
        for ch in ba.changes:
            interval = "-" if ch.interval is None else f"{ch.interval[0]:g} to {ch.interval[1]:g}"
            cells = (ch.before, ch.after, ch.change)
            table.add_row(ch.figure, str(ch.pairs), *(cell(v, "g") for v in cells), interval, cell(ch.p_value, "g"),
                          cell(ch.improved, ".0%"))  # fmt: skip
        out.print(table)
        for names, what in unpaired(ba):
            if names:
                plain(f"{len(names)} {who}(s) with {what}: {', '.join(names)}")


@cohort_app.command("report")
@friendly
def report(
    paths: list[Path] = typer.Argument(..., help="bundle files, or directories of them"),
    html: Path | None = typer.Option(None, "--html", help="write an HTML page with plots"),
    csv_file: Path | None = typer.Option(None, "--csv", help="write one row per learner and drill run"),
    compare: Path | None = typer.Option(None, "--compare", help="another cohort's directory, shown side by side"),
    name: str | None = typer.Option(None, "--name", help="this cohort's name (default: its directory's)"),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="report on the valid bundles, naming the rest"),
    role: str | None = typer.Option(None, "--role", help="every learner's role (labs/skills.yaml), for the skills"),
    roles: Path | None = typer.Option(None, "--roles", help="a YAML file: learner -> role (`*`: everyone else)"),
    milestone: str | None = typer.Option(
        None, "--milestone", help="day-30, day-60 or day-90 (default: each one's next)"
    ),
    key_file: Path | None = KEY_FILE,
    as_json: bool = JSON,
) -> None:
    """Per drill: detection rate, diagnosis accuracy, p50/p90/max TTD, TTM and TTR; a leaderboard; the skills
    matrix against each learner's role; the skill check before and after; the weeks of the course; two cohorts
    compared. Every bundle's signature is checked: an unsigned or changed bundle is refused, naming the file."""
    from grader.bundles import instructor_key
    from grader.cohort import compare as compare_cohorts
    from grader.report import as_dict, to_csv, to_html
    from grader.skills import MILESTONES, cohort_skills, load_matrix, load_roles
    from lab_runtime.cli.skills import references

    if milestone is not None and milestone not in MILESTONES:
        raise LabError(f"--milestone {milestone!r} is not a milestone; use {', '.join(MILESTONES)}")
    key = instructor_key(settings(), key_file)
    refs = references()
    matrix = load_matrix(refs)
    assigned = load_roles(roles, matrix) if roles else {}
    if role is not None:
        matrix.role(role)  # an unknown role is refused before any bundle is read
        assigned.setdefault("*", role)
    mine_name = name or (paths[0].resolve().name if paths[0].is_dir() else "cohort")
    loaded = _load_cohort(mine_name, paths, key, skip_invalid)
    mine = loaded.cohort
    skills = cohort_skills(matrix, loaded.bundles, refs.drills, assigned, milestone)
    other = None
    if compare is not None:
        other_name = compare.resolve().name
        other = _load_cohort(
            other_name if other_name != mine_name else f"{other_name} (2)", [compare], key, skip_invalid
        ).cohort
    comparison = compare_cohorts(mine, other) if other else None
    pages: list[tuple[Path | None, Callable[[], str]]] = [
        (html, lambda: to_html(mine, comparison, other, skills)),
        (csv_file, lambda: to_csv(mine)),
    ]
    for path, render in pages:
        if path is not None:
            _write(path, render())
    if as_json:
        print_json(as_dict(mine, comparison, other, skills))
        return
    _summary(mine, other)
    for path in (html, csv_file):
        if path is not None:
            plain(f"wrote {path}")


@results_app.command("xapi")
@friendly
def xapi_cmd(
    paths: list[Path] = typer.Argument(..., help="bundle files, or directories of them"),
    out_file: Path | None = typer.Option(None, "--out", help="write the statements (a JSON array) here"),
    lrs: str | None = typer.Option(None, "--lrs", help="send them to this LRS's xAPI endpoint (http://host/xAPI/)"),
    lrs_user: str | None = typer.Option(None, "--lrs-user", envvar="LAB_LRS_USER", help="the LRS's basic-auth user"),
    home_page: str | None = typer.Option(
        None, "--home-page", help="the home of learners' accounts and activity IRIs (default https://mlops-lab.invalid)"
    ),
    retries: int | None = typer.Option(None, "--retries", min=0, help="tries after the first (5xx, timeouts); 5"),
    batch: int | None = typer.Option(None, "--batch", min=1, help="statements per POST (50)"),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="export the valid bundles, naming the rest"),
    key_file: Path | None = KEY_FILE,
) -> None:
    """Learning evidence as xAPI statements: a statement per lab, drill run and capstone, with score, success,
    completion, duration and the TTD, TTM, TTR, decision and blast radius. With --lrs they go through a durable
    outbox (.lab/xapi-outbox.db): retried with back-off, none lost or sent twice. The password is LAB_LRS_PASSWORD."""
    from grader.bundles import instructor_key
    from grader.lrs import send, statements_url
    from grader.xapi import HOME_PAGE, statements

    if out_file is None and lrs is None:
        raise LabError("say where the statements go: --out FILE, --lrs URL, or both")
    if lrs is not None:
        statements_url(lrs)  # a malformed URL is refused before any bundle is read
    password = os.environ.get("LAB_LRS_PASSWORD")
    if lrs is not None and (lrs_user is None) != (password is None):
        raise LabError("basic auth needs both --lrs-user (or LAB_LRS_USER) and LAB_LRS_PASSWORD; give both or neither")
    current = settings()
    loaded = _load_cohort("xapi", paths, instructor_key(current, key_file), skip_invalid)
    found = statements(loaded.bundles, (home_page or HOME_PAGE).rstrip("/"))
    if out_file is not None:
        _write(out_file, json.dumps(found, indent=1))
        plain(f"wrote {len(found)} statement(s) of {len(loaded.bundles)} learner(s) to {out_file}")
    if lrs is not None:
        auth = (lrs_user, password) if lrs_user is not None and password is not None else None
        say = partial(err.print, style="yellow", highlight=False, soft_wrap=True)
        given = {k: v for k, v in (("retries", retries), ("batch", batch)) if v is not None}
        done = send(current.xapi_outbox_path, lrs, found, auth, say=say, **given)
        plain(f"sent {done.sent} statement(s) to {lrs} ({done.queued} newly queued, {done.pending} still queued)")
        for line in done.refused[:5]:
            err.print(f"[yellow]refused:[/] {escape(line)}", highlight=False, soft_wrap=True)
        if done.refused:
            more = " (the first 5 above)" if len(done.refused) > 5 else ""
            raise LabError(
                f"the LRS refused {len(done.refused)} statement(s){more}; they stay in "
                f"{current.xapi_outbox_path}, marked refused, and are not sent again; the others were sent"
            )


@results_app.command("gradebook")
@friendly
def gradebook_cmd(
    paths: list[Path] = typer.Argument(..., help="bundle files, or directories of them"),
    out_file: Path = typer.Option(..., "--out", help="the CSV file to write"),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="use the valid bundles, naming the rest"),
    key_file: Path | None = KEY_FILE,
) -> None:
    """A gradebook an LMS imports: a row per learner; labs completed, drill runs, remediations, mean drill score,
    the capstone's score, and per lab the share of its steps passed (0-100)."""
    from grader.bundles import instructor_key
    from grader.gradebook import gradebook_csv
    from lab_runtime.labs.catalog import all_labs

    loaded = _load_cohort("gradebook", paths, instructor_key(settings(), key_file), skip_invalid)
    _write(out_file, gradebook_csv(loaded.bundles, [lab.id for lab in all_labs()]))
    plain(f"wrote the gradebook of {len(loaded.bundles)} learner(s) to {out_file}")
