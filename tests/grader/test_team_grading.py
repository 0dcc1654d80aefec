"""A team's drill run: any member's right declaration detects it, any member's move can mitigate or fix it, and
each member's own part is graded; a team's run is in each member's bundle. Pure, but for the CLI's checks."""

from __future__ import annotations

import pytest

from drills.teams import parse_team, team_args
from grader.grading import grade
from grader.results import build_bundle
from lab_runtime.errors import LabError
from lab_runtime.events import DRILL_STARTED
from tests.cli import lab, one_line_error
from tests.grader.test_grading import Journal

TEAM = {"name": "blue", "members": ["ada", "bob", "cy"], "roles": {"ada": "commander", "bob": "operator"}}


def team_run() -> Journal:
    """Injected at 10 s; ada guesses wrong at 20 s, bob declares right at 30 s, cy too at 35 s; bob throttles at
    40 s (the impact stops), ada rolls back at 50 s (the fix); remediated from 60 s."""
    j = Journal()
    j.add(0, DRILL_STARTED, "blue", "r1", drill="drift-x", diagnosis="data-drift", time_limit=600.0, hold=30.0,
          team=TEAM)  # fmt: skip
    j.inject(10, learner="blue")
    j.declare(20, "latency", learner="ada")
    j.declare(30, "data-drift", learner="bob")
    j.declare(35, "data-drift", learner="cy")
    j.act(36, "monitor.report", learner="cy")  # looking fixes nothing
    j.act(40, "feature.throttle", learner="bob")
    j.mitigated(45, 41, 41)
    j.act(50, "pipeline.rollback", learner="ada")
    j.remediated(90, 60, learner="blue", fixed_by=51)
    j.end(95, "remediated", learner="blue")
    j.declare(40, "data-drift", learner="eve")  # not a member: no part in the run
    return j


def test_a_team_run_is_detected_mitigated_and_fixed_by_its_members() -> None:
    (g,) = grade(team_run().events)
    assert (g.learner, g.team, g.outcome) == ("blue", "blue", "remediated")
    assert (g.ttd, g.wrong_declarations, g.detected_by) == (pytest.approx(20.0), 1, "bob")
    assert (g.ttm, g.mitigated_by) == (pytest.approx(30.0), "bob")
    assert (g.ttr, g.remediated_by) == (pytest.approx(40.0), "ada")
    parts = {m.learner: m for m in g.members}
    assert list(parts) == ["ada", "bob", "cy"]
    ada, bob, cy = parts["ada"], parts["bob"], parts["cy"]
    assert (ada.role, ada.ttd, ada.wrong_declarations, ada.actions, ada.remediated) == ("commander", None, 1, 1, True)
    assert (bob.role, bob.ttd, bob.actions, bob.mitigated, bob.remediated) == ("operator", 20.0, 1, True, False)
    assert (cy.role, cy.ttd, cy.actions, cy.mitigated) == (None, 25.0, 0, False)


def test_a_solo_run_says_who_did_it_and_has_no_members() -> None:
    j = Journal()
    j.drill(0)
    j.inject(10)
    j.declare(20, "data-drift")
    j.act(30, "pipeline.rollback")
    j.remediated(60, 35)
    j.end(65, "remediated")
    (g,) = grade(j.events)
    assert (g.team, g.detected_by, g.remediated_by, g.members) == (None, "ada", "ada", ())


def test_a_team_run_is_in_each_members_bundle_and_nobody_elses() -> None:
    events = team_run().events
    for member in ("ada", "bob", "cy"):
        (run,) = build_bundle(events, member, 0.0)["runs"]
        assert run["team"] == "blue" and len(run["members"]) == 3
    assert build_bundle(events, "eve", 0.0)["runs"] == []


@pytest.mark.parametrize(
    ("members", "roles", "message"),
    [
        ("ada", None, "--members 'ada': name two or more different learners"),
        ("ada,ada", None, "--members 'ada,ada': name two or more different learners"),
        ("ada,bob", "cy=commander", "--roles 'cy=commander': 'cy' is not a member (ada, bob)"),
        (
            "ada,bob",
            "ada=boss",
            "--roles 'ada=boss': unknown role 'boss'; roles are commander, operator, communications",
        ),
        ("ada,blue", None, "--team 'blue' is also a member's name"),
    ],
)
def test_a_bad_team_is_refused_naming_what_is_wrong(members: str, roles: str | None, message: str) -> None:
    with pytest.raises(LabError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        parse_team("blue", members, roles)


def test_a_team_goes_to_a_background_runner_whole() -> None:
    team = parse_team("blue", "ada, bob", "ada=commander")
    assert team_args(team) == ["--team", "blue", "--members", "ada,bob", "--roles", "ada=commander"]
    assert team_args(None) == []


def test_lab_drill_run_refuses_half_a_team(lab_env: dict[str, str]) -> None:
    one_line_error(
        lab("drill", "run", "drift-credit-score-shift", "--team", "blue"), "a team needs --team NAME and --members"
    )
    one_line_error(
        lab("drill", "run", "drift-credit-score-shift", "--team", "blue", "--members", "a,b", "--learner", "a"),
        "--learner and --team exclude each other: the team's members act as themselves",
    )


def test_the_cohort_counts_a_team_run_once_and_says_who_did_what() -> None:
    from grader.cohort import cohort
    from grader.report import to_html
    from grader.results import Bundle, sign
    from tests.grader.test_cohort import KEY

    events = team_run().events
    bundles = [Bundle.model_validate(sign(build_bundle(events, m, 1.0), KEY.encode())) for m in ("ada", "bob", "cy")]
    c = cohort("spring", bundles)
    assert [(d.drill, d.runs) for d in c.drills] == [("drift-x", 1)]  # in three bundles, one run
    (team,) = c.teams
    assert (team.team, team.members, team.roles, team.runs) == (
        "blue", ("ada", "bob", "cy"), {"ada": "commander", "bob": "operator"}, 1)  # fmt: skip
    assert (team.detected_by, team.mitigated_by, team.remediated_by) == ({"bob": 1}, {"bob": 1}, {"ada": 1})
    page = to_html(c)
    assert "<h2 id='teams'>Teams</h2>" in page and "ada (commander), bob (operator), cy" in page
