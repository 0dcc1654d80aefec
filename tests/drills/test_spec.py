"""Drill files: the whole catalog validates, and every kind of mistake is named with its file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from drills.conditions import judge, parse_condition
from drills.schedule import draw_delay, gameday, pick
from drills.spec import KINDS, catalog, find_drill, load_drill
from lab_runtime.cli import app
from lab_runtime.errors import InvalidDrill, LabError, NotFound
from lab_runtime.labs.diagnoses import DIAGNOSES

GOOD: dict = {
    "id": "my-drill",
    "title": "A drill",
    "kind": "incident",
    "difficulty": "easy",
    "brief": "Something breaks.",
    "diagnosis": "latency",
    "faults": [{"type": "latency", "args": {"latency_ms": 300}}],
    "remediation": {"conditions": ["latency_p99_ms < 250"], "hold": "20s", "reference": ["lab restart model-service"]},
    "time_limit": "5m",
}
TABLE = {
    "rollback": {"verdict": "best", "points": 20, "why": "a safe version exists"},
    "disable": {"verdict": "acceptable", "points": 5, "why": "everyone waits for a human"},
    "throttle": {"verdict": "harmful", "points": -20, "why": "the harm goes on"},
}
OUTPUT = {**GOOD, "kind": "output", "diagnosis": "unsafe-output", "decision": TABLE}


def write(tmp_path: Path, body: dict, name: str = "my-drill") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def test_the_catalog_has_at_least_ten_valid_drills_across_the_four_kinds() -> None:
    drills = catalog()
    assert len(drills) >= 10
    assert {d.kind for d in drills} == set(KINDS)
    assert {d.diagnosis for d in drills} == set(DIAGNOSES), "every diagnosis has a drill"
    for drill in drills:
        assert drill.remediation.reference and all(c.startswith("lab ") for c in drill.remediation.reference)
        for fault in drill.faults:
            fault.build()  # arguments bind to the fault's parameters


def test_a_good_drill_loads_with_durations_in_seconds(tmp_path: Path) -> None:
    drill = load_drill(write(tmp_path, GOOD))
    assert drill.remediation.hold == 20.0 and drill.time_limit == 300.0
    assert str(drill.steady()[0]) == "up.model-service == 1"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"faults": [{"type": "meteor", "args": {}}]}, "faults.0: Value error, unknown fault type 'meteor'; types are"),
        ({"faults": [{"type": "latency", "args": {"latency": 3}}]}, "latency args: latency_ms: Field required"),
        ({"faults": [{"type": "latency", "args": {"latency_ms": -1}}]}, "latency_ms: Input should be greater than 0"),
        ({"faults": [{"type": "errors", "args": {"status": 404}}]}, "errors args: status: Input should be greater"),
        (
            {"faults": [{"type": "covariate_drift", "args": {"features": ["region"]}}]},
            "features: Value error, region not numeric features",
        ),
        (
            {"faults": [{"type": "schema_skew", "args": {"change": "typo"}}]},
            "schema_skew args: change: Input should be",
        ),
        (
            {"faults": [{"type": "latency", "args": {"latency_ms": 5}, "at": "soon"}]},
            "faults.0.at: Value error, 'soon'",
        ),
        ({"faults": []}, "faults: Tuple should have at least 1 item"),
        ({"diagnosis": "gremlins"}, "diagnosis: Value error, unknown diagnosis 'gremlins'; diagnoses are data-drift"),
        ({"kind": "chaos"}, "kind: Input should be 'drift', 'canary', 'rollback', 'incident' or 'output'"),
        ({"steady_state": ["p99 < 3"]}, "steady_state: Value error, unknown signal 'p99'"),
        ({"steady_state": ["error_rate is low"]}, "'error_rate is low' is not a condition; write `signal op number`"),
        ({"time_limit": "15s"}, "time_limit 15s leaves no time to remediate"),
        ({"surprise": 1}, "surprise: Extra inputs are not permitted"),
        ({"time_limit": "7h"}, "the model service holds a latency fault for at most 21540s"),
        (
            {"faults": [{"type": "schema_skew", "args": {"change": "unit", "feature": "region"}}]},
            "a unit change needs one of age, income",
        ),
        ({**OUTPUT, "decision": None}, "an output drill needs a decision table: per lever"),
        ({"decision": TABLE}, "a decision table belongs to output drills, not to incident drills"),
        (
            {**OUTPUT, "decision": {**TABLE, "retrain": {"verdict": "best", "points": 1, "why": "w"}}},
            "decision: Value error, unknown lever 'retrain'; levers are rollback, disable, throttle",
        ),
        (
            {**OUTPUT, "decision": {k: v for k, v in TABLE.items() if k != "throttle"}},
            "decision: Value error, the table does not judge throttle; give every lever a verdict",
        ),
        (
            {**OUTPUT, "decision": {**TABLE, "rollback": {**TABLE["rollback"], "verdict": "acceptable"}}},
            "decision: Value error, the table names no best lever",
        ),
        (
            {**OUTPUT, "decision": {**TABLE, "disable": {"verdict": "fine", "points": 1, "why": "w"}}},
            "decision.disable.verdict: Input should be 'best', 'acceptable' or 'harmful'",
        ),
        (
            {"faults": [{"type": "overload", "args": {"capacity": 1.5, "latency_ms": 100, "degraded": ["region"]}}]},
            "overload args: degraded: Value error, unknown numeric feature 'region'",
        ),
        ({"faults": [{"type": "load_surge", "args": {"factor": 0.5}}]}, "load_surge args: factor: Input should be"),
        (
            {"faults": [{"type": "source_change", "args": {"change": {"type": "rename", "feature": "age"}}}]},
            "source_change args: change",
        ),
    ],
)
def test_a_bad_drill_is_refused_naming_the_file_and_the_field(tmp_path: Path, change: dict, message: str) -> None:
    path = write(tmp_path, {**GOOD, **change})
    with pytest.raises(InvalidDrill) as caught:
        load_drill(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_a_bad_fault_is_the_only_error_named_not_also_an_empty_fault_list(tmp_path: Path) -> None:
    path = write(tmp_path, {**GOOD, "faults": [{"type": "meteor"}]})
    with pytest.raises(InvalidDrill) as caught:
        load_drill(path)
    types = "covariate_drift, schema_skew, concept_drift, latency, errors, bad_model, dependency_outage, service_crash"
    assert str(caught.value) == (
        f"{path}: faults.0: Value error, unknown fault type 'meteor'; types are {types}, feedback_outage, "
        "network_latency, container_limits, source_change, load_surge, overload"
    )
    path = write(tmp_path, {**GOOD, "faults": [{"type": "latency", "args": {"latency_ms": 5}, "at": "soon"}]})
    with pytest.raises(InvalidDrill) as caught:
        load_drill(path)
    assert str(caught.value) == (
        f"{path}: faults.0.at: Value error, 'soon' is not a duration; write it like 30s, 2m, 1h30m or 250ms"
    )


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"latency_ms": 300, "jitter_ms": True}, "jitter_ms"),
        ({"latency_ms": True}, "latency_ms"),
        ({"latency_ms": "300"}, "latency_ms"),
        ({"latency_ms": 300, "share": False}, "share"),
    ],
)
def test_a_fault_argument_that_is_a_number_must_be_written_as_one(tmp_path: Path, args: dict, field: str) -> None:
    path = write(tmp_path, {**GOOD, "faults": [{"type": "latency", "args": args}]})
    with pytest.raises(InvalidDrill) as caught:
        load_drill(path)
    assert str(caught.value) == f"{path}: faults.0: Value error, latency args: {field}: Input should be a valid number"


def test_a_remediation_needs_conditions_and_a_reference(tmp_path: Path) -> None:
    path = write(tmp_path, {**GOOD, "remediation": {"conditions": [], "reference": []}})
    with pytest.raises(InvalidDrill, match=r"remediation.conditions: .*at least 1 item.*remediation.reference"):
        load_drill(path)


def test_the_id_must_match_the_file_name_and_unknown_ids_list_the_catalog(tmp_path: Path) -> None:
    with pytest.raises(InvalidDrill, match="must match the file name"):
        load_drill(write(tmp_path, GOOD, name="other"))
    with pytest.raises(NotFound, match="no drill 'nope'; drills are canary-"):
        find_drill("nope")


def test_lab_drill_validate_reports_every_bad_file_and_exits_1(tmp_path: Path) -> None:
    good = write(tmp_path, GOOD)
    bad = write(tmp_path, {**GOOD, "id": "bad", "diagnosis": "gremlins"}, name="bad")
    result = CliRunner().invoke(app, ["drill", "validate", str(good), str(bad)])
    assert result.exit_code == 1
    assert f"ok  {good}" in result.output and "unknown diagnosis 'gremlins'" in result.output
    assert CliRunner().invoke(app, ["drill", "validate"]).exit_code == 0


def test_conditions_parse_judge_and_report_what_fails() -> None:
    conditions = (parse_condition("error_rate < 0.05"), parse_condition("up.mlflow == 1"))
    assert judge(conditions, {"error_rate": 0.01, "up.mlflow": 1}).ok
    verdict = judge(conditions, {"error_rate": 0.2})
    assert not verdict.ok and verdict.failing == ("error_rate < 0.05: is 0.2", "up.mlflow == 1: no value yet")
    with pytest.raises(ValueError, match=r"the threshold must be a finite number"):
        parse_condition("error_rate < inf")


def test_seeded_choices_replay_exactly_and_differ_across_seeds() -> None:
    assert draw_delay(7, "d", None, (60, 300)) == draw_delay(7, "d", None, (60, 300))
    assert 60 <= draw_delay(7, "d", None, (60, 300)) <= 300
    assert draw_delay(7, "d", 30.0, None) == 30.0 and draw_delay(7, "d", None, None) == 0.0
    assert len({draw_delay(s, "d", None, (0, 1000)) for s in range(20)}) == 20
    ids = [d.id for d in catalog()]
    assert pick(3, ids) == pick(3, ids) and len({pick(s, ids) for s in range(40)}) > 3
    assert gameday(5, ["a", "b"], (1, 2)) == gameday(5, ["a", "b"], (1, 2))
    with pytest.raises(LabError, match="shorter delay first"):
        draw_delay(1, "d", None, (5, 1))
