"""Every drill of the catalog, on a real sandbox: injected, detected by an automated learner, remediated with the
drill's reference remediation, reverted, and journaled in order."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from drills.faults.pipeline import UNDONE_VIA
from drills.spec import Drill, catalog, find_drill
from grader.grading import grade_run
from lab_runtime import events as kinds
from lab_runtime.labs.catalog import all_labs
from lab_runtime.pipeline.store import ReleaseStore
from lab_runtime.registry import model_ops
from lab_runtime.registry.rest import CHALLENGER, CHAMPION
from lab_runtime.settings import Settings
from tests.drills.learner import drill_argv, events, in_order, lab, solve
from tests.sandbox import Sandbox, wait_for

pytestmark = pytest.mark.integration
# The drills labs start are run end to end by the labs' own tests (tests/e2e), by a learner's reference solution;
# the container drills (compose runtime only) by tests/e2e/test_compose.py.
IN_LABS = {event.run_drill for lab in all_labs() for event in lab.events if event.run_drill}
ON_COMPOSE = {d.id for d in catalog() if "local" not in d.runtimes}
# Each output drill with a learner pulling a lever of each verdict first, then what remediates.
OUTPUT_MOVES = {
    "output-unsafe-champion": ("throttle", "harmful", ["lab feature throttle 0.5", "lab model rollback",
                                                      "lab feature enable"]),
    "output-load-surge": ("disable", "acceptable", ["lab feature disable"]),
    "output-bureau-rescale": ("disable", "best", ["lab feature disable",  # its reference on a window FAST fills sooner
                                                  "lab model retrain --window 15s --min-rows 200 --promote",
                                                  "lab feature enable"]),
}  # fmt: skip
DRILLS = {d.id: d for d in catalog() if d.id not in IN_LABS | ON_COMPOSE | set(OUTPUT_MOVES)}
LEARNED = {"concept_drift", "source_change"}  # a version trained while one holds learned it


def retrain_undone_with_its_world(settings: Settings, drill: Drill, before: str) -> None:
    """After a drill that changed what a model learns from: @champion back on the version it had before, the
    change in `lab model history` as the drill's end (the learner's retrain was promoted during the drill)."""
    assert {f.type for f in drill.faults} & LEARNED, drill.id

    def back() -> bool:
        changes = json.loads(lab("model", "history", "--alias", CHAMPION, "--json"))
        last = changes[-1]
        return bool(last["after"] == before and last["via"].startswith(f"{UNDONE_VIA}: version"))

    wait_for(back, 10, f"@champion back on version {before}, by the drill's end")
    assert model_ops.aliases(settings)[CHAMPION] == before


def test_every_drill_is_run_here_or_by_a_lab_test() -> None:
    assert {"canary-swapped-build", "rollback-nightly-promotions", "incident-error-burst", *OUTPUT_MOVES} == IN_LABS
    assert {"incident-service-starved", "incident-registry-slow-network"} == ON_COMPOSE
    assert set(DRILLS) | IN_LABS | ON_COMPOSE | set(OUTPUT_MOVES) == {d.id for d in catalog()}
    assert set(OUTPUT_MOVES) == {d.id for d in catalog() if d.kind == "output"}


def test_a_container_drill_is_refused_on_the_local_runtime(sandbox: Sandbox) -> None:
    result = subprocess.run(drill_argv("incident-service-starved"), capture_output=True, text=True, timeout=60)
    said = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in said
    assert "drill incident-service-starved needs the compose runtime" in said and "lab up --runtime compose" in said


@pytest.fixture
def healthy(sandbox: Sandbox) -> Iterator[Sandbox]:
    """After each drill: the first version champion again, no challenger."""
    yield sandbox
    settings, v1 = sandbox.settings, sandbox.versions[0].version
    aliases = model_ops.aliases(settings)
    if aliases.get(CHAMPION) != v1:
        model_ops.set_alias(settings, CHAMPION, v1)
    if CHALLENGER in aliases:
        model_ops.delete_alias(settings, CHALLENGER)
        model_ops.set_canary_weight(settings, 0.0)
    lab("feature", "enable")  # a learner's throttle or disable outlives the drill

    def serving_v1() -> bool:
        body = httpx.get(f"{settings.service_url}/model", timeout=2).json()
        return bool(body["champion"] == v1 and body["challenger"] is None)

    wait_for(serving_v1, 30, "v1 serving alone")


@pytest.mark.parametrize("drill_id", sorted(DRILLS))
def test_the_drill_is_detected_remediated_and_reverted(healthy: Sandbox, drill_id: str) -> None:
    drill, settings = DRILLS[drill_id], healthy.settings
    outcome = solve(settings, drill)
    assert outcome.returncode == 0, outcome.output
    ended = [e for e in outcome.events if e.kind == kinds.DRILL_ENDED]
    assert len(ended) == 1 and ended[0].payload["outcome"] == "remediated", outcome.output
    assert ended[0].payload["steady_after"] is True, outcome.output
    injected = [e for e in outcome.events if e.kind == kinds.FAULT_INJECTED]
    reverted = [e for e in outcome.events if e.kind == kinds.FAULT_REVERTED]
    assert len(injected) == len(drill.faults) == len(reverted)
    assert in_order(
        outcome.events,
        [
            kinds.DRILL_STARTED,
            kinds.FAULT_INJECTED,
            kinds.PROBE_RESULT,
            kinds.DRILL_REMEDIATED,
            kinds.FAULT_REVERTED,
            kinds.DRILL_STEADY_STATE,
            kinds.DRILL_ENDED,
        ],
    ), [e.kind for e in outcome.events]
    assert all(e.learner == "ada" and e.source == "drill" for e in outcome.events)
    with ReleaseStore(settings.pipeline_db_path) as store:
        assert store.active().version == "v1" and not store.conditions()
    if any("retrain" in command for command in drill.remediation.reference):
        retrain_undone_with_its_world(settings, drill, healthy.versions[0].version)


@pytest.mark.parametrize("drill_id", sorted(OUTPUT_MOVES))
def test_an_output_drill_grades_the_first_lever_pulled_by_its_table_and_counts_the_unsafe_decisions(
    healthy: Sandbox, drill_id: str
) -> None:
    drill, settings = find_drill(drill_id), healthy.settings
    lever, verdict, commands = OUTPUT_MOVES[drill_id]
    assert drill.decision is not None and drill.decision[lever].verdict == verdict
    outcome = solve(healthy.settings, drill, commands=commands, signal="unsafe_output_rate")  # as its alert shows
    assert outcome.returncode == 0, outcome.output
    ended = [e for e in outcome.events if e.kind == kinds.DRILL_ENDED]
    assert ended[0].payload["outcome"] == "remediated" and ended[0].payload["steady_after"] is True, outcome.output
    (unsafe,) = [e for e in outcome.events if e.kind == kinds.DRILL_UNSAFE]
    grade = grade_run(events(settings), outcome.run_id)
    assert (grade.decision, grade.verdict, grade.outcome, grade.collateral) == (lever, verdict, "remediated", ())
    assert grade.blast_radius is not None and 0 < grade.blast_radius <= len(unsafe.payload["served"])
    assert grade.mitigated_at is not None and grade.ttd is not None and grade.ttr is not None
    points = drill.decision[lever].points
    timed = 40 * max(0.25, 1 - grade.ttd / grade.time_limit) + 40 * max(0.25, 1 - grade.ttr / grade.time_limit)
    assert grade.score == pytest.approx(max(0.0, min(100.0, timed + 20 + points)), abs=0.2)
    with ReleaseStore(settings.pipeline_db_path) as store:
        assert not store.conditions()
    if any("retrain" in command for command in commands):
        retrain_undone_with_its_world(settings, drill, healthy.versions[0].version)
