"""Cohort figures from bundles (pure), their CSV and HTML, and `lab cohort report` on signed files."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from grader.cohort import cohort, compare, latest_per_learner, percentile
from grader.report import as_dict, to_csv, to_html
from grader.results import FORMAT, Bundle, sign
from lab_runtime.cli import app
from tests.grader.test_results import sparse

KEY = "instructor-key-for-the-tests-0123456789"


def run(
    drill: str, ttd: float | None, ttr: float | None, wrong: int = 0, score: float = 50.0, **extra: Any
) -> dict[str, Any]:
    return {
        "run_id": f"r{id(extra)}-{ttd}-{ttr}", "drill": drill, "learner": extra.get("learner"), "diagnosis": "x",
        "injected_at": 0.0, "detected_at": ttd, "ttd": ttd, "wrong_declarations": wrong, "remediated_at": ttr,
        "ttr": ttr, "outcome": "remediated" if ttr is not None else "not remediated",
        "collateral": extra.get("collateral", []), "score": score, "time_limit": 600.0,
        "fixed_at": None, "blind": False, "finished": True, "mitigated_at": None, "ttm": extra.get("ttm", ttr),
        "time_to_recovery": ttr, "decision": extra.get("decision"), "verdict": extra.get("verdict"),
        "blast_radius": extra.get("blast_radius"), "team": None, "detected_by": extra.get("learner") if ttd else None,
        "mitigated_by": None, "remediated_by": extra.get("learner") if ttr else None, "members": [],
    }  # fmt: skip


def raw(
    learner: str, runs: list[dict[str, Any]], exported_at: float = 1.0, capstone: dict[str, Any] | None = None
) -> dict[str, Any]:
    runs = [{**r, "learner": learner} for r in runs]
    labs = [{"lab": "lab-01", "passed": 5, "total": 5, "completed": True, "steps": ["train", "register"],
             "checked_at": None}]  # fmt: skip
    return {"format": FORMAT, "learner": learner, "exported_at": exported_at, "labs": labs, "runs": runs,
            "capstone": capstone, "assessments": {}, "team_assessments": {},
            "journal": {"events": 1, "sha256": "0" * 64}}  # fmt: skip


def bundles() -> list[Bundle]:
    made = [
        raw("ada", [run("drift", 10.0, 40.0, score=90.0), run("latency", 5.0, 20.0, score=95.0)],
            capstone={"finished": True, "passed": True}),
        raw("bob", [run("drift", 30.0, None, wrong=2, score=30.0)], capstone={"finished": True, "passed": False}),
        raw("cy", [run("drift", None, None, score=0.0), run("latency", 15.0, 60.0, wrong=1, score=70.0,
                                                            collateral=["rolled back a healthy champion"])]),
    ]  # fmt: skip
    return [Bundle.model_validate(sign(b, KEY.encode())) for b in made]


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([], 0.5) is None
    assert percentile([4.0], 0.9) == 4.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile(list(map(float, range(11))), 0.9) == pytest.approx(9.0)


def test_per_drill_rates_and_spreads() -> None:
    c = cohort("spring", bundles())
    drift, latency = c.drills
    assert (drift.drill, drift.runs, drift.learners) == ("drift", 3, 3)
    assert drift.detection_rate == pytest.approx(2 / 3) and drift.remediation_rate == pytest.approx(1 / 3)
    assert drift.diagnosis_accuracy == pytest.approx(1 / 2)  # ada right first time; bob after two wrong ones
    assert (drift.ttd.p50, drift.ttd.p90, drift.ttd.max) == (20.0, 28.0, 30.0)
    assert (drift.ttr.count, drift.ttr.p50) == (1, 40.0)
    assert (latency.runs, latency.detection_rate, latency.ttr.max) == (2, 1.0, 60.0)


def test_per_drill_decision_mix_and_blast_radius_percentiles() -> None:
    made = [
        raw("ada", [run("out", 5.0, 40.0, decision="rollback", verdict="best", blast_radius=12)]),
        raw("bob", [run("out", 9.0, 80.0, decision="throttle", verdict="harmful", blast_radius=90)]),
        raw("cy", [run("out", 7.0, 50.0, decision="rollback", verdict="best", blast_radius=20)]),
        raw("dee", [run("out", None, None, blast_radius=140)]),
        raw("eve", [run("drift", 5.0, 40.0)]),
    ]
    drills = cohort("spring", [Bundle.model_validate(sign(b, KEY.encode())) for b in made]).drills
    drift, out = drills
    assert out.decisions == {"none": 1, "rollback (best)": 2, "throttle (harmful)": 1}
    assert (out.blast_radius.count, out.blast_radius.p50, out.blast_radius.max) == (4, 55.0, 140.0)
    assert (drift.decisions, drift.blast_radius.count) == ({"none": 1}, 0)
    html = to_html(cohort("spring", [Bundle.model_validate(sign(b, KEY.encode())) for b in made]))
    assert "none: 1, rollback (best): 2, throttle (harmful): 1" in html and "<td>55 / 125 / 140</td>" in html


def test_the_leaderboard_ranks_by_mean_score_and_shows_each_learner_against_the_cohort() -> None:
    board = cohort("spring", bundles()).leaderboard
    assert [(s.rank, s.learner, s.mean_score) for s in board] == [(1, "ada", 92.5), (2, "cy", 35.0), (3, "bob", 30.0)]
    ada, cy, bob = board
    assert (ada.median_ttd, ada.median_ttr, ada.capstone, ada.labs_completed) == (7.5, 30.0, "passed", 1)
    assert (cy.collateral, cy.detected, cy.remediated, cy.capstone) == (1, 1, 1, "-")
    assert bob.capstone == "failed"


def test_runs_never_injected_or_still_going_are_left_out_and_a_running_capstone_shows_so() -> None:
    refused = {**run("drift", None, None), "injected_at": None, "outcome": "refused"}
    going = {**run("drift", 3.0, None), "finished": False}
    eve = Bundle.model_validate(sign(raw("eve", [refused, going], capstone={"finished": False}), KEY.encode()))
    c = cohort("spring", [*bundles(), eve])
    drift = c.drill("drift")
    assert drift is not None and drift.runs == 3  # ada's, bob's and cy's: not eve's two
    (row,) = [s for s in c.leaderboard if s.learner == "eve"]
    assert (row.runs, row.mean_score, row.capstone) == (0, None, "running")


def test_only_the_latest_bundle_of_a_learner_counts() -> None:
    old = Bundle.model_validate(sign(raw("ada", [run("drift", 99.0, None)], exported_at=0.5), KEY.encode()))
    kept, repeated = latest_per_learner([*bundles(), old])
    assert repeated == ["ada"] and [b.runs[0].ttd for b in kept if b.learner == "ada"] == [10.0]


def test_two_cohorts_side_by_side_and_the_renderings() -> None:
    spring, autumn = cohort("spring", bundles()), cohort("autumn", bundles()[:1])
    rows = compare(spring, autumn)
    assert [(r.drill, r.a.runs if r.a else 0, r.b.runs if r.b else 0) for r in rows] == [
        ("drift", 3, 1),
        ("latency", 2, 1),
    ]
    body = as_dict(spring, rows, autumn)
    assert body["compare"]["cohort"] == "autumn" and body["drills"][0]["ttd"]["p50"] == 20.0
    assert "ttd_values" not in body["drills"][0]
    table = list(csv.DictReader(io.StringIO(to_csv(spring))))
    assert len(table) == 5 and table[0]["cohort_p50_ttd_s"] == "20.000" and table[0]["learner"] == "ada"
    page = to_html(spring, rows, autumn)
    assert page.count("<svg") == 6  # TTD and TTR per drill, the weeks of the course and the learners' scatter
    assert "spring against autumn" in page and "drift: time to detect" in page and "TTD (s)" in page
    xss = cohort("<b>", [Bundle.model_validate(sign(raw("<script>", [run("d", 1.0, 2.0)]), KEY.encode()))])
    assert "<script>" not in to_html(xss) and "&lt;script&gt;" in to_html(xss)


@pytest.fixture
def cohort_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LAB_INSTRUCTOR_KEY", KEY)
    monkeypatch.chdir(tmp_path)
    for name, chosen in (("spring", bundles()), ("autumn", bundles()[1:])):
        (tmp_path / name).mkdir()
        for b in chosen:
            (tmp_path / name / f"{b.learner}.json").write_text(b.model_dump_json(by_alias=True))
    odd = Bundle.model_validate(sign(raw("[/]", [run("drift", 1.0, 2.0, score=1.0)]), KEY.encode()))
    (tmp_path / "spring" / "odd.json").write_text(odd.model_dump_json(by_alias=True))
    return tmp_path


def test_lab_cohort_report_writes_html_csv_json_and_compares(cohort_dirs: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["cohort", "report", "spring", "--html", "r.html", "--csv", "r.csv"])
    assert result.exit_code == 0, result.output
    assert "spring: 4 learner(s)" in result.output and "leaderboard" in result.output
    assert "[/]" in result.output  # a learner's name is shown as written, never read as markup
    assert "wrote r.html" in result.output and (cohort_dirs / "r.html").read_text().count("<svg") == 6
    assert len((cohort_dirs / "r.csv").read_text().splitlines()) == 7
    body = json.loads(runner.invoke(app, ["cohort", "report", "spring", "--compare", "autumn", "--json"]).stdout)
    assert [d["drill"] for d in body["compare"]["drills"]] == ["drift", "latency"]
    assert body["compare"]["bundles"] == 2 and body["leaderboard"][0]["learner"] == "ada"
    assert body["bundles"] == 4


def test_an_unsigned_or_tampered_bundle_is_refused_naming_the_file(cohort_dirs: Path) -> None:
    tampered = json.loads((cohort_dirs / "spring" / "bob.json").read_text())
    tampered["runs"][0]["ttd"] = 1.0
    (cohort_dirs / "spring" / "bob.json").write_text(json.dumps(tampered))
    unsigned = {k: v for k, v in tampered.items() if k != "signature"}
    (cohort_dirs / "spring" / "eve.json").write_text(json.dumps(unsigned))
    runner = CliRunner()
    refused = runner.invoke(app, ["cohort", "report", "spring"])
    assert refused.exit_code == 1
    assert "refused 2 bundle(s)" in refused.output and "bob.json was changed after it was signed" in refused.output
    assert "eve.json is not signed" in refused.output
    partial = runner.invoke(app, ["cohort", "report", "spring", "--skip-invalid", "--json"])
    assert partial.exit_code == 0 and json.loads(partial.stdout)["bundles"] == 3


def test_a_bundle_of_the_first_format_is_reported_and_named_as_such(cohort_dirs: Path) -> None:
    added = ("ttm", "mitigated_at", "time_to_recovery")
    old_run = {k: v for k, v in run("drift", 12.0, 70.0).items() if k not in added}
    old = sign({**raw("dan", [old_run]), "format": "mlops-lab-results/1"}, KEY.encode())
    (cohort_dirs / "spring" / "dan.json").write_text(json.dumps(old))
    result = CliRunner().invoke(app, ["cohort", "report", "spring", "--csv", "old.csv"])
    assert result.exit_code == 0, result.output
    assert "1 bundle(s) were exported before TTR was timed from the learner's fix" in " ".join(result.output.split())
    rows = csv.DictReader(io.StringIO((cohort_dirs / "old.csv").read_text()))
    row = next(r for r in rows if r["learner"] == "dan")
    assert (row["ttr_s"], row["ttm_s"], row["time_to_recovery_s"]) == ("70.000", "", "")


def test_a_huge_or_too_deep_file_among_the_bundles_is_refused_naming_it(cohort_dirs: Path) -> None:
    sparse(cohort_dirs / "spring" / "huge.json", 2**30)
    (cohort_dirs / "spring" / "deep.json").write_text("[" * 10_000 + "]" * 10_000)
    runner = CliRunner()
    refused = runner.invoke(app, ["cohort", "report", "spring"])
    assert refused.exit_code == 1
    assert refused.stderr.startswith("error: refused 2 bundle(s): ")
    assert "spring/deep.json is JSON nested deeper than 1024 levels; " in refused.stderr
    assert (
        "spring/huge.json is 1,073,741,824 bytes, more than the 16,777,216 bytes (16 MiB) a result bundle may have"
        in (refused.stderr)
    )
    partial = runner.invoke(app, ["cohort", "report", "spring", "--skip-invalid", "--json"])
    assert partial.exit_code == 0 and json.loads(partial.stdout)["bundles"] == 4
