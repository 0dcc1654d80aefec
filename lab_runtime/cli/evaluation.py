"""`lab eval run|coverage`: a version scored on the versioned test set and its slices, against the champion."""

from __future__ import annotations

import contextlib
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from lab_runtime.cli.common import JSON, app, friendly, grid, journal, out, plain, print_json, settings

if TYPE_CHECKING:
    from lab_runtime.evaluation.judge import Evaluation

eval_app = typer.Typer(
    help="Evaluation: a version on the test set and its slices, against the champion; an HTML report.",
    no_args_is_help=True,
)
app.add_typer(eval_app, name="eval")


def _num(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None else f"{value:{spec}}"


def _interval(low: float | None, high: float | None) -> str:
    return "-" if low is None or high is None else f"{low:+.4f} to {high:+.4f}"


def _print(e: Evaluation) -> None:
    """The overall figures with their intervals, flagged slices, violations, the verdict and the report."""
    compared = e.against is not None
    versus = f"against version {e.against} ({e.against_how})" if compared else f"with no comparison ({e.against_how})"
    plain(f"version {e.version} {versus}, on {e.test_set} ({e.rows} rows)")
    headers = ["metric", f"version {e.version}"]
    if compared:
        headers += [f"version {e.against}", "difference", "95 % interval"]
    table = grid(*headers)
    for f in e.overall:
        cells = [f.metric, _num(f.candidate)]
        if compared:
            cells += [_num(f.against), _num(f.difference, "+.4f"), _interval(f.low, f.high)]
        table.add_row(*cells)
    out.print(table)
    flagged = [s for s in e.slices if s.flagged]
    if not compared:
        plain(f"slices: {len(e.slices)} scored (accuracy in the report); none flagged without a comparison")
    elif not flagged:
        plain(f"slices: none of {len(e.slices)} flagged")
    else:
        table = grid("flagged slice", "rows", f"version {e.version}", f"version {e.against}", "difference",
                     "95 % interval")  # fmt: skip
        for s in flagged:
            table.add_row(s.name, str(s.rows), _num(s.candidate), _num(s.against), _num(s.difference, "+.4f"),
                          _interval(s.low, s.high))  # fmt: skip
        out.print(table)
    for v in e.violations:
        rules = ", ".join(f"{rule} {n}" for rule, n in v.by_rule.items() if n)
        plain(f"policy violations, version {v.version}: {v.rows}" + (f" ({rules})" if rules else ""))
    if e.recorded:
        plain(f"review queue: {e.queue} rows (`lab review next`)")
        plain(f"verdict: {e.verdict} (on the version: the canary's gate reads it)")
    else:
        plain(f"verdict: {e.verdict}, not recorded: only a full run (against @champion, on credit-v1, every slice) "
              "is the version's evaluation")  # fmt: skip
    for reason in e.reasons:
        plain(f"  - {reason}")
    plain(f"report: {e.report}")


@eval_app.command("run")
@friendly
def run_cmd(
    version: str = typer.Argument(..., metavar="VERSION"),
    against: str = typer.Option(
        "champion", "--against", metavar="champion|VERSION|none", help="the version to compare with on the same rows"
    ),
    test_set: Path | None = typer.Option(
        None, "--test-set", metavar="FILE", help="a CSV of labelled rows (default: credit-v1, 2,000 seeded rows)"
    ),
    slices: list[str] = typer.Option(
        [], "--slice", metavar="NAME", help="a slice (purpose=car) or a feature's slices (income); repeat; default: all"
    ),
    as_json: bool = JSON,
) -> None:
    """Evaluate VERSION on the test set and its slices against @champion: figures with 95 % intervals, slice
    regressions, policy violations, a go/no-go verdict on the version, an HTML report and a review queue."""
    from lab_runtime.evaluation.harness import run_evaluation

    current = settings()

    def scoring(candidate: str, other: str | None) -> None:
        if not as_json:
            which = f"versions {candidate} and {other}" if other else f"version {candidate}"
            plain(f"scoring {which} on the test set (MLflow's evaluation too: a few seconds) ...")

    with contextlib.redirect_stdout(sys.stderr):  # MLflow prints the run's URL: keep stdout for our output
        done = run_evaluation(
            current, version, against, journal=journal(current), test_set=test_set, slices=slices, on_scoring=scoring
        )
    if as_json:
        print_json(done.model_dump())
    else:
        _print(done)


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


@eval_app.command("coverage")
@friendly
def coverage_cmd(as_json: bool = JSON) -> None:
    """Of the versions promoted to @champion, the share that had an evaluation before their promotion."""
    from lab_runtime.evaluation.harness import evaluation_coverage

    current = settings()
    found = evaluation_coverage(current, journal(current))
    rows: list[dict[str, Any]] = [
        {
            "version": p.version,
            "promoted_at": p.at,
            "via": p.via,
            "covered": p.covered,
            "evaluated_at": p.evaluated.at if p.evaluated else None,
            "verdict": p.evaluated.verdict if p.evaluated else None,
        }
        for p in found.promoted
    ]
    if as_json:
        print_json({"promoted": len(rows), "covered": found.covered, "share": found.share, "versions": rows})
        return
    if not rows:
        plain(f"no version of {current.model_name!r} promoted to @champion yet: no coverage to give")
        return
    table = grid("version", "promoted", "how", "evaluated before", "verdict", title="promotions to @champion")
    for r in rows:
        table.add_row(str(r["version"]), _when(r["promoted_at"]), str(r["via"]), _when(r["evaluated_at"]),
                      str(r["verdict"] or "-"))  # fmt: skip
    out.print(table)
    plain(
        f"evaluation coverage: {found.covered} of {len(rows)} version(s) promoted to @champion "
        f"({found.share:.0%}) were evaluated first"
    )
