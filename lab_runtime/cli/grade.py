"""Grading commands: `lab grade` (one row per drill run, from the journal)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

import typer
from rich.markup import escape

from lab_runtime.cli.common import JSON, app, friendly, grid, journal, out, plain, print_json, settings


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


@app.command("grade")
@friendly
def grade_cmd(
    learner: str | None = typer.Option(None, "--learner", help="only this learner's runs"),
    as_json: bool = JSON,
) -> None:
    """Every drill run graded from the journal; each move of the learner counts from when its command started.

    ttd: injection to the start of the first right `lab declare` (wrong ones before it are counted).

    ttm: injection to the start of the move after which the impact (errors, latency) stopped and stayed away.

    ttr: injection to the start of the move after which the remediation held through the drill's hold.

    time_to_recovery: injection to the start of the runner's verified span (it confirms ttr, it does not date it).

    decision: the first lever pulled (rollback, disable, throttle) and, for an output drill, its verdict.

    blast_radius: the decisions served against the output policy from the injection until the fix credited.
    """
    from grader.grading import KINDS, decision_label, grade

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
    table = grid(
        "drill",
        "learner",
        "injected (UTC)",
        "detected",
        "TTD",
        "wrong",
        "TTM",
        "TTR",
        "decision",
        "unsafe",
        "outcome",
        "score",
    )
    for g in grades:
        injected = datetime.fromtimestamp(g.injected_at, UTC).strftime("%H:%M:%S") if g.injected_at else "-"
        table.add_row(
            escape(g.drill),
            escape(g.learner or "-"),
            injected,
            "yes" if g.detected else "no",
            _secs(g.ttd),
            str(g.wrong_declarations),
            _secs(g.ttm),
            _secs(g.ttr),
            "-" if g.decision is None else decision_label(g.decision, g.verdict),
            "-" if g.blast_radius is None else str(g.blast_radius),
            g.outcome + (f" ({len(g.collateral)} harm)" if g.collateral else ""),
            f"{g.score:.0f}",
        )
    out.print(table)
