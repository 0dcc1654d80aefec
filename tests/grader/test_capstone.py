"""The capstone: the rubric file validated, the seeded plan, the rubric score and pass or fail (pure)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from grader.capstone import RUBRIC, Rubric, latest_capstone, load_rubric, plan, score
from grader.grading import RunGrade
from lab_runtime.errors import GradingError
from lab_runtime.events import CAPSTONE_ENDED, CAPSTONE_STARTED, DRILL_STARTED, FAULT_INJECTED
from lab_runtime.journal import Event

LIMITS = {"a": 600.0, "b": 600.0, "c": 300.0, "d": 600.0}
RULES: dict[str, Any] = {
    "drills": ["a", "b", "c", "d"],
    "count": 3,
    "gap": ["1m", "2m"],
    "budget": "40m",
    "weights": {"detection": 25, "diagnosis": 20, "remediation": 30, "collateral": 10, "time": 15},
    "pass": 60,
    "minimums": {"detection": 0.66},
}


def rubric(**changes: Any) -> Rubric:
    return Rubric.model_validate({**RULES, **changes})


def graded(ttd: float | None, ttr: float | None, wrong: int = 0, harms: int = 0) -> RunGrade:
    harm = tuple(f"harm {i}" for i in range(harms))
    return RunGrade("r", "a", "ada", "x", 0.0, ttd, ttd, wrong, ttr, ttr, "remediated", harm, 0.0, 600.0)


def test_the_built_in_rubric_is_valid_and_its_pool_is_in_the_catalog() -> None:
    from drills.spec import catalog

    built_in = load_rubric(RUBRIC)
    limits = {d.id: d.time_limit for d in catalog()}
    assert set(built_in.drills) <= set(limits)
    assert len(plan(built_in, 7, limits).drills) == built_in.count


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"weights": {**RULES["weights"], "time": 5}}, "give each of detection, diagnosis"),
        ({"weights": {**RULES["weights"], "speed": 0}}, "weights: unknown dimension(s) speed"),
        ({"minimums": {"detection": 2}}, "each is a share between 0 and 1"),
        ({"count": 5}, "count: 5 drills asked from a pool of 4"),
        ({"gap": ["3m", "1m"]}, "gap: give the shorter pause first"),
        ({"budget": "soon"}, "budget: Value error, 'soon' is not a duration"),
    ],
)
def test_a_bad_rubric_file_names_the_file_and_the_field(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    import yaml

    path = tmp_path / "rubric.yaml"
    path.write_text(yaml.safe_dump({**RULES, **changes}))
    with pytest.raises(GradingError, match=r"rubric.yaml: .*" + message.replace("(", r"\(").replace(")", r"\)")):
        load_rubric(path)


def test_the_plan_is_seeded_and_must_fit_the_budget() -> None:
    first, again, other = plan(rubric(), 1, LIMITS), plan(rubric(), 1, LIMITS), plan(rubric(), 2, LIMITS)
    assert first == again and first != other
    assert len(set(first.drills)) == 3 and all(60 <= g <= 120 for g in first.gaps)
    assert first.longest == pytest.approx(sum(first.gaps) + sum(LIMITS[d] for d in first.drills))
    scaled = plan(rubric(), 1, LIMITS, scale=0.1)
    assert scaled.drills == first.drills and scaled.longest == pytest.approx(first.longest * 0.1)
    with pytest.raises(GradingError, match=r"seed 1 draws drills that may take \d+s, over the rubric's budget of 600s"):
        plan(rubric(budget="10m"), 1, LIMITS)
    with pytest.raises(GradingError, match="unknown drill"):
        plan(rubric(drills=["a", "b", "zzz"]), 1, LIMITS)


def test_the_score_weighs_each_dimension_and_fails_below_the_thresholds() -> None:
    perfect = score(rubric(), [graded(10.0, 0.0)] * 3, planned=3)
    assert perfect.score == 100.0 and perfect.passed and perfect.reasons == ()
    mixed = score(rubric(), [graded(10.0, 300.0), graded(20.0, None, wrong=1), graded(None, None)], planned=3)
    assert mixed.dimensions == {
        "detection": pytest.approx(0.667, abs=1e-3),
        "diagnosis": 0.5,  # right first time (1) + right after a wrong one (0.5), of three
        "remediation": pytest.approx(0.333, abs=1e-3),
        "collateral": 1.0,
        "time": pytest.approx(0.167, abs=1e-3),
    }
    assert mixed.score == pytest.approx(25 * 2 / 3 + 20 * 0.5 + 30 / 3 + 10 + 15 * 0.5 / 3, abs=0.1)
    assert not mixed.passed and mixed.reasons[0].startswith("score 49.2 below the pass mark 60")
    harmful = score(rubric(), [graded(10.0, 0.0, harms=2)] * 3, planned=3)
    assert harmful.dimensions["collateral"] == 0.0 and harmful.score == 90.0
    missing = score(rubric(), [graded(10.0, 0.0)], planned=3)  # the other two never ran: missed
    assert missing.dimensions["detection"] == pytest.approx(1 / 3, abs=1e-3)
    assert "detection 33% below the minimum 66%" in missing.reasons


def test_the_capstone_in_the_journal_counts_only_its_own_tagged_runs() -> None:
    start = {"capstone_id": "c1", "seed": 1, "count": 2, "rubric": rubric().model_dump(by_alias=True)}
    drill = {"drill": "a", "diagnosis": "latency", "time_limit": 600.0}
    events = [
        Event(1, 1.0, "cli", CAPSTONE_STARTED, start, "ada"),
        Event(2, 2.0, "drill", DRILL_STARTED, {**drill, "tag": "capstone:c1"}, "ada", "r1"),
        Event(3, 3.0, "drill", FAULT_INJECTED, {"type": "latency"}, "ada", "r1"),
        Event(4, 4.0, "drill", DRILL_STARTED, drill, "ada", "r2"),  # a drill the instructor ran meanwhile
        Event(5, 5.0, "drill", FAULT_INJECTED, {"type": "latency"}, "ada", "r2"),
    ]
    found = latest_capstone(events, "ada")
    assert found is not None and found.ended is None and [g.run_id for g in found.grades] == ["r1"]
    assert found.result().runs == 1 and latest_capstone(events, "bob") is None
    done = latest_capstone([*events, Event(6, 9.0, "cli", CAPSTONE_ENDED, {"capstone_id": "c1"}, "ada")], "ada")
    assert done is not None and done.ended is not None


def test_the_decision_dimension_judges_the_first_lever_in_the_output_drills_drawn() -> None:
    weighed = rubric(weights={"detection": 20, "diagnosis": 15, "remediation": 30, "collateral": 10, "time": 15,
                              "decision": 10})  # fmt: skip

    def judged(verdict: str | None) -> RunGrade:
        return replace(graded(10.0, 0.0), verdict=verdict)

    assert score(weighed, [judged(None)] * 3, planned=3).dimensions["decision"] == 1.0  # no output drill drawn
    mixed = score(weighed, [judged("best"), judged("acceptable"), judged("harmful")], planned=3, decisions=3)
    assert mixed.dimensions["decision"] == 0.5  # 1, 0.5 and 0, of three
    # an output drill drawn that never ran scores 0, not a pass: aborting it must not beat a harmful lever
    missing = score(weighed, [judged("best"), judged(None)], planned=3, decisions=2)
    assert missing.dimensions["decision"] == 0.5
    assert "decision" not in score(rubric(), [judged("best")], planned=1).dimensions  # a rubric without it
