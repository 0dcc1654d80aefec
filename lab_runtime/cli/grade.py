"""Grading commands: `lab grade` (one row per drill run, from the journal)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

import typer
from rich.markup import escape
from rich.table import Table

from lab_runtime.cli.common import JSON, app, friendly, journal, out, plain, print_json, settings


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


@app.command("grade")
@friendly
def grade_cmd(
    learner: str | None = typer.Option(None, "--learner", help="only this learner's runs"),
    as_json: bool = JSON,
) -> None:
    """Every drill run graded from the journal: detected, TTD, diagnosis, wrong declarations, TTR, outcome, score."""
    from grader.grading import KINDS, grade

    current = settings()
    # A blind run still running would give its drill away: it shows once it has ended.
    grades = [g for g in grade(journal(current).events(KINDS), learner) if g.finished or not g.blind]
    if as_json:
        print_json([{**asdict(g), "detected": g.detected} for g in grades])
        return
    if not grades:
        who = f" of {learner}" if learner else ""
        plain(f"no drill run{who} in the journal yet (`lab drill run ID` starts one)")
        return
    table = Table("drill", "learner", "injected (UTC)", "detected", "TTD", "wrong", "TTR", "outcome", "score")
    for g in grades:
        injected = datetime.fromtimestamp(g.injected_at, UTC).strftime("%H:%M:%S") if g.injected_at else "-"
        table.add_row(
            escape(g.drill),
            escape(g.learner or "-"),
            injected,
            "yes" if g.detected else "no",
            _secs(g.ttd),
            str(g.wrong_declarations),
            _secs(g.ttr),
            g.outcome + (f" ({len(g.collateral)} harm)" if g.collateral else ""),
            f"{g.score:.0f}",
        )
    out.print(table)
