"""The incident note of lab 05, read and judged against reference times (pure)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from lab_runtime.labs.incident_note import Reference, judge, parse, resolve_time

TEMPLATE = Path(__file__).parents[2] / "labs" / "lab-05-incident-response" / "incident-note.md"
BEGAN = datetime(2026, 11, 23, 23, 59, 30, tzinfo=UTC).timestamp()  # just before midnight: the date matters
REF = Reference("errors", BEGAN, BEGAN + 95, BEGAN + 140)


def filled(diagnosis: str = "errors", began: str = "23:59:30", detected: str = "00:01:05",
           mitigated: str = "2026-11-24T00:01:50Z") -> str:  # fmt: skip
    note = TEMPLATE.read_text()
    for answer in (diagnosis, began, detected, mitigated, "30 % of calls failed", "a sick process", "page sooner"):
        note = note.replace("TODO", answer, 1)
    return note


def test_the_template_parses_and_every_todo_is_a_problem() -> None:
    problems = judge(parse(TEMPLATE.read_text()), REF, 60, 120)
    assert problems[0] == "Diagnosis: 'TODO' is not what happened (one of `lab declare --list`)"
    assert problems[1:4] == [
        f"{n}: missing; write the time (UTC, HH:MM:SS)" for n in ("Began", "Detected", "Mitigated")
    ]
    assert problems[4:] == [f"## {s}: still to write (no TODO left)" for s in ("Impact", "Root Cause", "Follow-Ups")]


def test_a_note_that_matches_the_journal_passes_across_midnight() -> None:
    assert judge(parse(filled()), REF, 60, 120) == []
    assert judge(parse(filled(began="23:58", detected="00:01:40 UTC")), REF, 60, 120) == []


@pytest.mark.parametrize(
    ("note", "problem"),
    [
        (filled(diagnosis="latency"), "Diagnosis: 'latency' is not what happened"),
        (filled(detected="00:06:05"), "Detected: 00:06:05 is 5m after what the journal recorded (allowed: 1m)"),
        (filled(began="23:50:00"), "Began: 23:50:00 is 9m30s before what the journal recorded (allowed: 2m)"),
        (filled(mitigated="soon"), "Mitigated: 'soon' is not a time; write HH:MM:SS (UTC) or ISO 8601"),
        (filled(mitigated="25:00:00"), "Mitigated: '25:00:00' is not a time"),
        (filled().replace("## Root cause", "## Cause"), "## Root Cause: the section is missing"),
    ],
)
def test_each_disagreement_is_named(note: str, problem: str) -> None:
    assert any(p.startswith(problem) for p in judge(parse(note), REF, 60, 120)), judge(parse(note), REF, 60, 120)


def test_clock_times_resolve_to_the_nearest_day() -> None:
    assert resolve_time("00:00:10", BEGAN) == BEGAN + 40
    assert resolve_time("23:59:00", BEGAN + 120) == BEGAN - 30
    assert resolve_time("2026-11-23T23:59:30+00:00", 0) == BEGAN
