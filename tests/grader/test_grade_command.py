"""`lab grade` reads the sandbox's real journal (SQLite) and prints one row per drill run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lab_runtime.cli import app
from lab_runtime.events import (
    DRILL_ENDED,
    DRILL_REMEDIATED,
    DRILL_STARTED,
    FAULT_INJECTED,
    LEARNER_ACTION,
    LEARNER_DECLARED,
)
from lab_runtime.journal import Journal

T0 = 1_800_000_000.0


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def write_run(
    state: Path, learner: str, run: str, declare_after: float, fix_after: float, drill_id: str = "drift-x", **extra: Any
) -> None:
    drill = Journal(state / "journal.db", source="drill", learner=learner)
    cli = Journal(state / "journal.db", source="cli", learner=learner)  # each command written 0.5 s after it began
    started = {"drill": drill_id, "diagnosis": "data-drift", "time_limit": 600.0, "hold": 30.0, **extra}
    drill.append(DRILL_STARTED, started, run_id=run, ts=T0)
    drill.append(FAULT_INJECTED, {"fault": 0, "type": "covariate_drift", "details": {}}, run_id=run, ts=T0 + 1)
    for kind, payload, after in (
        (LEARNER_DECLARED, {"diagnosis": "latency"}, declare_after / 2),
        (LEARNER_DECLARED, {"diagnosis": "data-drift"}, declare_after),
        (LEARNER_ACTION, {"action": "pipeline.rollback"}, fix_after),
    ):
        cli.append(kind, payload, began=T0 + 1 + after, ts=T0 + 1.5 + after)
    span = {"span_start": T0 + 1 + fix_after + 2, "fixed_by": T0 + 1 + fix_after + 1, "held": 30.0}
    drill.append(DRILL_REMEDIATED, span, run_id=run, ts=T0 + 99)
    drill.append(DRILL_ENDED, {"drill": drill_id, "outcome": "remediated"}, run_id=run, ts=T0 + 100)


def test_lab_grade_prints_one_row_per_run_and_filters_by_learner(state: Path) -> None:
    runner = CliRunner()
    empty = runner.invoke(app, ["grade"])
    assert empty.exit_code == 0 and "no drill run in the journal yet" in empty.output
    write_run(state, "ada", "r1", declare_after=12.5, fix_after=20)
    write_run(state, "bob", "r2", declare_after=30, fix_after=40)
    rows = json.loads(runner.invoke(app, ["grade", "--json"]).stdout)
    fields = ("learner", "ttd", "wrong_declarations", "ttm", "ttr", "time_to_recovery", "outcome")
    assert [tuple(r[f] for f in fields) for r in rows] == [
        ("ada", 12.5, 1, 20.0, 20.0, 22.0, "remediated"),
        ("bob", 30.0, 1, 40.0, 40.0, 42.0, "remediated"),
    ]
    assert all(r["detected"] and 0 < r["score"] <= 100 for r in rows)
    table = runner.invoke(app, ["grade", "--learner", "bob"])
    assert table.exit_code == 0 and "bob" in table.output and "ada" not in table.output
    assert "30.0s" in table.output and "40.0s" in table.output
    help_text = runner.invoke(app, ["grade", "--help"]).output
    for term in ("ttd", "ttm", "ttr", "time_to_recovery"):
        assert term in help_text
    nobody = runner.invoke(app, ["grade", "--learner", "cy"])
    assert "no drill run of cy in the journal yet" in nobody.output


def test_a_blind_run_shows_only_once_it_has_ended(state: Path) -> None:
    drill = Journal(state / "journal.db", source="drill", learner="ada")
    started = {"drill": "drift-x", "diagnosis": "data-drift", "time_limit": 600.0, "hold": 30.0, "blind": True}
    drill.append(DRILL_STARTED, started, run_id="b1", ts=T0)
    drill.append(FAULT_INJECTED, {"fault": 0, "type": "covariate_drift", "details": {}}, run_id="b1", ts=T0 + 1)
    runner = CliRunner()
    running = runner.invoke(app, ["grade"])
    assert "no drill run in the journal yet" in running.output and "drift-x" not in running.output
    drill.append(DRILL_ENDED, {"drill": "drift-x", "outcome": "time_limit"}, run_id="b1", ts=T0 + 600)
    (row,) = json.loads(runner.invoke(app, ["grade", "--json"]).stdout)
    assert (row["drill"], row["blind"], row["outcome"]) == ("drift-x", True, "not remediated")
