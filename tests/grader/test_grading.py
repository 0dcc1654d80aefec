"""The grader's rules, table-driven, on journals written by hand (pure: no servers)."""

from __future__ import annotations

from typing import Any

import pytest

from grader.grading import SKEW, grade, grade_run
from lab_runtime.events import (
    DRILL_ENDED,
    DRILL_MITIGATED,
    DRILL_REMEDIATED,
    DRILL_STARTED,
    DRILL_UNSAFE,
    FAULT_INJECTED,
    LEARNER_ACTION,
    LEARNER_DECLARED,
    PROBE_RESULT,
)
from lab_runtime.journal import Event

T0 = 1_800_000_000.0


LAG = 0.4  # seconds a learner's command takes from its start to writing its event


class Journal:
    """Events in append order, ids counting up, times as given (seconds after T0). A learner's event is dated
    `at` (its command's start) and written `LAG` later, as the CLI does."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(self, at: float, kind: str, learner: str | None = "ada", run: str | None = None, **payload: Any) -> None:
        if run:
            self.events.append(Event(len(self.events) + 1, T0 + at, "drill", kind, payload, learner, run))
        else:
            self.events.append(Event(len(self.events) + 1, T0 + at + LAG, "cli", kind, payload, learner, None, T0 + at))

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
                   seen: float | None = None, fixed_by: float | None = None) -> None:  # fmt: skip
        seen_at = T0 + (span_start if seen is None else seen)
        evidence = {} if fixed_by is None else {"fixed_by": T0 + fixed_by}
        self.add(at, DRILL_REMEDIATED, learner, run, span_start=T0 + span_start, seen_at=seen_at,
                 held=at - span_start, **evidence)  # fmt: skip

    def mitigated(self, at: float, span_start: float, fixed_by: float, run: str = "r1") -> None:
        self.add(at, DRILL_MITIGATED, "ada", run, span_start=T0 + span_start, seen_at=T0 + span_start,
                 fixed_by=T0 + fixed_by, held=at - span_start)  # fmt: skip

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


def test_a_run_solved_by_the_learner_is_timed_from_the_starts_of_their_commands() -> None:
    (g,) = grade(solved().events)
    assert (g.run_id, g.drill, g.learner, g.diagnosis) == ("r1", "drift-x", "ada", "data-drift")
    assert g.ttd == pytest.approx(30.0) and g.ttr == pytest.approx(40.0)  # not when their events were written
    assert g.ttm == pytest.approx(40.0)  # no impact of its own to stop: mitigated by the fix
    assert g.time_to_recovery == pytest.approx(50.0)  # the verified span started at 60 s
    assert (g.detected, g.wrong_declarations, g.outcome, g.collateral) == (True, 0, "remediated", ())
    assert (g.fixed_at, g.mitigated_at, g.remediated_at) == (T0 + 50, T0 + 50, T0 + 60)
    assert (g.finished, g.blind) == (True, False)
    assert g.score == pytest.approx(40 * (1 - 30 / 600) + 40 * (1 - 40 / 600) + 20, abs=0.1)


def test_ttm_is_the_move_that_stopped_the_impact_and_ttr_the_one_that_removed_the_cause() -> None:
    """The canary's errors stop when its share goes to zero at 20 s; the abort at 30 s removes the challenger."""
    j = case(
        ("inject", 10),
        ("declare", 15, "data-drift"),
        ("act", 20, "canary.set"),
        ("mitigated", 28, 22, 21.0),
        ("act", 30, "canary.abort"),
        ("remediated", 40, 31, "r1", "ada", 31.5, 31.5),
        ("end", 41, "remediated"),
    )
    (g,) = grade(j.events)
    assert (g.ttd, g.ttm, g.ttr, g.time_to_recovery) == (5.0, 10.0, 20.0, 21.0)


def test_a_move_made_after_the_fix_was_in_evidence_takes_no_credit() -> None:
    """The rollback at 30 s fixed it; the probe saw clean requests from 31 s on; a report at 33 s changed nothing."""
    j = case(
        ("inject", 10),
        ("act", 30, "pipeline.rollback"),
        ("act", 33, "monitor.report"),
        ("remediated", 50, 36, "r1", "ada", 36.2, 32.0),
        ("end", 51, "remediated"),
    )
    (g,) = grade(j.events)
    assert (g.ttr, g.fixed_at, g.outcome) == (20.0, T0 + 30, "remediated")


def test_a_mitigation_with_no_move_before_it_is_not_the_learners() -> None:
    j = case(("inject", 10), ("mitigated", 30, 20, 21.0), ("act", 40, "restart"), ("end", 80, "time_limit"))
    (g,) = grade(j.events)
    assert (g.ttm, g.mitigated_at, g.ttr, g.outcome) == (None, None, None, "not remediated")


def test_a_declaration_is_dated_from_its_command_even_when_written_after_the_run_ended() -> None:
    j = case(("inject", 10), ("declare", 29.9, "data-drift"), ("end", 30, "aborted"))
    assert j.events[-2].ts > j.events[-1].ts  # written after drill.ended
    (g,) = grade(j.events)
    assert g.ttd == pytest.approx(19.9)


def test_a_journal_written_before_commands_were_dated_grades_by_when_events_were_written() -> None:
    old = [Event(e.id, e.began or e.ts, e.source, e.kind, e.payload, e.learner, e.run_id) for e in solved().events]
    (g,) = grade(old)
    assert (g.ttd, g.ttr, g.time_to_recovery) == (30.0, 40.0, 50.0)


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
            31.0,
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
            20.0,
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


def test_a_move_started_up_to_50_ms_before_the_faults_stamp_counts_from_the_injection() -> None:
    """The fault acts just before the runner stamps it: a declaration started 40 ms before the stamp counts, at 0."""
    j = Journal()
    j.drill(0)
    j.inject(10.0)
    j.declare(10.0 - 0.04, "data-drift")
    j.act(59.0, "pipeline.rollback")
    j.remediated(95.0, 59.0 - (SKEW - 0.01))  # the span starts just before the action's start
    j.end(96.0, "remediated")
    (g,) = grade(j.events)
    assert g.detected and g.ttd == 0.0  # never negative
    assert g.outcome == "remediated" and g.ttr == pytest.approx(49.0)
    assert g.time_to_recovery == pytest.approx(49.0)  # the span never starts before the fix credited


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
    assert (ada.learner, ada.ttd, ada.ttr, ada.wrong_declarations) == ("ada", 20.0, 21.0, 0)
    assert (bob.learner, bob.ttd, bob.ttr, bob.wrong_declarations) == ("bob", 9.0, 21.0, 0)
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
    early = Event(3, T0 + 11, "cli", LEARNER_ACTION, {"action": "pipeline.rollback"}, "ada", None, T0 + 9)
    events = [*j.events[:2], early, *[Event(e.id + 1, e.ts, e.source, e.kind, e.payload, e.learner, e.run_id,
                                            e.began) for e in j.events[2:]]]  # fmt: skip
    (g,) = grade(events)
    assert (g.outcome, g.ttr, g.fixed_at) == ("self-healed", None, None)


def test_a_fix_made_while_the_probe_that_saw_it_was_looking_dates_the_span() -> None:
    # The probe started at 60 s (blocked on a hung service), the learner resumed it at 61 s, the probe saw it at 61.2 s.
    j = case(("inject", 10), ("act", 61, "restart"), ("remediated", 95, 60, "r1", "ada", 61.2), ("end", 96, "x"))
    (g,) = grade(j.events)
    assert (g.outcome, g.ttr, g.fixed_at, g.time_to_recovery) == ("remediated", 51.0, T0 + 61, 51.0)
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


def test_looking_at_the_sandbox_right_after_the_fix_takes_no_credit_for_it() -> None:
    j = case(
        ("inject", 10),
        ("act", 30, "restart"),
        ("act", 31, "monitor.report"),  # begun before the fix was in evidence, but it changes nothing
        ("mitigated", 40, 32, 32.0),
        ("remediated", 45, 32, "r1", "ada", 32.1, 32.0),
        ("end", 46, "remediated"),
    )
    (g,) = grade(j.events)
    assert (g.ttm, g.ttr) == (20.0, 20.0)


def test_the_impact_is_never_graded_as_stopped_after_the_remediation() -> None:
    j = case(
        ("inject", 10),
        ("act", 20, "model.rollback"),
        ("act", 25, "restart"),  # a second move brought the impact back for a moment
        ("mitigated", 40, 26, 26.0),
        ("remediated", 45, 21, "r1", "ada", 21.1, 21.1),
        ("end", 46, "remediated"),
    )
    (g,) = grade(j.events)
    assert (g.ttm, g.ttr) == (10.0, 10.0)


def test_another_learners_run_does_not_excuse_a_wrong_guess() -> None:
    j = Journal()
    j.drill(0, run="a", learner="ada", diagnosis="data-drift")
    j.drill(1, run="b", learner="bob", diagnosis="latency", drill="latency-x")
    j.inject(10, run="a", learner="ada")
    j.inject(11, run="b", learner="bob")
    j.declare(20, "latency", learner="ada")  # bob's drill's diagnosis, but ada has no such run
    j.end(40, "aborted", run="a", learner="ada")
    j.end(41, "aborted", run="b", learner="bob")
    ada, _ = grade(j.events)
    assert ada.wrong_declarations == 1


TABLE = {
    "rollback": {"verdict": "best", "points": 20.0, "why": "a safe version exists"},
    "disable": {"verdict": "acceptable", "points": 5.0, "why": "everyone waits for a human"},
    "throttle": {"verdict": "harmful", "points": -20.0, "why": "the unsafe version keeps deciding"},
}


def output_run(
    *moves: tuple[float, str, dict[str, Any]], mitigated_by: float | None = 30.0, bad_champion: bool = True
) -> Journal:
    """An output drill injected at 10 s; `moves` as (at, action, payload); violations served at 11..40 s, one a
    second; the impact gone by `mitigated_by` (None: never), remediated at 70 s."""
    j = Journal()
    j.add(0, DRILL_STARTED, "ada", "r1", drill="output-x", diagnosis="unsafe-output", time_limit=600.0, hold=30.0,
          decision=TABLE)  # fmt: skip
    j.inject(10, **({"alias": "champion"} if bad_champion else {}))
    j.declare(15, "unsafe-output")
    for at, action, payload in moves:
        j.act(at, action, **payload)
    if mitigated_by is not None:
        j.mitigated(mitigated_by + 30, mitigated_by, mitigated_by)
    j.remediated(100, 70, fixed_by=70)
    j.add(101, DRILL_UNSAFE, "ada", "r1", served=[T0 + s for s in range(11, 41)], since=T0 + 10, until=T0 + 101)
    j.end(102, "remediated")
    return j


@pytest.mark.parametrize(
    ("moves", "decision", "verdict", "points"),
    [
        pytest.param([(20.0, "model.rollback", {"from": "3", "to": "2"})], "rollback", "best", 20.0, id="best"),
        pytest.param([(20.0, "feature.disable", {"from": 1.0, "to": 0.0})], "disable", "acceptable", 5.0, id="ok"),
        pytest.param(
            [
                (18.0, "monitor.report", {}),
                (20.0, "feature.throttle", {"from": 1.0, "to": 0.3}),
                (25.0, "model.rollback", {"from": "3", "to": "2"}),
            ],
            "throttle",
            "harmful",
            -20.0,
            id="the-first-lever-counts",
        ),
    ],
)
def test_the_first_lever_pulled_is_judged_by_the_drills_table_and_its_points_join_the_score(
    moves: list[tuple[float, str, dict[str, Any]]], decision: str, verdict: str, points: float
) -> None:
    (g,) = grade(output_run(*moves).events)
    assert (g.decision, g.verdict, g.collateral) == (decision, verdict, ())  # a table's levers are not harms
    ttd, ttr = 5.0, g.ttr
    assert ttr is not None
    expected = 40 * (1 - ttd / 600) + 40 * (1 - ttr / 600) + 20 + points
    assert g.score == pytest.approx(min(100.0, expected), abs=0.1)


def test_the_blast_radius_counts_the_violations_served_until_the_mitigation_credited() -> None:
    (g,) = grade(output_run((20.0, "model.rollback", {"from": "3", "to": "2"}), mitigated_by=30.0).events)
    assert g.mitigated_at == pytest.approx(T0 + 20.0)
    assert g.blast_radius == 10  # served at 11..20 s: the rollback began at 20 s
    (late,) = grade(output_run((35.0, "feature.disable", {"from": 1.0, "to": 0.0}), mitigated_by=36.0).events)
    assert late.blast_radius == 25


def test_a_throttle_that_only_cuts_the_harm_does_not_end_the_blast_radius_the_fix_does() -> None:
    throttle, rollback = (20.0, "feature.throttle", {"from": 1.0, "to": 0.3}), (25.0, "model.rollback", {})
    (g,) = grade(output_run(throttle, rollback, mitigated_by=22.0).events)
    assert (g.decision, g.mitigated_at, g.fixed_at) == ("throttle", T0 + 20.0, T0 + 25.0)
    assert g.blast_radius == 15  # served at 11..25 s: until the rollback began


def test_only_the_first_lever_is_judged_by_the_table_a_later_one_can_still_do_harm() -> None:
    disable, rollback = (20.0, "feature.disable", {"from": 1.0, "to": 0.0}), (25.0, "model.rollback", {"from": "2"})
    (g,) = grade(output_run(disable, rollback, bad_champion=False).events)
    assert (g.decision, g.verdict) == ("disable", "acceptable")
    assert g.collateral == ("rolled back a healthy champion (version 2 to None)",)


def test_without_a_mitigation_the_blast_radius_is_every_violation_until_the_revert_and_no_lever_scores() -> None:
    (g,) = grade(output_run(mitigated_by=None).events)
    assert (g.decision, g.verdict, g.blast_radius) == (None, "none", 30)


def test_a_drill_without_a_record_of_its_violations_has_no_blast_radius() -> None:
    (g,) = grade(solved().events)
    assert (g.decision, g.verdict, g.blast_radius) == (None, None, None)


def test_a_run_before_its_injection_is_under_way_and_keeps_its_blindness() -> None:
    j = Journal()
    j.add(0, DRILL_STARTED, "ada", "r1", drill="drift-x", diagnosis="data-drift", time_limit=600.0, hold=30.0,
          blind=True)  # fmt: skip
    (waiting,) = grade(j.events)
    assert (waiting.outcome, waiting.finished, waiting.blind) == ("not injected", False, True)
    j.end(30, "refused")
    (refused,) = grade(j.events)
    assert (refused.outcome, refused.finished, refused.blind) == ("not injected", True, True)
