"""Result commands: `lab results export|verify|keygen` (signed bundles) and `lab cohort report` (a cohort's figures)."""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
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
from lab_runtime.errors import ConfigError, InvalidBundle, LabError
from lab_runtime.files.atomic import write_atomic
from lab_runtime.settings import Settings

if TYPE_CHECKING:
    from grader.cohort import Cohort
    from grader.results import Bundle

results_app = typer.Typer(help="Signed result bundles: export, verify.", no_args_is_help=True)
cohort_app = typer.Typer(help="Cohort reports from result bundles.", no_args_is_help=True)
app.add_typer(results_app, name="results")
app.add_typer(cohort_app, name="cohort")
KEY_FILE = typer.Option(None, "--key-file", help="the instructor key (default: LAB_INSTRUCTOR_KEY[_FILE])")
MIN_KEY = 16


def instructor_key(current: Settings, key_file: Path | None) -> bytes:
    """The signing key: `--key-file`, else LAB_INSTRUCTOR_KEY, else LAB_INSTRUCTOR_KEY_FILE."""
    path = key_file or current.instructor_key_file
    if key_file is None and current.instructor_key:
        text = current.instructor_key
    elif path is not None:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read the instructor key file {path}: {exc.strerror}") from None
    else:
        raise ConfigError(
            "no instructor key: set LAB_INSTRUCTOR_KEY_FILE to the key's file (or LAB_INSTRUCTOR_KEY to the key), "
            "or pass --key-file FILE (an instructor makes one with `lab results keygen --out FILE`)"
        )
    key = text.strip().encode()
    if len(key) < MIN_KEY:
        raise ConfigError(
            f"the instructor key has {len(key)} characters; use at least {MIN_KEY} (`lab results keygen`)"
        )
    return key


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
    from grader.capstone import capstone_summary
    from grader.results import build_bundle, sign

    current = settings()
    who = learner_name(learner, current)
    key = instructor_key(current, key_file)
    events = journal(current).events()
    bundle = sign(build_bundle(events, who, time.time(), capstone_summary(events, who)), key)
    if not bundle["labs"] and not bundle["runs"]:
        raise LabError(f"the journal holds no lab or drill run of {who!r}; check --learner (or LAB_LEARNER)")
    try:
        write_atomic(out_file, json.dumps(bundle, indent=1).encode())
    except OSError as exc:
        raise LabError(f"cannot write {out_file}: {exc.strerror}") from None
    plain(
        f"exported {len(bundle['runs'])} drill run(s) and {len(bundle['labs'])} lab(s) of {who} to {out_file} "
        f"(signed, key id {bundle['signature']['key_id']})"
    )


@results_app.command("verify")
@friendly
def verify_cmd(files: list[Path] = typer.Argument(..., help="bundle files"), key_file: Path | None = KEY_FILE) -> None:
    """Check each bundle's signature: any change after export is detected."""
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


def _bundle_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(path.rglob("*.json"))
        elif path.is_file():
            files.append(path)
        else:
            raise LabError(f"{path} is neither a bundle file nor a directory of them")
    if not files:
        raise LabError(f"no bundle (*.json) in {', '.join(map(str, paths))}; export some with `lab results export`")
    return files


def _load_cohort(name: str, paths: list[Path], key: bytes, skip_invalid: bool) -> Cohort:
    from grader.cohort import cohort, latest_per_learner
    from grader.results import FORMAT, read_bundle

    bundles: list[Bundle] = []
    refused: list[str] = []
    for path in _bundle_files(paths):
        try:
            bundles.append(read_bundle(path, key))
        except InvalidBundle as exc:
            refused.append(str(exc))
    if refused and not skip_invalid:
        more = f" (and {len(refused) - 5} more)" if len(refused) > 5 else ""
        raise InvalidBundle(
            f"refused {len(refused)} bundle(s): {'; '.join(refused[:5])}{more}. Re-export them, or pass "
            "--skip-invalid to report on the rest"
        )
    for reason in refused:
        err.print(f"[yellow]skipped:[/] {escape(reason)}", highlight=False, soft_wrap=True)
    if not bundles:
        raise LabError(f"no valid bundle in {', '.join(map(str, paths))}")
    latest, repeated = latest_per_learner(bundles)
    if repeated:
        err.print(f"[yellow]note:[/] {len(repeated)} learner(s) had several bundles; the latest export of each counts")
    older = sum(b.format != FORMAT for b in latest)
    if older:
        err.print(
            f"[yellow]note:[/] {older} bundle(s) were exported before TTR was timed from the learner's fix: their TTR "
            "is the verified span's start (time_to_recovery), and they have no TTM; re-export them to compare like "
            "with like"
        )
    return cohort(name, latest)


def _summary(c: Cohort, other: Cohort | None) -> None:
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


@cohort_app.command("report")
@friendly
def report(
    paths: list[Path] = typer.Argument(..., help="bundle files, or directories of them"),
    html: Path | None = typer.Option(None, "--html", help="write an HTML page with plots"),
    csv_file: Path | None = typer.Option(None, "--csv", help="write one row per learner and drill run"),
    compare: Path | None = typer.Option(None, "--compare", help="another cohort's directory, shown side by side"),
    name: str | None = typer.Option(None, "--name", help="this cohort's name (default: its directory's)"),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="report on the valid bundles, naming the rest"),
    key_file: Path | None = KEY_FILE,
    as_json: bool = JSON,
) -> None:
    """Per drill: detection rate, diagnosis accuracy, p50/p90/max TTD, TTM and TTR; a leaderboard; two cohorts
    compared. Every bundle's signature is checked: an unsigned or changed bundle is refused, naming the file."""
    from grader.cohort import compare as compare_cohorts
    from grader.report import as_dict, to_csv, to_html

    key = instructor_key(settings(), key_file)
    mine_name = name or (paths[0].resolve().name if paths[0].is_dir() else "cohort")
    mine = _load_cohort(mine_name, paths, key, skip_invalid)
    other = None
    if compare is not None:
        other_name = compare.resolve().name
        other = _load_cohort(
            other_name if other_name != mine_name else f"{other_name} (2)", [compare], key, skip_invalid
        )
    comparison = compare_cohorts(mine, other) if other else None
    pages: list[tuple[Path | None, Callable[[], str]]] = [
        (html, lambda: to_html(mine, comparison, other)),
        (csv_file, lambda: to_csv(mine)),
    ]
    for path, render in pages:
        if path is not None:
            try:
                write_atomic(path, render().encode())
            except OSError as exc:
                raise LabError(f"cannot write {path}: {exc.strerror}") from None
    if as_json:
        print_json(as_dict(mine, comparison, other))
        return
    _summary(mine, other)
    for path in (html, csv_file):
        if path is not None:
            plain(f"wrote {path}")
