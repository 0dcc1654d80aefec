"""The grader's rules, table-driven, on journals written by hand (pure: no servers)."""

from __future__ import annotations

from typing import Any

import pytest

from grader.grading import SKEW, grade, grade_run
from lab_runtime.journal import (
    DRILL_ENDED,
    DRILL_REMEDIATED,
    DRILL_STARTED,
    FAULT_INJECTED,
    LEARNER_ACTION,
    LEARNER_DECLARED,
    PROBE_RESULT,
    Event,
)

T0 = 1_800_000_000.0


class Journal:
    """Events in append order, ids counting up, timestamps as given (seconds after T0)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(self, at: float, kind: str, learner: str | None = "ada", run: str | None = None, **payload: Any) -> None:
        source = "drill" if run else "cli"
        self.events.append(Event(len(self.events) + 1, T0 + at, source, kind, payload, learner, run))

    def drill(self, at: float, run: str = "r1", drill: str = "drift-x", diagnosis: str = "data-drift",
              learner: str = "ada", limit: float = 600.0) -> None:  # fmt: skip
        self.add(at, DRILL_STARTED, learner, run, drill=drill, diagnosis=diagnosis, time_limit=limit, hold=30.0)

    def inject(self, at: float, run: str = "r1", learner: str = "ada", **details: Any) -> None:
        fault_type = "bad_model" if "alias" in details else "covariate_drift"
        self.add(at, FAULT_INJECTED, learner, run, fault=0, type=fault_type, details=details)

    def declare(self, at: float, diagnosis: str, learner: str = "ada") -> None:
        self.add(at, LEARNER_DECLARED, learner, diagnosis=diagnosis)

    def act(self, at: float, action: str, learner: str = "ada", **payload: Any) -> None:
        self.add(at, LEARNER_ACTION, learner, action=action, **payload)

    def remediated(self, at: float, span_start: float, run: str = "r1", learner: str = "ada",
                   seen: float | None = None) -> None:  # fmt: skip
        seen_at = T0 + (span_start if seen is None else seen)
        self.add(at, DRILL_REMEDIATED, learner, run, span_start=T0 + span_start, seen_at=seen_at, held=at - span_start)

    def end(self, at: float, outcome: str, run: str = "r1", learner: str = "ada") -> None:
        self.add(at, DRILL_ENDED, learner, run, drill="drift-x", outcome=outcome)


def solved() -> Journal:
    """Injected at 10 s, declared right at 40 s, rolled back at 50 s, remediated from 60 s (held 30 s)."""
    j = Journal()
    j.drill(0)
    j.inject(10)
    j.add(12, PROBE_RESULT, run="r1", steady=True, remediated=False)
    j.declare(40, "data-drift")
    j.act(50, "pipeline.rollback")
    j.remediated(90, 60)
    j.end(95, "remediated")
    return j


def test_a_run_solved_by_the_learner_gets_exact_ttd_and_ttr() -> None:
    (g,) = grade(solved().events)
    assert (g.run_id, g.drill, g.learner, g.diagnosis) == ("r1", "drift-x", "ada", "data-drift")
    assert g.ttd == pytest.approx(30.0) and g.ttr == pytest.approx(50.0)
    assert (g.detected, g.wrong_declarations, g.outcome, g.collateral) == (True, 0, "remediated", ())
    assert (g.fixed_at, g.finished, g.blind) == (T0 + 50, True, False)  # the rollback is the fix credited
    assert g.score == pytest.approx(40 * (1 - 30 / 600) + 40 * (1 - 50 / 600) + 20, abs=0.1)


def case(*steps: tuple[Any, ...]) -> Journal:
    """A drift drill injected at 10 s, then `steps` as (method, args...)."""
    j = Journal()
    j.drill(0)
    for method, *args in steps:
        getattr(j, method)(*args)
    return j


@pytest.mark.parametrize(
    ("journal", "ttd", "wrong", "ttr", "outcome"),
    [
        pytest.param(  # declared wrong, then right: the wrong one is counted, TTD from the right one
            case(
                ("inject", 10),
                ("declare", 20, "latency"),
                ("declare", 25, "errors"),
                ("declare", 40, "data-drift"),
                ("act", 41, "pipeline.rollback"),
                ("remediated", 80, 50),
                ("end", 81, "remediated"),
            ),
            30.0,
            2,
            40.0,
            "remediated",
            id="wrong-then-right",
        ),
        pytest.param(  # a declaration before the injection does not count, even when right
            case(
                ("declare", 5, "data-drift"),
                ("inject", 10),
                ("act", 30, "pipeline.rollback"),
                ("remediated", 70, 40),
                ("end", 71, "remediated"),
            ),
            None,
            0,
            30.0,
            "remediated",
            id="declared-before-injection",
        ),
        pytest.param(  # the time limit ends the drill and its own revert fixes it: nothing to credit
            case(("inject", 10), ("declare", 20, "data-drift"), ("end", 610, "time_limit")),
            10.0,
            0,
            None,
            "not remediated",
            id="auto-revert-at-time-limit",
        ),
        pytest.param(  # the conditions held again with no learner action before the span: not the learner's fix
            case(("inject", 10), ("remediated", 60, 30), ("act", 61, "pipeline.rollback"), ("end", 62, "remediated")),
            None,
            0,
            None,
            "self-healed",
            id="no-learner-action-before-the-span",
        ),
        pytest.param(  # the instructor aborted: detection still counts, remediation cannot
            case(("inject", 10), ("declare", 15, "data-drift"), ("end", 30, "aborted")),
            5.0,
            0,
            None,
            "aborted",
            id="aborted-by-the-instructor",
        ),
        pytest.param(  # declarations after the run ended do not count
            case(("inject", 10), ("end", 30, "aborted"), ("declare", 35, "data-drift")),
            None,
            0,
            None,
            "aborted",
            id="declared-after-the-end",
        ),
        pytest.param(  # a drill whose injection failed has nothing to grade
            case(("end", 3, "error")),
            None,
            0,
            None,
            "not injected",
            id="never-injected",
        ),
    ],
)
def test_the_edge_cases(journal: Journal, ttd: float | None, wrong: int, ttr: float | None, outcome: str) -> None:
    (g,) = grade(journal.events)
    assert g.ttd == (pytest.approx(ttd) if ttd is not None else None)
    assert g.ttr == (pytest.approx(ttr) if ttr is not None else None)
    assert (g.wrong_declarations, g.outcome) == (wrong, outcome)
    assert 0.0 <= g.score <= 100.0
    assert (g.score == 0.0) == (ttd is None and ttr is None)


def test_clocks_up_to_50_ms_apart_follow_the_journals_order_not_the_timestamps() -> None:
    """The declaration was appended after the injection but its clock runs 40 ms behind the runner's."""
    j = Journal()
    j.drill(0)
    j.inject(10.0)
    j.declare(10.0 - 0.04, "data-drift")
    j.act(59.0, "pipeline.rollback")
    j.remediated(95.0, 59.0 - (SKEW - 0.01))  # the span starts (runner's clock) just before the action's stamp
    j.end(96.0, "remediated")
    (g,) = grade(j.events)
    assert g.detected and g.ttd == 0.0  # never negative
    assert g.outcome == "remediated" and g.ttr == pytest.approx(49.0 - (SKEW - 0.01))


def test_an_action_well_after_the_span_started_is_not_what_fixed_it() -> None:
    j = case(("inject", 10), ("act", 40, "pipeline.rollback"), ("remediated", 80, 39.0), ("end", 81, "remediated"))
    assert grade(j.events)[0].outcome == "self-healed"


def test_overlapping_drills_of_two_learners_are_graded_apart() -> None:
    j = Journal()
    j.drill(0, run="a", learner="ada", diagnosis="data-drift")
    j.drill(1, run="b", learner="bob", diagnosis="latency", drill="latency-x")
    j.inject(10, run="a", learner="ada")
    j.inject(11, run="b", learner="bob")
    j.declare(20, "latency", learner="bob")
    j.declare(30, "data-drift", learner="ada")
    j.act(31, "pipeline.rollback", learner="ada")
    j.act(32, "restart", learner="bob", service="model-service")
    j.remediated(70, 40, run="b", learner="bob")
    j.remediated(75, 45, run="a", learner="ada")
    j.end(76, "remediated", run="b", learner="bob")
    j.end(77, "remediated", run="a", learner="ada")
    ada, bob = grade(j.events)
    assert (ada.learner, ada.ttd, ada.ttr, ada.wrong_declarations) == ("ada", 20.0, 35.0, 0)
    assert (bob.learner, bob.ttd, bob.ttr, bob.wrong_declarations) == ("bob", 9.0, 29.0, 0)
    assert [g.run_id for g in grade(j.events, learner="bob")] == ["b"]


def test_overlapping_runs_of_one_learner_do_not_count_each_others_diagnosis_as_wrong() -> None:
    j = Journal()
    j.drill(0, run="a", diagnosis="data-drift")
    j.drill(1, run="b", diagnosis="latency", drill="latency-x")
    j.inject(10, run="a")
    j.inject(11, run="b")
    j.declare(20, "latency")
    j.declare(21, "data-drift")
    j.end(40, "aborted", run="a")
    j.end(41, "aborted", run="b")
    a, b = grade(j.events)
    assert (a.ttd, a.wrong_declarations, b.ttd, b.wrong_declarations) == (11.0, 0, 9.0, 0)


def test_naming_the_diagnosis_of_an_earlier_run_that_has_ended_is_a_wrong_declaration() -> None:
    j = Journal()
    j.drill(0, run="a", diagnosis="latency", drill="latency-x")
    j.inject(1, run="a")
    j.end(5, "aborted", run="a")
    j.drill(10, run="b", diagnosis="data-drift")
    j.inject(11, run="b")
    j.declare(20, "latency")  # the capstone's first drill is over: this is a wrong guess about the second
    j.declare(25, "data-drift")
    j.end(40, "aborted", run="b")
    a, b = grade(j.events)
    assert (a.wrong_declarations, b.ttd, b.wrong_declarations) == (0, 14.0, 1)


def test_an_action_begun_before_the_fault_is_not_the_fix_even_when_journaled_after_it() -> None:
    j = case(("inject", 10), ("declare", 20, "data-drift"), ("remediated", 80, 40), ("end", 81, "remediated"))
    early = Event(3, T0 + 9, "cli", LEARNER_ACTION, {"action": "pipeline.rollback"}, "ada", None)  # began at 9 s
    events = [*j.events[:2], early, *[Event(e.id + 1, e.ts, e.source, e.kind, e.payload, e.learner, e.run_id)
                                      for e in j.events[2:]]]  # fmt: skip
    (g,) = grade(events)
    assert (g.outcome, g.ttr, g.fixed_at) == ("self-healed", None, None)


def test_a_fix_made_while_the_probe_that_saw_it_was_looking_dates_the_span() -> None:
    # The probe started at 60 s (blocked on a hung service), the learner resumed it at 61 s, the probe saw it at 61.2 s.
    j = case(("inject", 10), ("act", 61, "restart"), ("remediated", 95, 60, "r1", "ada", 61.2), ("end", 96, "x"))
    (g,) = grade(j.events)
    assert (g.outcome, g.ttr, g.fixed_at) == ("remediated", 51.0, T0 + 61)
    late = case(("inject", 10), ("act", 62, "restart"), ("remediated", 95, 60, "r1", "ada", 61.2), ("end", 96, "x"))
    assert grade(late.events)[0].outcome == "self-healed"  # begun after the probe had seen it healthy


@pytest.mark.parametrize(
    ("alias", "action", "payload", "harm"),
    [
        (None, "model.rollback", {"from": "2", "to": "1"}, "rolled back a healthy champion (version 2 to 1)"),
        (None, "canary.abort", {"version": "3"}, "aborted a healthy canary (version 3)"),
        ("champion", "model.rollback", {"from": "2", "to": "1"}, None),
        ("challenger", "canary.abort", {"version": "3"}, None),
        ("champion", "model.promote", {"version": "4", "forced": True}, "promoted version 4 past the validation gate"),
        ("champion", "model.promote", {"version": "4", "forced": False}, None),
    ],
)
def test_collateral_damage_is_what_the_learner_broke_that_the_drill_had_not(
    alias: str | None, action: str, payload: dict[str, Any], harm: str | None
) -> None:
    j = Journal()
    j.drill(0, diagnosis="bad-model")
    j.inject(10, **({"alias": alias} if alias else {}))
    j.declare(20, "bad-model")
    j.act(30, action, **payload)
    j.end(40, "aborted")
    (g,) = grade(j.events)
    assert len(g.collateral) == (harm is not None)
    if harm:
        assert g.collateral[0].startswith(harm)
        clean = Journal()
        clean.events = [e for e in j.events if e.kind != LEARNER_ACTION]
        assert g.score == pytest.approx(grade(clean.events)[0].score - 10.0)


def test_grading_a_run_by_id_ignores_every_other_run() -> None:
    j = solved()
    j.drill(100, run="r2")
    j.inject(110, run="r2")
    j.end(120, "aborted", run="r2")
    assert grade_run(j.events, "r1") == grade(solved().events)[0]
