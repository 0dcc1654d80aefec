"""The before/after skill check: its file, the parallel forms drawn, a form's summary (MTTD and MTTR with the
unsolved counted at the time limit), forms kept apart from the capstone, and the cohort's pairs and changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from grader.assessment import ASSESSMENT, assessments, draw, form_seed, load_assessment
from grader.before_after import Pair, before_after, change
from grader.capstone import latest_capstone
from grader.cohort import cohort
from grader.report import as_dict, to_html
from grader.results import Bundle, sign
from lab_runtime.cli import app
from lab_runtime.errors import GradingError
from lab_runtime.events import (
    CAPSTONE_ENDED,
    CAPSTONE_STARTED,
    DRILL_ENDED,
    DRILL_REMEDIATED,
    DRILL_STARTED,
    FAULT_INJECTED,
    LEARNER_ACTION,
    LEARNER_DECLARED,
)
from lab_runtime.journal import Event, Journal
from tests.grader.test_cohort import KEY, raw
from tests.grader.test_grade_command import state  # noqa: F401  (a fixture)

POOL = {("drift", "medium"): ["d1", "d2", "d3"], ("incident", "easy"): ["i1"], ("canary", "easy"): ["c1", "c2"]}


def test_the_shipped_skill_check_fills_every_slot_on_both_runtimes() -> None:
    from drills.spec import catalog

    checked = load_assessment(ASSESSMENT)
    for runtime in ("local", "compose"):
        pool: dict[tuple[str, str], list[str]] = {}
        for d in catalog():
            if runtime in d.runtimes:
                pool.setdefault((d.kind, d.difficulty), []).append(d.id)
        for seed in range(20):
            baseline, final = (draw(checked, form, seed, pool) for form in ("baseline", "final"))
            assert len(baseline) == len(checked.slots) and set(baseline).isdisjoint(final)  # never a replay


def test_the_forms_draw_other_drills_of_each_slot_and_one_drill_runs_under_another_seed() -> None:
    checked = load_assessment(ASSESSMENT)
    for seed in range(30):
        baseline, final = draw(checked, "baseline", seed, POOL), draw(checked, "final", seed, POOL)
        assert baseline[0] != final[0] and baseline[2] != final[2]  # drift and canary: two or more drills
        assert baseline[1] == final[1] == "i1"  # one drill: the same, under another seed
        assert form_seed(seed, "baseline") != form_seed(seed, "final")
    assert {draw(checked, "baseline", s, POOL)[0] for s in range(30)} == {"d1", "d2", "d3"}  # learners differ
    with pytest.raises(GradingError, match=r"slot 1 \(medium drift\): no drill of that kind and difficulty runs here"):
        draw(checked, "baseline", 1, {})


def test_a_bad_skill_check_file_names_the_file_and_the_field(tmp_path: Path) -> None:
    data: dict[str, Any] = yaml.safe_load(ASSESSMENT.read_text())
    path = tmp_path / "a.yaml"
    path.write_text(yaml.safe_dump({**data, "slots": [{"kind": "drift", "difficulty": "extreme"}]}))
    with pytest.raises(GradingError, match=rf"^{path}: slots\.0\.difficulty: Input should be 'easy', 'medium'"):
        load_assessment(path)
    path.write_text(yaml.safe_dump({**data, "slots": [data["slots"][0]] * 2}))
    with pytest.raises(GradingError, match="slots: each slot once"):
        load_assessment(path)


T0 = 1_800_000_000.0


def form_events(
    form: str, cid: str, at: float, runs: list[tuple[str, float | None, float | None]], who: str = "ada", **extra: Any
) -> list[Event]:
    """A finished form of `who` (ada): each run (drill, seconds to the right declaration, to the fix) in turn."""
    rubric = load_assessment().rubric([d for d, _, _ in runs]).model_dump(by_alias=True)
    start = {"capstone_id": cid, "seed": 9, "count": len(runs), "rubric": rubric, "form": form, "pairing_seed": 4}
    start |= extra
    made: list[tuple[float, str, Any, dict[str, Any], str | None, float | None]] = [
        (at, "cli", CAPSTONE_STARTED, start, None, None)
    ]
    for i, (drill, ttd, ttr) in enumerate(runs):
        run, t = f"{cid}-{i}", at + 100 * (i + 1)
        tag = {"tag": f"capstone:{cid}", "blind": True, "hold": 3.0}
        made.append((t, "drill", DRILL_STARTED, {"drill": drill, "diagnosis": "latency", "time_limit": 600.0, **tag},
                     run, None))  # fmt: skip
        made.append((t + 1, "drill", FAULT_INJECTED, {"fault": 0, "type": "x", "details": {}}, run, None))
        if ttd is not None:
            made.append((t + 1 + ttd, "cli", LEARNER_DECLARED, {"diagnosis": "latency"}, None, t + 1 + ttd))
        if ttr is not None:
            made.append((t + 1 + ttr, "cli", LEARNER_ACTION, {"action": "lab restart"}, None, t + 1 + ttr))
            span = {"span_start": t + 2 + ttr, "fixed_by": t + 1 + ttr, "held": 3.0}
            made.append((t + 5 + ttr, "drill", DRILL_REMEDIATED, span, run, None))
        made.append((t + 99, "drill", DRILL_ENDED, {"drill": drill, "outcome": "remediated"}, run, None))
    made.append((at + 100 * (len(runs) + 1), "cli", CAPSTONE_ENDED, {"capstone_id": cid, "outcomes": []}, None, None))
    return [
        Event(n, ts, src, kind, body, who, run, began) for n, (ts, src, kind, body, run, began) in enumerate(made, 1)
    ]


def test_a_forms_mttd_and_mttr_count_an_unsolved_drill_at_its_time_limit() -> None:
    events = form_events(
        "baseline", "b1", T0, [("incident-latency-spike", 20.0, 40.0), ("schema-null-column", None, None)]
    )
    found = assessments(events, "ada")
    assert list(found) == ["baseline"]
    base = found["baseline"]
    assert (base["form"], base["finished"], base["complete"], base["pairing_seed"]) == ("baseline", True, True, 4)
    assert base["drills"] == ["incident-latency-spike", "schema-null-column"]
    assert (base["mttd"], base["mttr"]) == (pytest.approx((20 + 600) / 2), pytest.approx((40 + 600) / 2))
    assert latest_capstone(events, "ada") is None  # a form is not the capstone
    assert latest_capstone(events, "ada", None).form == "baseline"  # type: ignore[union-attr]


def bundle(learner: str, **forms: dict[str, Any]) -> Bundle:
    return Bundle.model_validate(sign({**raw(learner, []), "assessments": forms}, KEY.encode()))


def form(mttd: float, mttr: float, score: float, finished: bool = True, complete: bool = True) -> dict[str, Any]:
    return {"finished": finished, "complete": complete, "mttd": mttd, "mttr": mttr, "score": score,
            "passed": score >= 50}  # fmt: skip


def test_the_cohort_pairs_baselines_with_finals_and_lists_the_learners_with_one() -> None:
    bundles = [
        bundle("ada", baseline=form(100, 300, 40), final=form(60, 150, 80)),
        bundle("bob", baseline=form(200, 400, 30), final=form(120, 280, 60)),
        bundle("cy", baseline=form(90, 200, 70), final=form(100, 210, 65)),
        bundle("dee", baseline=form(150, 500, 20)),
        bundle("eve", final=form(80, 100, 90)),
        bundle("fay", baseline=form(1, 1, 1), final=form(1, 1, 1, finished=False)),  # a final still running
        bundle("gus"),
        bundle("hal", baseline=form(1, 1, 1), final=form(1, 1, 1, complete=False)),  # a final aborted halfway
    ]
    ba = before_after(bundles)
    assert ba is not None and [p.learner for p in ba.pairs] == ["ada", "bob", "cy"]
    assert (ba.baseline_only, ba.final_only, ba.incomplete) == (("dee", "fay", "hal"), ("eve",), ("hal",))
    mttr = {c.figure: c for c in ba.changes}["mttr"]
    assert (mttr.pairs, mttr.before, mttr.after) == (3, 300.0, 213.333)
    assert mttr.change == pytest.approx(-86.667) and mttr.improved == pytest.approx(2 / 3, abs=1e-4)
    assert mttr.interval is not None and mttr.interval[0] <= -86.667 <= mttr.interval[1]
    assert mttr.p_value == 0.5  # three pairs, two down one up: the exact test cannot say more
    score = {c.figure: c for c in ba.changes}["score"]
    assert score.improved == pytest.approx(2 / 3, abs=1e-4) and score.change == pytest.approx(21.667, abs=1e-3)
    assert before_after([bundle("gus")]) is None


def test_a_consistent_improvement_over_many_learners_is_significant() -> None:
    pairs = [Pair(f"l{i}", {"mttr": 300.0 + i}, {"mttr": 200.0 + i * 0.5}) for i in range(12)]
    c = change("mttr", pairs)
    assert c.p_value is not None and c.p_value < 0.01 and c.improved == 1.0
    assert c.interval is not None and c.interval[1] < 0
    flat = change("mttr", [Pair(f"l{i}", {"mttr": 5.0}, {"mttr": 5.0}) for i in range(4)])
    assert (flat.p_value, flat.improved, flat.change) == (1.0, 0.0, 0.0)


def test_the_report_shows_the_before_and_after_with_a_plot_and_names_the_unpaired() -> None:
    bundles = [
        bundle("ada", baseline=form(100, 300, 40), final=form(60, 150, 80)),
        bundle("dee", baseline=form(1, 2, 3)),
    ]
    c = cohort("spring", bundles)
    body = as_dict(c)["before_after"]
    assert [p["learner"] for p in body["pairs"]] == ["ada"] and body["baseline_only"] == ["dee"]
    page = to_html(c)
    assert "Before and after: the skill check" in page and "1 learner(s) with no final yet: dee" in page
    assert page.count('class="plot dumbbell"') == 2 and "ada baseline 300" in page and "ada final 150" in page


def test_lab_assess_score_shows_both_forms_and_the_bundle_carries_them(state: Path, tmp_path: Path) -> None:  # noqa: F811
    runner = CliRunner()
    assert "no skill check of ada yet" in runner.invoke(app, ["assess", "score", "--learner", "ada"]).stdout
    logs = {source: Journal(state / "journal.db", source=source, learner="ada") for source in ("cli", "drill")}
    for e in form_events("baseline", "b1", T0, [("incident-latency-spike", 20.0, 40.0)]):
        logs[e.source].append(e.kind, e.payload, run_id=e.run_id, ts=e.ts, began=e.began)  # type: ignore[arg-type]
    table = runner.invoke(app, ["assess", "score", "--learner", "ada"])
    assert table.exit_code == 0, table.output
    assert "baseline" in table.stdout and "incident-latency-spike" in table.stdout and "not taken" in table.stdout
    key = tmp_path / "key"
    key.write_text("k" * 64)
    out = tmp_path / "ada.json"
    exported = runner.invoke(app, ["results", "export", "--out", str(out), "--learner", "ada", "--key-file", str(key)])
    assert exported.exit_code == 0, exported.output
    held = json.loads(out.read_text())["assessments"]
    assert list(held) == ["baseline"] and held["baseline"]["mttr"] == pytest.approx(40.0)


def test_a_teams_skill_check_is_in_each_members_bundle_and_paired_as_the_teams() -> None:
    from grader.assessment import team_assessments
    from grader.before_after import team_before_after

    team = {"name": "blue", "members": ["ada", "bob"], "roles": {}}
    events = form_events("baseline", "t1", T0, [("incident-latency-spike", 20.0, 40.0)], who="blue", team=team)
    held = team_assessments(events, "bob")
    assert list(held) == ["blue"] and held["blue"]["baseline"]["mttr"] == pytest.approx(40.0)
    assert team_assessments(events, "cy") == {} and assessments(events, "bob") == {}  # not bob's own
    forms = {"blue": {"baseline": form(100, 300, 40), "final": form(60, 150, 80)}, "red": {"baseline": form(1, 2, 3)}}
    bundles = [
        Bundle.model_validate(sign({**raw(name, []), "team_assessments": forms}, KEY.encode()))
        for name in ("ada", "bob")
    ]
    ba = team_before_after(bundles)
    assert ba is not None and [p.learner for p in ba.pairs] == ["blue"] and ba.baseline_only == ("red",)
    page = to_html(cohort("spring", bundles))
    assert "Before and after: the skill check (teams)" in page and "1 team(s) with no final yet: red" in page


def test_a_teams_skill_check_needs_its_name_and_members(state: Path) -> None:  # noqa: F811
    runner = CliRunner()
    half = runner.invoke(app, ["assess", "baseline", "--team", "blue"])
    assert half.exit_code == 1 and "a team needs --team NAME and --members a,b" in half.output
    both = runner.invoke(app, ["assess", "baseline", "--team", "blue", "--members", "a,b", "--learner", "a"])
    assert both.exit_code == 1 and "--learner and --team exclude each other" in both.output


def test_an_aborted_form_is_incomplete_and_its_missing_drills_are_not_averaged() -> None:
    events = form_events("final", "f1", T0, [("incident-latency-spike", 20.0, 40.0)])
    start = events[0]
    rubric = load_assessment().rubric(["incident-latency-spike", "schema-null-column"]).model_dump(by_alias=True)
    events[0] = Event(start.id, start.ts, start.source, start.kind, {**start.payload, "count": 2, "rubric": rubric},
                      start.learner)  # fmt: skip
    final = assessments(events, "ada")["final"]
    assert (final["finished"], final["complete"], final["drills"]) == (True, False, ["incident-latency-spike"])
    assert final["mttr"] == pytest.approx(40.0)  # the drill that never ran is not counted at its time limit
