"""The skills matrix: the shipped file and its references, bad files refused naming file and field, a learner's
levels from their results, the gaps to a role's milestone, and `lab skills` on a journal and on a bundle."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from grader.skills import Matrix, References, Results, levels, load_matrix, progress
from lab_runtime.cli import app
from lab_runtime.cli.skills import references
from lab_runtime.errors import InvalidSkills
from lab_runtime.events import LAB_CHECK, LAB_STARTED
from lab_runtime.journal import Journal
from tests.grader.test_grade_command import state, write_run  # noqa: F401  (a fixture)

KINDS = {"drift-a": "drift", "drift-b": "drift", "out-a": "output", "canary-a": "canary"}
REFS = References({"lab-01": ["train", "register"], "lab-02": ["alert"]}, KINDS)


def matrix(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "levels": [{"level": n, "name": f"l{n}", "meaning": "m"} for n in (1, 2, 3)],
        "skills": [
            {"id": "deploy", "title": "Deploy", "evidence": [
                {"level": 1, "lab": "lab-01", "steps": ["train"]},
                {"level": 2, "lab": "lab-01"},
            ]},
            {"id": "detect", "title": "Detect", "evidence": [
                {"level": 1, "lab": "lab-02"},
                {"level": 2, "drill": {"kind": "drift", "outcome": "detected", "blind": True}},
                {"level": 3, "drill": {"kind": "drift", "outcome": "detected", "blind": True, "within": "1m",
                                       "count": 2}},
                {"level": 3, "capstone": {"dimension": "detection", "min": 0.66}},
            ]},
            {"id": "choose", "title": "Choose", "evidence": [
                {"level": 2, "drill": {"id": "out-a", "outcome": "mitigated", "best_lever": True}},
            ]},
        ],
        "roles": [{"id": "sre", "title": "SRE", "milestones": {
            "day-30": {"deploy": 1}, "day-60": {"deploy": 2, "detect": 1}, "day-90": {"deploy": 2, "detect": 3}}}],
    }  # fmt: skip
    return {**data, **changes}


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "skills.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@dataclass(frozen=True)
class Lab:
    lab: str
    completed: bool
    steps: tuple[str, ...]


@dataclass(frozen=True)
class Run:
    drill: str
    blind: bool = True
    finished: bool = True
    ttd: float | None = 30.0
    ttm: float | None = None
    ttr: float | None = None
    verdict: str | None = None


def test_the_shipped_matrix_names_only_real_labs_steps_drills_and_dimensions() -> None:
    shipped = load_matrix(references())
    assert {r.id for r in shipped.roles} == {"ml-engineer", "platform-engineer", "sre", "administrator"}
    assert len(shipped.skills) >= 7 and [lv.name for lv in shipped.levels] == ["practised", "independent", "proficient"]
    # every role's day-90 milestone is reachable: each skill it needs has evidence up to that level
    top = {s.id: max(e.level for e in s.evidence) for s in shipped.skills}
    assert all(top[k] >= n for r in shipped.roles for k, n in r.milestones["day-90"].items())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"skills": [{"id": "x", "title": "X", "evidence": [{"level": 1, "lab": "lab-09"}]}]},
            "skills.0.evidence.0.lab: unknown lab 'lab-09'; labs are lab-01, lab-02",
        ),
        (
            {"skills": [{"id": "x", "title": "X", "evidence": [{"level": 1, "lab": "lab-01", "steps": ["deploy"]}]}]},
            "skills.0.evidence.0.steps: lab-01 has no step 'deploy'; its steps are train, register",
        ),
        (
            {"skills": [{"id": "x", "title": "X", "evidence": [{"level": 1, "drill": {"kind": "chaos"}}]}]},
            "skills.0.evidence.0.drill.kind: unknown drill kind 'chaos'; kinds are canary, drift, output",
        ),
        (
            {"skills": [{"id": "x", "title": "X", "evidence": [{"level": 1, "drill": {"id": "drift-z"}}]}]},
            "skills.0.evidence.0.drill.id: no drill 'drift-z' in the catalog",
        ),
        (
            {
                "skills": [
                    {"id": "x", "title": "X", "evidence": [{"level": 1, "capstone": {"dimension": "luck", "min": 1}}]}
                ]
            },
            "skills.0.evidence.0.capstone.dimension: unknown dimension 'luck'",
        ),
    ],
)
def test_a_reference_to_nothing_is_refused_naming_the_file_and_the_field(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    data = matrix(**change)
    data["roles"] = [{"id": "sre", "title": "SRE", "milestones": {d: {} for d in ("day-30", "day-60", "day-90")}}]
    path = write(tmp_path, data)
    with pytest.raises(InvalidSkills) as raised:
        load_matrix(REFS, path)
    assert str(raised.value).startswith(f"{path}: ") and message in str(raised.value)


@pytest.mark.parametrize(
    ("roles", "message"),
    [
        (
            [{"id": "sre", "title": "S", "milestones": {"day-30": {"fly": 1}, "day-60": {}, "day-90": {}}}],
            "role sre, day-30: unknown skill(s) fly; skills are",
        ),
        (
            [{"id": "sre", "title": "S", "milestones": {"day-30": {"deploy": 4}, "day-60": {}, "day-90": {}}}],
            "role sre, day-30, deploy: level 4 is not between 0 and 3",
        ),
        (
            [
                {
                    "id": "sre",
                    "title": "S",
                    "milestones": {"day-30": {"deploy": 2}, "day-60": {"deploy": 1}, "day-90": {"deploy": 2}},
                }
            ],
            "role sre, day-60, deploy: needs level 2 or more (an earlier milestone does)",
        ),
        (
            [{"id": "sre", "title": "S", "milestones": {"day-30": {}, "day-90": {}}}],
            "role sre: give the milestones day-30, day-60, day-90",
        ),
        (
            [{"id": "sre", "title": "S", "milestones": {"day-30": {}, "day-45": {}}}],
            "role sre: unknown milestone(s) day-45; use day-30, day-60, day-90",
        ),
    ],
)
def test_a_role_that_names_an_unknown_skill_or_level_is_refused(
    tmp_path: Path, roles: list[dict[str, Any]], message: str
) -> None:
    path = write(tmp_path, matrix(roles=roles))
    with pytest.raises(InvalidSkills, match=f"^{path}: ") as raised:
        load_matrix(REFS, path)
    assert message in str(raised.value)


def test_evidence_names_one_source_and_levels_count_from_one(tmp_path: Path) -> None:
    both = matrix(skills=[{"id": "x", "title": "X", "evidence": [{"level": 1, "lab": "lab-01", "drill": {"id": "a"}}]}])
    with pytest.raises(
        InvalidSkills, match=r"skills\.0\.evidence\.0: Value error, give one of `lab`, `drill` or `capstone`"
    ):
        load_matrix(REFS, write(tmp_path, both))
    gap = matrix(levels=[{"level": 1, "name": "a", "meaning": "m"}, {"level": 3, "name": "c", "meaning": "m"}])
    with pytest.raises(InvalidSkills, match=r"levels: number them 1, 2, ... in order \(got \[1, 3\]\)"):
        load_matrix(REFS, write(tmp_path, gap))


def levels_of(results: Results) -> dict[str, tuple[int, str | None]]:
    return {s.skill: (s.level, s.evidence) for s in levels(Matrix.model_validate(matrix()), results, KINDS)}


def test_a_level_is_the_highest_any_evidence_shows() -> None:
    assert levels_of(Results([], [])) == {"deploy": (0, None), "detect": (0, None), "choose": (0, None)}
    partly = Results([Lab("lab-01", False, ("train",))], [Run("drift-a", blind=False)])
    assert levels_of(partly)["deploy"] == (1, "lab-01 steps train")
    assert levels_of(partly)["detect"] == (0, None)  # a drill the learner chose: not blind
    runs = [Run("drift-a"), Run("drift-b", ttd=90.0), Run("canary-a")]
    found = levels_of(Results([Lab("lab-01", True, ("train", "register"))], runs))
    assert found["deploy"] == (2, "lab-01 completed")
    assert found["detect"] == (2, "2 drift drill run(s) detected blind")  # one of them over a minute: not level 3
    fast = levels_of(Results([], [Run("drift-a"), Run("drift-b", ttd=59.0), Run("drift-a", finished=False)]))
    assert fast["detect"] == (3, "2 drift drill run(s) detected blind within 1m")


def test_a_capstone_line_and_the_best_lever_are_evidence_too() -> None:
    capstone = {"finished": True, "passed": False, "dimensions": {"detection": 0.67}}
    assert levels_of(Results([], [], capstone))["detect"] == (3, "capstone detection 67%")
    assert levels_of(Results([], [], {**capstone, "finished": False}))["detect"] == (0, None)
    harmful = Run("out-a", ttm=20.0, verdict="harmful")
    assert levels_of(Results([], [harmful]))["choose"] == (0, None)
    best = Run("out-a", ttm=20.0, verdict="best")
    assert levels_of(Results([], [best]))["choose"] == (2, "1 out-a run(s) mitigated")


def test_progress_names_the_next_milestone_and_its_gaps() -> None:
    m = Matrix.model_validate(matrix())
    sre = m.role("sre")
    found = levels(m, Results([Lab("lab-01", True, ("train", "register"))], []), KINDS)
    standing = progress(sre, found)
    assert (standing.milestone, standing.met) == ("day-60", ("day-30",))
    assert [(g.skill, g.level, g.needed) for g in standing.gaps] == [("detect", 0, 1)]
    later = progress(sre, found, "day-90")
    assert [(g.skill, g.needed) for g in later.gaps] == [("detect", 3)]
    with pytest.raises(InvalidSkills, match="unknown role 'cto'; roles are sre"):
        m.role("cto")


def test_lab_skills_reads_the_journal_and_a_verified_bundle(state: Path, tmp_path: Path) -> None:  # noqa: F811
    runner = CliRunner()
    cli = Journal(state / "journal.db", source="cli", learner="ada")
    cli.append(LAB_STARTED, {"lab": "lab-01", "workspace": "w"})
    steps = [{"id": s, "passed": True} for s in ("log-run", "register", "signature", "second-version", "champion",
                                                 "served", "predict")]  # fmt: skip
    cli.append(LAB_CHECK, {"lab": "lab-01", "passed": 7, "steps": steps})
    write_run(state, "ada", "r1", 12.5, 20, drill_id="drift-credit-score-shift", blind=True)
    shown = runner.invoke(app, ["skills", "--learner", "ada", "--role", "ml-engineer", "--json"])
    assert shown.exit_code == 0, shown.output
    found = json.loads(shown.stdout)
    by_skill = {s["skill"]: (s["level"], s["evidence"], s["needed"]) for s in found["skills"]}
    assert by_skill["deploy-and-version"] == (1, "lab-01 completed", 1)  # day-30 needs level 1
    assert by_skill["monitor-and-detect"] == (2, "1 drift drill run(s) detected blind", 1)
    assert found["role"]["milestone"] == "day-30" and [g["skill"] for g in found["role"]["gaps"]] == ["evaluate"]
    table = runner.invoke(app, ["skills", "--learner", "ada", "--role", "ml-engineer"])
    assert "ML engineer: day-30 needs 1 more: evaluate 0->1 (no milestone met yet)" in table.stdout

    key = ["--key-file", str(tmp_path / "key")]
    (tmp_path / "key").write_text("k" * 64)
    out = tmp_path / "ada.json"
    assert runner.invoke(app, ["results", "export", "--out", str(out), "--learner", "ada", *key]).exit_code == 0
    bundled = json.loads(runner.invoke(app, ["skills", "--bundle", str(out), "--json", *key]).stdout)
    assert bundled["learner"] == "ada" and bundled["skills"] == [{**s, "needed": None} for s in found["skills"]]
    out.write_text(out.read_text().replace('"completed": true', '"completed": false'))
    refused = runner.invoke(app, ["skills", "--bundle", str(out), *key])
    assert refused.exit_code == 1 and "was changed after it was signed" in refused.output
    wrong = runner.invoke(app, ["skills", "--milestone", "day-60"])
    assert wrong.exit_code == 1 and "--milestone needs --role" in wrong.output
