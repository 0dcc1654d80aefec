"""Bundles as xAPI statements (ids from their content, the figures as result extensions) and the LMS gradebook."""

from __future__ import annotations

import csv
import io

import pytest

from grader.gradebook import gradebook_csv
from grader.results import Bundle, sign
from grader.xapi import HOME_PAGE, iso_duration, statements
from tests.grader.test_cohort import KEY, bundles, raw, run


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "PT0S"), (42, "PT42S"), (95.5, "PT1M35.5S"), (3725, "PT1H2M5S"), (3600, "PT1H"), (0.004, "PT0S")],
)
def test_durations_are_iso_8601(seconds: float, text: str) -> None:
    assert iso_duration(seconds) == text


CAPSTONE = {"capstone_id": "c1", "finished": True, "passed": True, "score": 72.5, "dimensions": {"detection": 0.67}}


def test_each_lab_finished_run_and_capstone_is_a_statement_with_its_figures() -> None:
    ada = Bundle.model_validate(
        sign({**bundles()[0].model_dump(exclude={"signature"}), "capstone": CAPSTONE}, KEY.encode())
    )
    found = statements([ada])
    lab, drift, latency, capstone = found
    assert lab["actor"] == {"objectType": "Agent", "name": "ada", "account": {"homePage": HOME_PAGE, "name": "ada"}}
    assert lab["verb"]["id"] == "http://adlnet.gov/expapi/verbs/completed"
    assert lab["object"]["id"] == f"{HOME_PAGE}/labs/lab-01"
    assert lab["result"]["score"] == {"scaled": 1.0, "raw": 5, "min": 0, "max": 5}
    assert lab["result"]["extensions"] == {f"{HOME_PAGE}/xapi/steps": ["train", "register"]}
    assert drift["verb"]["display"] == {"en-US": "passed"} and drift["object"]["id"] == f"{HOME_PAGE}/drills/drift"
    result = drift["result"]
    assert (result["success"], result["completion"], result["duration"]) == (True, True, "PT40S")
    assert result["score"] == {"scaled": 0.9, "raw": 90.0, "min": 0, "max": 100}
    ext = {k.removeprefix(f"{HOME_PAGE}/xapi/"): v for k, v in result["extensions"].items()}
    assert (ext["ttd"], ext["ttr"], ext["ttm"], ext["outcome"], ext["blind"]) == (10.0, 40.0, 40.0, "remediated", False)
    assert "decision" not in ext  # a figure the run does not have is left out, not sent as null
    assert drift["timestamp"] == "1970-01-01T00:00:00.000Z"  # its injection
    assert latency["result"]["duration"] == "PT20S" and capstone["verb"]["display"] == {"en-US": "passed"}
    assert capstone["result"]["score"] == {"scaled": 0.725, "raw": 72.5, "min": 0, "max": 100}
    assert capstone["result"]["extensions"] == {
        f"{HOME_PAGE}/xapi/capstone_id": "c1",
        f"{HOME_PAGE}/xapi/detection": 0.67,
    }
    assert len({s["id"] for s in found}) == 4


def fixed() -> list[Bundle]:
    """The test cohort with run ids that do not change from one call to the next."""
    made = []
    for b in bundles():
        body = b.model_dump(exclude={"signature"})
        body["runs"] = [{**r, "run_id": f"{b.learner}-{i}"} for i, r in enumerate(body["runs"])]
        made.append(Bundle.model_validate(sign(body, KEY.encode())))
    return made


def test_a_statement_id_comes_from_what_it_says() -> None:
    first = statements(fixed())
    assert [s["id"] for s in statements(fixed())] == [s["id"] for s in first]  # exported again: the same ids
    assert len(first) == 8 and len({s["id"] for s in first}) == 8  # three labs, five finished runs
    further = raw("ada", [run("drift", 10.0, 40.0, score=90.0)])
    further["labs"] = [{"lab": "lab-01", "passed": 3, "total": 5, "completed": False, "steps": ["train"]}]
    (lab, _) = statements([Bundle.model_validate(sign(further, KEY.encode()))])
    assert lab["id"] not in {s["id"] for s in first} and lab["verb"]["display"] == {"en-US": "attempted"}
    moved = statements(fixed(), "https://lms.example.org/lab")
    assert moved[0]["object"]["id"] == "https://lms.example.org/lab/labs/lab-01" and moved[0]["id"] != first[0]["id"]


def test_a_run_not_remediated_failed_and_lasted_its_time_limit_and_one_still_running_is_left_out() -> None:
    bob = raw("bob", [run("drift", 30.0, None, wrong=2, score=30.0), {**run("x", None, None), "finished": False}])
    found = statements([Bundle.model_validate(sign(bob, KEY.encode()))])
    assert [s["object"]["definition"]["name"]["en-US"] for s in found] == ["lab-01", "drift"]
    (_, drift) = found
    assert drift["verb"]["display"] == {"en-US": "failed"} and drift["result"]["duration"] == "PT10M"
    assert drift["result"]["extensions"][f"{HOME_PAGE}/xapi/wrong_declarations"] == 2


def test_the_gradebook_has_a_row_per_learner_and_a_column_per_lab() -> None:
    rows = list(csv.DictReader(io.StringIO(gradebook_csv(bundles(), ["lab-01", "lab-02"]))))
    assert [r["learner"] for r in rows] == ["ada", "bob", "cy"]
    ada, bob, cy = rows
    assert (ada["lab-01"], ada["lab-02"], ada["labs_completed"]) == ("100", "", "1")
    assert (ada["drill_runs"], ada["drills_remediated"], ada["mean_drill_score"]) == ("2", "2", "92.5")
    assert ada["capstone"] == "" and bob["capstone"] == ""  # finished, but no score: none to grade
    scored = Bundle.model_validate(
        sign({**bundles()[0].model_dump(exclude={"signature"}), "capstone": CAPSTONE}, KEY.encode())
    )
    assert next(csv.DictReader(io.StringIO(gradebook_csv([scored], ["lab-01"]))))["capstone"] == "72.5"
    assert (cy["drill_runs"], cy["drills_remediated"], cy["mean_drill_score"]) == ("2", "1", "35")


def test_a_result_exported_again_later_is_the_same_statement() -> None:
    def exported(at: float) -> Bundle:
        body = {**raw("ada", [{**run("drift", 10.0, 40.0), "run_id": "r1", "injected_at": 50.0}]), "exported_at": at}
        body["labs"] = [{**body["labs"][0], "checked_at": 20.0}]
        body["capstone"] = {**CAPSTONE, "ended_at": 30.0}
        return Bundle.model_validate(sign(body, KEY.encode()))

    first, later = statements([exported(100.0)]), statements([exported(9_000.0)])
    assert [s["id"] for s in first] == [s["id"] for s in later] and len(first) == 3
    assert [s["timestamp"] for s in first] == [
        "1970-01-01T00:00:20.000Z", "1970-01-01T00:00:50.000Z", "1970-01-01T00:00:30.000Z"]  # fmt: skip
