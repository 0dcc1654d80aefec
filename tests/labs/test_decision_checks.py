"""Lab 06's checks: the levers rehearsed, each situation handled, the decision note against the record (journals
written by hand, no servers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from grader.grading import grade_run
from lab_runtime.events import (
    DRILL_ENDED,
    DRILL_REMEDIATED,
    DRILL_STARTED,
    DRILL_UNSAFE,
    FAULT_INJECTED,
    LAB_EVENT,
    LEARNER_ACTION,
    LEARNER_DECLARED,
)
from lab_runtime.journal import Journal
from lab_runtime.labs.checks import CATALOG, CheckContext
from lab_runtime.labs.decision_note import Situation, judge
from tests.labs.test_model_checks import T0, Lab, Registry

TABLE = {
    "rollback": {"verdict": "best", "points": 20.0, "why": "w"},
    "disable": {"verdict": "acceptable", "points": 5.0, "why": "w"},
    "throttle": {"verdict": "harmful", "points": -20.0, "why": "w"},
}
NOTE = """# Decision note
## Situation 1
- Lever: rollback
- Why: a new champion went live just before <!-- guidance -->
- Blast radius: 40
"""


def check(lab: Lab, name: str, **args: Any) -> tuple[bool, str]:
    ctx = CheckContext(lab.settings, Registry({}), T0, "lab-06", grade_run)  # type: ignore[arg-type]
    result = CATALOG[name](ctx, **args)
    return result.passed, result.detail


def test_the_levers_are_rehearsed_by_a_throttle_then_the_model_back_on(tmp_path: Path) -> None:
    lab = Lab(tmp_path)
    assert check(lab, "levers_rehearsed") == (
        False,
        "the model still decides every request: try `lab feature throttle 0.5`",
    )
    lab.event(1, LEARNER_ACTION, action="feature.throttle", to=0.5)
    assert check(lab, "levers_rehearsed") == (
        False,
        "the model is switched off for some requests: `lab feature enable` puts it back",
    )
    lab.event(2, LEARNER_ACTION, action="feature.enable", to=1.0)
    assert check(lab, "levers_rehearsed") == (True, "throttled, then the model back on every request")
    lab.event(3, LAB_EVENT, lab="lab-06", event=0, run_id="s1")  # the shift starts: a throttle in it is no rehearsal
    lab.event(4, LEARNER_ACTION, action="feature.throttle", to=0.4)
    assert check(lab, "levers_rehearsed") == (True, "throttled, then the model back on every request")


def situation(lab: Lab, run: str, number: int, at: float) -> Journal:
    drill = Journal(lab.settings.journal_path, source="drill", learner="ada")
    started = {"drill": "output-x", "diagnosis": "unsafe-output", "time_limit": 600.0, "blind": True,
               "decision": TABLE}  # fmt: skip
    drill.append(DRILL_STARTED, started, run_id=run, ts=T0 + at)
    drill.append(FAULT_INJECTED, {"fault": 0, "type": "bad_model", "details": {}}, run_id=run, ts=T0 + at + 1)
    lab.event(at + 1.5, LAB_EVENT, lab="lab-06", event=number, run_id=run)
    return drill


def test_a_situation_is_handled_once_declared_a_lever_pulled_and_remediated_and_rated_once_over(
    tmp_path: Path,
) -> None:
    lab = Lab(tmp_path)
    assert check(lab, "incident_handled", incident=0)[1].startswith("the incident has not started yet")
    drill = situation(lab, "s1", 0, 10)
    assert check(lab, "incident_handled", incident=0) == (False, "no diagnosis declared yet (`lab declare --list`)")
    lab.journal.append(LEARNER_DECLARED, {"diagnosis": "unsafe-output"}, began=T0 + 14, ts=T0 + 14.5)
    assert check(lab, "incident_handled", incident=0) == (False, "no lever pulled yet: throttle, roll back or disable")
    lab.journal.append(LEARNER_ACTION, {"action": "model.rollback", "from": "3", "to": "2"}, began=T0 + 20,
                       ts=T0 + 20.5)  # fmt: skip
    assert not check(lab, "incident_handled", incident=0)[0]
    span = {"span_start": T0 + 22, "seen_at": T0 + 22, "fixed_by": T0 + 21, "held": 30.0}
    drill.append(DRILL_REMEDIATED, span, run_id="s1", ts=T0 + 52)
    assert check(lab, "incident_handled", incident=0) == (
        False,
        "rollback first, remediated 9s after it began; the situation ends once the sandbox is steady again (a minute "
        "or two)",
    )
    drill.append(DRILL_UNSAFE, {"served": [T0 + 12, T0 + 13, T0 + 30], "since": T0 + 11, "until": T0 + 53},
                 run_id="s1", ts=T0 + 53)  # fmt: skip
    drill.append(DRILL_ENDED, {"drill": "output-x", "outcome": "remediated", "detail": None}, run_id="s1",
                 ts=T0 + 54)  # fmt: skip
    assert check(lab, "incident_handled", incident=0) == (
        True,
        "rollback first, remediated 9s after it began: best here; right diagnosis; unsafe decisions served first: 2",
    )
    assert check(lab, "incident_handled", incident=1)[1].startswith("the incident has not started yet")
    # the note, once every situation is over: the levers and the counts the grader recorded
    assert check(lab, "decision_note", file="decision-note.md", incidents=2) == (
        False,
        "handle every situation first (each must be over), then write the note",
    )
    note = lab.settings.workspace_dir / "lab-06" / "decision-note.md"
    assert check(lab, "decision_note", file="decision-note.md", incidents=1)[1].startswith("no note at ")
    note.parent.mkdir(parents=True)
    note.write_text(NOTE.replace("40", "2"))
    assert check(lab, "decision_note", file="decision-note.md", incidents=1) == (
        True,
        "the note is complete and its levers and blast radii match the record",
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (NOTE, ""),
        (NOTE.replace("40", "46"), ""),  # within 20 %
        (
            NOTE.replace("40", "49"),
            "Situation 1: Blast radius 49 is 9 away from what the grader counted (allowed: 8); `lab grade` shows it",
        ),
        (NOTE.replace("40", "lots"), "Situation 1: Blast radius 'lots' is not a whole number"),
        (
            NOTE.replace("rollback", "disable"),
            "Situation 1: Lever 'disable' is not the first lever you pulled (`lab grade`)",
        ),
        (NOTE.replace("- Why: a new champion went live just before", "- Why: TODO"), "Situation 1: fill in Why"),
        (NOTE.replace("## Situation 1", "## Situation one"), "## Situation 1: the section is missing"),
    ],
)
def test_the_note_is_judged_against_the_levers_and_counts_recorded(text: str, problem: str) -> None:
    problems = judge(text, [Situation("rollback", 40)], tolerance=0.2)
    assert problems == ([problem] if problem else [])


def test_a_small_blast_radius_allows_five_decisions_either_way() -> None:
    assert judge(NOTE.replace("40", "5"), [Situation("rollback", 0)], tolerance=0.2) == []
    assert judge(NOTE.replace("40", "6"), [Situation("rollback", 0)], tolerance=0.2) != []
