"""The checks of labs 03 and 04, on a journal written by hand and a registry stand-in (pure logic, no servers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lab_runtime.events import ALIAS_CHANGED, LAB_EVENT, LEARNER_ACTION
from lab_runtime.journal import Journal
from lab_runtime.labs.checks import CATALOG, CheckContext
from lab_runtime.registry.alias_history import OUTSIDE
from lab_runtime.registry.rest import CANARY_WEIGHT_TAG, ModelState
from lab_runtime.settings import Settings

T0 = 1_700_000_000.0


class Registry:
    """Stands in for the REST registry: what the aliases and tags are now."""

    def __init__(self, aliases: dict[str, str], weight: float = 0.0) -> None:
        self.state = ModelState("credit-risk", aliases, {CANARY_WEIGHT_TAG: str(weight)})

    def model(self, name: str) -> ModelState:
        return self.state


class Lab:
    def __init__(self, tmp_path: Path) -> None:
        self.settings = Settings(state_dir=tmp_path / "state")
        self.journal = Journal(self.settings.journal_path, source="cli", learner="ada")

    def event(self, ts: float, kind: str, **payload: Any) -> None:
        self.journal.append(kind, payload, ts=T0 + ts)

    def champion(self, ts: float, before: str | None, after: str, via: str = OUTSIDE) -> None:
        self.event(ts, ALIAS_CHANGED, model="credit-risk", alias="champion", before=before, after=after, via=via)

    def check(self, name: str, registry: Registry, **args: Any) -> tuple[bool, str]:
        ctx = CheckContext(self.settings, registry, T0, "lab-04")  # type: ignore[arg-type]
        result = CATALOG[name](ctx, **args)
        return result.passed, result.detail


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    lab = Lab(tmp_path)
    lab.champion(1, None, "1")
    lab.champion(5, "1", "4", via="lab model promote")
    lab.event(6, LEARNER_ACTION, action="model.promote", version="4", alias="champion", forced=False,
              gate={"4": {"accuracy": 0.81}, "1": {"accuracy": 0.82}})  # fmt: skip
    lab.event(10, LAB_EVENT, lab="lab-04", event=0, drill="x", aliases_before={"champion": "4"})
    lab.champion(12, "4", "5")  # the job, twice
    lab.champion(14, "5", "6")
    return lab


def test_the_champion_is_restored_only_by_the_learners_own_move_to_the_last_good_version(lab: Lab) -> None:
    assert lab.check("champion_restored", Registry({"champion": "6"})) == (
        False, "@champion is version 6, not the last good one; read `lab model history`"
    )  # fmt: skip
    lab.champion(20, "6", "5", via="lab model rollback")  # one rollback lands on the first bad version
    assert lab.check("champion_restored", Registry({"champion": "5"}))[0] is False
    lab.champion(22, "5", "4", via="lab model rollback")
    passed, detail = lab.check("champion_restored", Registry({"champion": "4"}))
    assert passed and detail == "@champion is back on version 4, the last good one (lab model rollback)"


def test_the_drills_own_revert_to_the_good_version_is_not_the_learners_rollback(lab: Lab) -> None:
    lab.champion(20, "6", "5", via="lab model rollback")
    lab.champion(200, "5", "4")  # the drill's time limit: its revert, outside the lab commands
    lab.event(201, LEARNER_ACTION, action="model.promote", version="4")  # a promote that changed nothing
    passed, detail = lab.check("champion_restored", Registry({"champion": "4"}))
    assert not passed and detail == "@champion is version 4, but not by your rollback (`lab model rollback`)"


def test_the_gate_check_counts_a_gated_promotion_and_not_a_forced_one(tmp_path: Path, lab: Lab) -> None:
    passed, detail = lab.check("promoted_through_gate", Registry({"champion": "4"}))
    assert passed and detail == "version 4 passed the gate (holdout accuracy: version 1 0.820, version 4 0.810)"
    forced = Lab(tmp_path / "other")
    forced.event(6, LEARNER_ACTION, action="model.promote", version="4", alias="champion", forced=True, gate={})
    assert forced.check("promoted_through_gate", Registry({"champion": "4"}))[0] is False


def test_the_canary_counts_as_aborted_only_by_the_abort_with_the_champion_untouched(tmp_path: Path) -> None:
    lab = Lab(tmp_path)
    assert lab.check("canary_aborted", Registry({"champion": "1"}))[1].startswith("the incident has not started")
    lab.event(1, LEARNER_ACTION, action="canary.start", version="2", weight=0.1)
    lab.event(10, LAB_EVENT, lab="lab-03", event=0, drill="x", aliases_before={"champion": "1", "challenger": "2"})
    running = Registry({"champion": "1", "challenger": "3"}, weight=0.1)
    assert lab.check("canary_aborted", running) == (False, "the canary still runs: version 3 gets 10%")
    ended = Registry({"champion": "1"})
    assert lab.check("canary_aborted", ended)[1].startswith("the canary ended without `lab canary abort`")
    lab.event(20, LEARNER_ACTION, action="canary.abort", version="3")
    assert lab.check("canary_aborted", Registry({"champion": "3"})) == (
        False, "@champion moved from version 1 to 3 during the incident"
    )  # fmt: skip
    assert lab.check("canary_aborted", ended) == (True, "canary aborted; @champion is still version 1")


@pytest.mark.parametrize(("weight", "passed"), [(0.1, True), (0.2, True), (0.5, False)])
def test_a_canary_must_start_small(tmp_path: Path, weight: float, passed: bool) -> None:
    lab = Lab(tmp_path)
    assert lab.check("canary_started", Registry({}), max_weight=0.2)[0] is False
    lab.event(1, LEARNER_ACTION, action="canary.start", version="2", weight=weight)
    assert lab.check("canary_started", Registry({}), max_weight=0.2)[0] is passed


def test_a_blind_incident_neither_confirms_nor_denies_a_guess_unless_the_lab_reveals(tmp_path: Path) -> None:
    from grader.grading import grade_run
    from lab_runtime.events import DRILL_STARTED, FAULT_INJECTED, LEARNER_DECLARED

    lab = Lab(tmp_path)
    drill = Journal(lab.settings.journal_path, source="drill", learner="ada")
    started = {"drill": "x", "diagnosis": "errors", "time_limit": 600.0, "blind": True}
    drill.append(DRILL_STARTED, started, run_id="b1", ts=T0 + 10)
    lab.event(11, LAB_EVENT, lab="lab-05", event=0, run_id="b1")
    drill.append(FAULT_INJECTED, {"fault": 0, "type": "errors", "details": {}}, run_id="b1", ts=T0 + 12)

    def check(**args: Any) -> tuple[bool, str]:
        ctx = CheckContext(lab.settings, Registry({}), T0, "lab-05", grade_run)  # type: ignore[arg-type]
        result = CATALOG["incident_diagnosed"](ctx, **args)
        return result.passed, result.detail

    assert check() == (False, "no diagnosis declared yet")
    lab.journal.append(LEARNER_DECLARED, {"diagnosis": "latency"}, began=T0 + 20, ts=T0 + 20.5)
    said = "declared; whether it is right shows once the incident is over (`lab grade`)"
    assert check() == (True, said)  # a wrong guess is not denied
    assert check(reveal=True) == (False, "not the right diagnosis yet (1 wrong)")
    lab.journal.append(LEARNER_DECLARED, {"diagnosis": "errors"}, began=T0 + 30, ts=T0 + 30.5)
    assert check() == (True, said)  # nor a right one confirmed
    assert check(reveal=True) == (True, "diagnosed 18s after the incident began (1 wrong)")


def test_an_empty_answers_file_still_says_todo(lab: Lab) -> None:
    answers = lab.settings.workspace_dir / "lab-04" / "answers.yaml"
    answers.parent.mkdir(parents=True)
    answers.write_text("")
    expected = "answers.yaml: credit_score_test, feature_threshold still say TODO"
    assert lab.check("report_answers", Registry({}), file="answers.yaml") == (False, expected)


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        (
            "credit_score_test: [ks\n",
            "not valid YAML: line 2, column 1: expected ',' or ']', but got '<stream end>' "
            "(while parsing a flow sequence from line 1, column 20)",
        ),
        ("- ks\n- 0.05\n", "a file of answers must be a mapping of fields, got list"),
    ],
)
def test_an_answers_file_that_is_not_a_mapping_is_one_line_naming_the_file(lab: Lab, text: str, detail: str) -> None:
    answers = lab.settings.workspace_dir / "lab-04" / "answers.yaml"
    answers.parent.mkdir(parents=True)
    answers.write_text(text)
    assert lab.check("report_answers", Registry({}), file="answers.yaml") == (False, f"{answers}: {detail}")
