from pathlib import Path
from typing import Any

import pytest
import yaml

from lab_runtime.errors import InvalidLab, NotFound
from lab_runtime.labs.catalog import StepResult, all_labs, due_events, find_lab, load_lab

GOOD: dict[str, Any] = {
    "id": "lab-09",
    "title": "A lab",
    "summary": "s",
    "objectives": ["o"],
    "brief": "b",
    "starter": ["train.py"],
    "solution": "solution.py",
    "steps": [{"id": "one", "title": "t", "hint": "h", "check": {"name": "model_versions", "args": {"min_count": 1}}}],
}
MissingTitleLab = {k: v for k, v in GOOD.items() if k != "title"}
UnknownCheckLab = {**GOOD, "steps": [{**GOOD["steps"][0], "check": {"name": "is_magic"}}]}
WrongCheckArgsLab = {**GOOD, "steps": [{**GOOD["steps"][0], "check": {"name": "model_versions", "args": {"count": 1}}}]}
DuplicateStepLab = {**GOOD, "steps": GOOD["steps"] * 2}
MissingStarterLab = {**GOOD, "starter": ["notebook.ipynb"]}
BadIdLab = {**GOOD, "id": "lab one"}
UnknownFieldLab = {**GOOD, "difficulty": "hard"}
EVENT = {"after": "one", "announce": "a release shipped", "ship_release": {"version": "v2", "note": "n"}}
EventAfterUnknownStepLab = {**GOOD, "events": [{**EVENT, "after": "two"}]}
EventBadReleaseLab = {
    **GOOD,
    "events": [{**EVENT, "ship_release": {"version": "v2", "note": "n", "transforms": [{"type": "warp"}]}}],
}

EventWithBothLab = {**GOOD, "events": [{**EVENT, "run_drill": "canary-swapped-build"}]}
EventWithNeitherLab = {**GOOD, "events": [{"after": "one", "announce": "nothing happens"}]}
EventUnknownDrillLab = {**GOOD, "events": [{"after": "one", "announce": "a", "run_drill": "meteor-strike"}]}


def write(tmp_path: Path, data: object) -> Path:
    (tmp_path / "train.py").write_text("")
    (tmp_path / "solution.py").write_text("")
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_every_shipped_lab_file_is_valid() -> None:
    labs = all_labs()
    assert "lab-01" in [lab.id for lab in labs]
    for lab in labs:
        assert (lab.directory / "README.md").is_file()


def test_a_good_lab_file_loads(tmp_path: Path) -> None:
    assert load_lab(write(tmp_path, GOOD)).steps[0].check.args == {"min_count": 1}


def test_a_lab_event_is_due_once_its_step_passes_and_only_once(tmp_path: Path) -> None:
    lab = load_lab(write(tmp_path, {**GOOD, "events": [EVENT]}))
    failing = [StepResult("one", "t", False, "", "h")]
    passing = [StepResult("one", "t", True, "", None)]
    assert due_events(lab, failing, happened=0) == []
    assert [e.ship_release.version for e in due_events(lab, passing, happened=0)] == ["v2"]
    assert due_events(lab, passing, happened=1) == []


def test_a_lab_event_may_start_a_catalog_drill_instead(tmp_path: Path) -> None:
    event = {"after": "one", "announce": "a", "run_drill": "canary-swapped-build"}
    lab = load_lab(write(tmp_path, {**GOOD, "events": [event]}))
    assert (lab.events[0].run_drill, lab.events[0].ship_release) == ("canary-swapped-build", None)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (MissingTitleLab, r"title: Field required"),
        (UnknownCheckLab, r"steps\.0\.check: .*unknown check 'is_magic'; checks are: .*model_versions"),
        (WrongCheckArgsLab, r"steps\.0\.check: .*bad arguments for check 'model_versions'.*it takes: min_count"),
        (DuplicateStepLab, r"steps: .*step id 'one' is used twice"),
        (MissingStarterLab, r"file 'notebook\.ipynb' named by the lab does not exist"),
        (BadIdLab, r"id: String should match pattern"),
        (UnknownFieldLab, r"difficulty: Extra inputs are not permitted"),
        (EventAfterUnknownStepLab, r"event after 'two': no step has that id; steps are one"),
        (EventBadReleaseLab, r"events\.0\.ship_release\.transforms\.0: .*'warp'"),
        (EventWithBothLab, r"events\.0: .*either ships a release \(ship_release\) or runs a drill \(run_drill\)"),
        (EventWithNeitherLab, r"events\.0: .*either ships a release"),
        (EventUnknownDrillLab, r"events\.0: .*no drill 'meteor-strike'; drills are canary-failing-challenger"),
        (["a", "list"], r"a lab file must be a mapping of fields, got list"),
    ],
)
def test_a_bad_lab_file_is_refused_naming_file_and_field(tmp_path: Path, data: object, message: str) -> None:
    with pytest.raises(InvalidLab, match=rf"lab\.yaml: .*{message}"):
        load_lab(write(tmp_path, data))


def test_a_lab_file_that_is_not_yaml_is_named(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text("id: [unclosed")
    with pytest.raises(InvalidLab, match=r"lab\.yaml: not valid YAML"):
        load_lab(path)


def test_an_unknown_lab_lists_the_labs_there_are() -> None:
    with pytest.raises(NotFound, match=r"unknown lab 'lab-99'; labs are: lab-01, lab-02, lab-03, lab-04"):
        find_lab("lab-99")
