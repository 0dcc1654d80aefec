"""A learner's row on the console, from events written by hand (pure)."""

from __future__ import annotations

import pytest

from grader.console.roster import health, row
from lab_runtime.events import ALERT_FIRING, ALERT_RESOLVED, LAB_CHECK, LAB_STARTED
from tests.grader.test_grading import T0, Journal, solved


def test_a_row_shows_the_current_lab_the_alerts_firing_and_the_drill_under_way_as_graded_so_far() -> None:
    j = Journal()
    j.add(0, LAB_STARTED, lab="lab-01", workspace="w")
    j.add(1, LAB_CHECK, lab="lab-01", passed=1, steps=[{"id": "a", "passed": True}, {"id": "b", "passed": False}])
    j.add(2, ALERT_FIRING, learner=None, rule="drift", severity="warning")
    j.add(3, ALERT_FIRING, learner=None, rule="errors", severity="page")
    j.add(4, ALERT_RESOLVED, learner=None, rule="errors", severity="page")
    j.drill(5)
    j.inject(10)
    j.declare(20, "schema-change")
    j.declare(30, "data-drift")
    j.act(35, "pipeline.rollback")
    r = row("ada", j.events, {"mlflow": True}, "local", seen=T0 + 36, cursor=11, last_event=T0 + 35.4, now=T0 + 40)
    assert (r.lab, r.steps, r.alerts, r.runtime) == ("lab-01", "1/2", ("drift",), "local")
    assert r.active is not None and r.runs == (r.active,)
    assert (r.active.drill, r.active.outcome, r.active.finished) == ("drift-x", "under way", False)
    assert r.active.ttd == 20.0  # injected at 10, the right declaration's command started at 30
    assert (r.active.declared, r.active.moves) == (("schema-change", "data-drift"), ("pipeline.rollback",))
    assert (r.health.status, r.cursor, r.last_event) == ("healthy", 11, T0 + 35.4)


def test_a_finished_run_carries_its_figures_and_no_longer_shows_as_under_way() -> None:

    r = row("ada", solved().events, {}, "local", seen=None, cursor=0, last_event=None, now=T0 + 100)
    (run,) = r.runs
    assert r.active is None
    assert (run.finished, run.outcome, run.ttd, run.ttr) == (True, "remediated", 30.0, 40.0)
    assert run.score > 0


def test_health_says_why_a_sandbox_is_not_healthy() -> None:
    assert health(None, None, 100.0).status == "not joined"
    gone = health({"mlflow": True}, 80.0, 100.0)
    assert (gone.status, gone.detail) == ("offline", "last heard from 20s ago")
    sick = health({"mlflow": True, "monitor": False, "pipeline": False}, 99.0, 100.0)
    assert (sick.status, sick.detail) == ("degraded", "not healthy: monitor, pipeline")
    assert health({"mlflow": True}, 99.0, 100.0).status == "healthy"


def test_a_server_that_failed_to_start_shows_until_its_agent_is_heard_from_again() -> None:
    failed = health(None, None, 100.0, ("ImageNotFound: lab-learner:missing", 90.0))
    assert (failed.status, failed.detail) == (
        "failed",
        "their server did not start: ImageNotFound: lab-learner:missing",
    )
    assert health({"mlflow": True}, 80.0, 100.0, ("APIError: limit", 85.0)).status == "failed"  # after it was heard
    assert health({"mlflow": True}, 99.0, 100.0, ("APIError: limit", 85.0)).status == "healthy"  # heard from since


def test_a_learner_sees_no_blind_run_under_way_and_no_order() -> None:
    from dataclasses import replace

    from grader.console.roster import for_learner

    j = Journal()
    j.add(0, "drill.started", "ada", "r1", drill="drift-x", diagnosis="data-drift", time_limit=600.0, hold=30.0,
          blind=True)  # fmt: skip
    j.inject(10)
    r = replace(row("ada", j.events, {}, "local", None, 0, None, T0 + 20), order={"action": "drill"})
    assert r.active is not None and r.active.blind  # the instructor's view
    mine = for_learner(r)
    assert (mine.active, mine.runs, mine.order) == (None, (), None)
    finished = row("ada", solved().events, {}, "local", None, 0, None, T0 + 100)
    assert for_learner(finished).runs == finished.runs


def test_events_a_row_cannot_read_make_that_learner_unreadable_not_the_page() -> None:
    from grader.console.roster import unreadable

    j = Journal()
    j.add(1, ALERT_FIRING, learner=None)  # no rule: not what the monitor writes
    with pytest.raises(KeyError):
        row("ada", j.events, {}, "local", None, 0, None, T0)
    shown = unreadable("ada", KeyError("rule"), health(None, None, T0), 7)
    assert (shown.learner, shown.cursor, shown.runs, shown.problem) == (
        "ada",
        7,
        (),
        "its events cannot be read (KeyError('rule'))",
    )
