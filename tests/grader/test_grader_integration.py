"""The grader on a real sandbox, on a loaded machine: an automated learner acting through the public CLI (its own
processes) at known times after the injection gets TTD, TTM and TTR back within 100 ms, on drills of four kinds;
a capstone runs its blind drills in the background and is scored against its rubric; and the skill check's two
forms run other drills, and the cohort report pairs them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import yaml

from drills.spec import catalog, find_drill
from grader.assessment import ASSESSMENT, FORMS, draw, load_assessment
from grader.capstone import Rubric, plan
from lab_runtime.events import CAPSTONE_ENDED, DRILL_ENDED, DRILL_STARTED
from lab_runtime.settings import Settings
from tests.cli import lab, lab_process
from tests.drills.learner import events, fault_visible, last_event_id, respond, run_id_after
from tests.grader.accuracy import ACCURACY, ENV, MARKS, NO_FIX, accuracy_table, burning_cores, play_accuracy_scenario
from tests.grader.test_capstone import RULES
from tests.sandbox import Sandbox, running_sandbox, wait_for

pytestmark = pytest.mark.integration
PROBES = {"LAB_DRILL_PROBE_INTERVAL": "0.5"}  # the capstone's drills probe on FAST's clock
# A wrong guess first, a mitigation before the remediation, and a run nobody fixes: the scenario's other runs differ
# only in the command the learner types.
SHORT = ("incident-error-burst", "canary-failing-challenger", NO_FIX["id"])


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path_factory.mktemp("grader") / "state", ENV, versions=1) as box:
        yield box


@pytest.mark.timeout(600)
@pytest.mark.serial  # it burns every core itself: nothing else may run beside it
def test_ttd_ttm_and_ttr_are_the_learners_command_starts_within_100_ms_on_a_loaded_machine(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    with burning_cores():  # the marks of every kind of move; `make bench-grading` plays the whole scenario
        plays = play_accuracy_scenario(sandbox.settings, tmp_path, SHORT)
    table = accuracy_table(plays)
    print(table)
    burst, canary, nobody = (p.grade for p in plays)
    assert burst.wrong_declarations == 1, table
    assert [g.outcome for g in (burst, canary)] == ["remediated"] * 2, table
    for p in plays[:2]:
        for mark in MARKS:
            graded = getattr(p.grade, mark)
            assert graded is not None and abs(graded - p.known[mark]) <= ACCURACY, f"{p.grade.drill} {mark}\n{table}"
        recovery, ttr = p.grade.time_to_recovery, p.grade.ttr
        assert recovery is not None and ttr is not None and recovery >= ttr, table
    assert canary.ttm is not None and canary.ttr is not None and canary.ttm < canary.ttr, table
    assert nobody.ttd is not None and abs(nobody.ttd - plays[2].known["ttd"]) <= ACCURACY, table
    assert (nobody.outcome, nobody.ttm, nobody.ttr, nobody.time_to_recovery) == ("not remediated", None, None, None)


def ended(settings: Settings, run_id: str) -> bool:
    return bool(events(settings, run_id, [DRILL_ENDED]))


def respond_to_capstone(settings: Settings, since: int) -> list[str]:
    """As the learner, each capstone drill in turn (the instructor's view of the journal says which one runs: a
    learner would not know); the drills seen, once the capstone has ended."""
    seen: list[str] = []
    for _ in range(2):
        run_id = run_id_after(settings, since)
        start = events(settings, run_id, [DRILL_STARTED])[0]
        since = start.id
        assert start.payload["tag"].startswith("capstone:") and start.payload["blind"]
        seen.append(start.payload["drill"])
        respond(settings, find_drill(start.payload["drill"]), run_id)
        wait_for(partial(ended, settings, run_id), 120, "the run's end")
    wait_for(lambda: bool(events(settings, kinds_=[CAPSTONE_ENDED])), 60, "the capstone's end")
    return seen


@pytest.mark.timeout(420)
def test_a_capstone_runs_its_blind_drills_in_sequence_and_is_scored(sandbox: Sandbox, tmp_path: Path) -> None:
    settings = sandbox.settings
    rubric = tmp_path / "rubric.yaml"
    pool = {
        "drills": ["incident-latency-spike", "schema-null-column"],
        "count": 2,
        "gap": ["2s", "4s"],
        "budget": "25m",
    }
    rubric.write_text(yaml.safe_dump({**RULES, **pool}))
    assert "no capstone in the journal yet" in lab("capstone", "score").stderr
    since = last_event_id(settings)
    # its own process: the capstone's runner, started in the background, outlives the command
    started = lab_process("capstone", "start", "--seed", "5", "--rubric", str(rubric), env=PROBES)
    assert started.returncode == 0 and "2 blind drills" in started.stdout, started.stderr
    again = lab("capstone", "start", "--rubric", str(rubric))
    assert again.returncode == 1 and "is still running; see `lab capstone status`" in again.stderr
    assert "seed" not in started.stdout  # the seed names the drills
    early = lab("capstone", "score")
    assert early.returncode == 1 and "is still running; its score comes when it ends" in early.stderr
    try:
        seen = respond_to_capstone(settings, since)
    except AssertionError as exc:
        logs = "".join(p.read_text() for p in settings.logs_dir.glob("capstone-*.log"))
        ends = [e.payload for e in events(settings, kinds_=[DRILL_ENDED])]
        raise AssertionError(f"{exc}\n--- the capstone's log:\n{logs}\n--- drill ends: {ends}") from None
    limits = {d.id: d.time_limit for d in catalog()}
    assert seen == list(plan(Rubric.model_validate({**RULES, **pool}), 5, limits, 0.1).drills)  # the seed's draw
    status = json.loads(lab("capstone", "status", "--json").stdout)
    assert (status["state"], status["drills_done"], status["drills"]) == ("finished", 2, 2)
    said = lab("capstone", "status").stdout
    assert re.search(r"2 of 2 drills done, (\d+h)?(\d+m)?\d+(\.\d{1,2})?s in\n", said), said  # not "4.70787s in"
    score = json.loads(lab("capstone", "score", "--json").stdout)
    assert score["passed"] and score["runs"] == 2, score
    assert score["dimensions"]["detection"] == score["dimensions"]["remediation"] == 1.0
    table = lab("capstone", "score")
    assert "PASS" in table.stdout and "(seed 5)" in table.stdout and "detection" in table.stdout


@pytest.mark.timeout(420)
def test_a_skill_check_runs_a_baseline_then_a_final_of_other_drills_and_the_report_pairs_them(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    settings = sandbox.settings
    form_file = tmp_path / "check.yaml"
    one_slot = {"slots": [{"kind": "incident", "difficulty": "easy"}], "gap": ["1s", "2s"], "budget": "25m"}
    form_file.write_text(yaml.safe_dump({**yaml.safe_load(ASSESSMENT.read_text()), **one_slot}))
    checked = load_assessment(form_file)
    pool = {("incident", "easy"): [d.id for d in catalog() if d.kind == "incident" and d.difficulty == "easy"
                                   and "local" in d.runtimes]}  # fmt: skip
    quick = {"incident-latency-spike", "incident-error-burst", "schema-null-column"}  # the learner's quickest fixes
    seed = next(s for s in range(200) if {draw(checked, f, s, pool)[0] for f in FORMS} <= quick)
    seen: dict[str, str] = {}
    for form in FORMS:
        since, ends = last_event_id(settings), len(events(settings, kinds_=[CAPSTONE_ENDED]))
        pairing = ["--seed", str(seed)] if form == "baseline" else []  # the final takes the baseline's
        started = lab_process("assess", form, "--form-file", str(form_file), *pairing, env=PROBES)
        assert started.returncode == 0 and f"{form} skill check" in started.stdout, started.stderr
        run_id = run_id_after(settings, since)
        start = events(settings, run_id, [DRILL_STARTED])[0]
        assert start.payload["blind"] and start.payload["tag"].startswith("capstone:")
        seen[form] = start.payload["drill"]
        respond(settings, find_drill(seen[form]), run_id)
        wait_for(lambda n=ends: len(events(settings, kinds_=[CAPSTONE_ENDED])) > n, 120, f"the {form}'s end")
    assert seen == {f: draw(checked, f, seed, pool)[0] for f in FORMS} and seen["baseline"] != seen["final"]
    forms = json.loads(lab("assess", "score", "--json").stdout)
    for form in FORMS:
        assert forms[form]["finished"] and forms[form]["drills"] == [seen[form]], forms
        assert 0 < forms[form]["mttd"] < 60 and 0 < forms[form]["mttr"] < 60, forms  # solved, not time limits
    bundle = tmp_path / "cohort" / "learner.json"
    bundle.parent.mkdir()
    key = ["--key-file", str(tmp_path / "key")]
    (tmp_path / "key").write_text("k" * 64)
    assert lab("results", "export", "--out", str(bundle), *key).returncode == 0
    report = json.loads(lab("cohort", "report", str(bundle.parent), "--json", *key).stdout)
    (pair,) = report["before_after"]["pairs"]
    assert pair["before"]["mttr"] == forms["baseline"]["mttr"] and pair["after"]["mttr"] == forms["final"]["mttr"]

    # A team's baseline: bob declares, the sandbox's learner fixes; the run is the team's, its form in both bundles.
    since = last_event_id(settings)
    me = settings.learner
    team = ["--team", "blue", "--members", f"{me},bob", "--roles", "bob=commander"]
    started = lab_process("assess", "baseline", "--form-file", str(form_file), "--seed", str(seed), *team, env=PROBES)
    assert started.returncode == 0, started.stderr
    run_id = run_id_after(settings, since)
    start = events(settings, run_id, [DRILL_STARTED])[0]
    assert start.learner == "blue" and start.payload["team"]["members"] == [me, "bob"]
    drill = find_drill(start.payload["drill"])
    wait_for(lambda: fault_visible(settings, run_id, len(drill.faults)), 120, "the team's fault in the probes")
    assert lab("declare", drill.diagnosis, env={"LAB_LEARNER": "bob"}).returncode == 0
    for command in drill.remediation.reference:
        args = command.split()[1:]
        assert (lab_process if args[0] == "restart" else lab)(*args).returncode == 0
    wait_for(lambda: bool(events(settings, kinds_=[CAPSTONE_ENDED])[-1].learner == "blue"), 120, "the team's end")
    team_forms = json.loads(lab("assess", "score", "--learner", "blue", "--json").stdout)
    assert team_forms["baseline"]["finished"] and team_forms["baseline"]["mttr"] < 60, team_forms
    for member in (me, "bob"):
        out = tmp_path / "cohort" / f"{member}.json"
        assert lab("results", "export", "--out", str(out), "--learner", member, *key).returncode == 0
        assert (
            json.loads(out.read_text())["team_assessments"]["blue"]["baseline"]["mttr"]
            == team_forms["baseline"]["mttr"]
        )
    graded = {g["run_id"]: g for g in json.loads(lab("grade", "--json").stdout)}[run_id]
    assert (graded["team"], graded["detected_by"], graded["remediated_by"]) == ("blue", "bob", me)
