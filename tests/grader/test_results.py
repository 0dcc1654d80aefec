"""Signed result bundles: built from the journal, verified, and any change after export refused, naming the file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from grader.results import (
    MAX_BYTES,
    MAX_DEPTH,
    build_bundle,
    journal_digest,
    key_id,
    read_bundle,
    read_json,
    sign,
    verify,
)
from lab_runtime.cli import app
from lab_runtime.errors import InvalidBundle
from lab_runtime.events import DRILL_STARTED, LAB_CHECK, LAB_STARTED
from lab_runtime.journal import Event
from tests.grader.test_grade_command import write_run
from tests.grader.test_grading import solved

KEY = b"k" * 32
NEW_IN_4 = ("team", "detected_by", "mitigated_by", "remediated_by", "members")
NEW_IN_3 = ("decision", "verdict", "blast_radius", *NEW_IN_4)


def steps(*passed: bool) -> list[dict[str, Any]]:
    return [{"id": name, "passed": p} for name, p in zip(("train", "register", "promote"), passed, strict=True)]


def bundle(**changes: Any) -> dict[str, Any]:
    events = solved().events
    lab = [
        Event(100, 1.0, "cli", LAB_STARTED, {"lab": "lab-01"}, "ada"),
        Event(101, 2.0, "cli", LAB_CHECK, {"lab": "lab-01", "passed": 2, "steps": steps(True, False, True)}, "ada"),
        Event(102, 3.0, "cli", LAB_CHECK, {"lab": "lab-01", "passed": 1, "steps": steps(False, True, False)}, "ada"),
    ]
    return {**build_bundle([*events, *lab], "ada", 1_800_000_500.0), **changes}


def test_a_bundle_holds_the_learners_labs_graded_runs_and_a_digest_of_their_events() -> None:
    b = bundle()
    # no one check passed all three steps, but each passed in one of them
    lab = {
        "lab": "lab-01",
        "passed": 2,
        "total": 3,
        "completed": False,
        "steps": ["train", "register", "promote"],
        "checked_at": 2.0,
    }  # when the first check that passed two steps began
    assert b["learner"] == "ada" and b["labs"] == [lab]
    (run,) = b["runs"]
    assert (run["drill"], run["ttd"], run["ttr"], run["outcome"]) == ("drift-x", 30.0, 40.0, "remediated")
    assert (run["ttm"], run["time_to_recovery"], b["format"]) == (40.0, 50.0, "mlops-lab-results/4")
    assert (run["decision"], run["verdict"], run["blast_radius"]) == (None, None, None)  # a drift drill, no record
    assert b["journal"]["events"] == 10
    changed = [*solved().events[:-1], Event(7, solved().events[-1].ts + 1, "drill", "drill.ended", {}, "ada", "r1")]
    assert journal_digest(changed)["sha256"] != journal_digest(solved().events)["sha256"]


def test_a_bundle_exported_before_ttm_existed_still_verifies() -> None:
    old = {**bundle(), "format": "mlops-lab-results/1"}
    old["runs"] = [
        {k: v for k, v in r.items() if k not in ("ttm", "mitigated_at", "time_to_recovery", *NEW_IN_3)}
        for r in old["runs"]
    ]
    verified = verify(json.loads(json.dumps(sign(old, KEY))), KEY, "old.json")
    assert (verified.format, verified.runs[0].ttr, verified.runs[0].ttm) == ("mlops-lab-results/1", 40.0, None)


def test_a_bundle_exported_before_decisions_existed_still_verifies() -> None:
    old = {**bundle(), "format": "mlops-lab-results/2"}
    old["runs"] = [{k: v for k, v in r.items() if k not in NEW_IN_3} for r in old["runs"]]
    verified = verify(json.loads(json.dumps(sign(old, KEY))), KEY, "old.json")
    assert (verified.format, verified.runs[0].ttm, verified.runs[0].blast_radius) == ("mlops-lab-results/2", 40.0, None)


def test_a_bundle_exported_before_lab_steps_existed_still_verifies() -> None:
    old = {**bundle(), "format": "mlops-lab-results/3"}
    old["labs"] = [{k: v for k, v in lab.items() if k not in ("steps", "checked_at")} for lab in old["labs"]]
    old["runs"] = [{k: v for k, v in r.items() if k not in NEW_IN_4} for r in old["runs"]]
    del old["assessments"], old["team_assessments"]
    verified = verify(json.loads(json.dumps(sign(old, KEY))), KEY, "old.json")
    assert (verified.format, verified.labs[0].passed, verified.labs[0].steps) == ("mlops-lab-results/3", 2, ())


def test_a_blind_run_still_going_stays_out_of_the_bundle() -> None:
    j = solved()
    j.events[0] = Event(1, j.events[0].ts, "drill", DRILL_STARTED, {**j.events[0].payload, "blind": True}, "ada", "r1")
    assert len(build_bundle(j.events, "ada", 0.0)["runs"]) == 1  # ended: in
    assert build_bundle(j.events[:-1], "ada", 0.0)["runs"] == []  # no drill.ended yet: out


def test_a_signed_bundle_verifies_and_any_change_is_refused() -> None:
    signed = sign(bundle(), KEY)
    assert signed["signature"]["key_id"] == key_id(KEY) and len(signed["signature"]["value"]) == 64
    assert verify(json.loads(json.dumps(signed)), KEY, "b.json").runs[0].ttd == 30.0
    changes = [(("runs", 0, "ttd"), 3.0), (("learner",), "eve"), (("journal", "sha256"), "0" * 64),
               (("labs", 0, "completed"), True), (("labs", 0, "steps"), ["train"]),
               (("capstone",), {"finished": True, "passed": True})]  # fmt: skip
    for path, value in changes:
        tampered = json.loads(json.dumps(signed))
        target = tampered
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        with pytest.raises(InvalidBundle, match=r"^b.json was changed after it was signed"):
            verify(tampered, KEY, "b.json")


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"format": "other"}, "b.json is not a result bundle"),
        ([1, 2], "b.json is not a result bundle"),
        ({**bundle()}, "b.json is not signed"),
        ({**bundle(), "signature": {"algorithm": "MD5", "value": "x"}}, "signed with 'MD5'; only HMAC-SHA256"),
        (sign(bundle(), b"another key, 32 bytes long......"), "b.json was signed with another key (key id"),
        (sign(bundle(runs=[{"drill": "x"}]), KEY), "b.json is signed but malformed: runs.0.run_id: Field required"),
        (
            {**bundle(), "signature": {"algorithm": "HMAC-SHA256", "value": "é" * 64}},
            "b.json has a malformed signature",
        ),
        ({**bundle(labs=nested(300)), "signature": {"algorithm": "HMAC-SHA256", "value": "a" * 64}}, "b.json is not a"),
    ],
)
def test_bad_bundles_are_refused_with_the_reason(data: Any, message: str) -> None:
    with pytest.raises(InvalidBundle, match=message.replace("(", r"\(")):
        verify(data, KEY, "b.json")


FROM_EXPORT = "a result bundle comes from `lab results export`"


def sparse(path: Path, size: int) -> Path:
    """A file of `size` bytes that takes no disk (and, refused by its size, no memory)."""
    path.touch()
    os.truncate(path, size)
    return path


def refusal(path: Path) -> str:
    with pytest.raises(InvalidBundle) as refused:
        read_bundle(path, KEY)
    return str(refused.value)


def test_a_file_that_is_not_json_is_refused_saying_where(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text('{"a": [1, }')
    assert refusal(tmp_path / "b.json") == (
        f"{tmp_path}/b.json is not JSON (unexpected character, expected a JSON value: line 1 column 11 (char 10)); "
        + FROM_EXPORT
    )


def test_json_nested_too_deep_is_refused_as_such_not_as_not_json(tmp_path: Path) -> None:
    (tmp_path / "deep.json").write_text("[" * 10_000 + "]" * 10_000)  # valid JSON
    assert (
        refusal(tmp_path / "deep.json") == f"{tmp_path}/deep.json is JSON nested deeper than 1024 levels; {FROM_EXPORT}"
    )
    (tmp_path / "deepest.json").write_text("[" * MAX_DEPTH + "]" * MAX_DEPTH)  # as deep as may be: read, not a bundle
    assert refusal(tmp_path / "deepest.json") == f"{tmp_path}/deepest.json is not a result bundle " + (
        "(export one with `lab results export --out FILE`)"
    )


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = sparse(tmp_path / "big.json", 2**30)
    most = "the 16,777,216 bytes (16 MiB) a result bundle may have"
    assert refusal(big) == f"{big} is 1,073,741,824 bytes, more than {most}; {FROM_EXPORT}"
    assert refusal(Path("/dev/zero")) == f"/dev/zero holds more than {most}; {FROM_EXPORT}"  # no size to check first
    assert MAX_BYTES == 16 * 2**20


def test_the_size_limit_is_inclusive(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text('["12 bytes"]')
    assert read_json(tmp_path / "b.json", limit=12) == ["12 bytes"]
    with pytest.raises(InvalidBundle, match=r"b.json is 12 bytes, more than the 11 bytes "):
        read_json(tmp_path / "b.json", limit=11)


def test_lab_results_verify_says_what_is_wrong_with_each_file(state: Path, tmp_path: Path) -> None:
    sparse(tmp_path / "big.json", 2**30)
    (tmp_path / "deep.json").write_text("[" * 10_000 + "]" * 10_000)
    result = CliRunner().invoke(
        app, ["results", "verify", "big.json", "deep.json"], env={"LAB_INSTRUCTOR_KEY": "k" * 32}
    )
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "refused: big.json is 1,073,741,824 bytes, more than the 16,777,216 bytes (16 MiB) a result bundle may have; "
        + FROM_EXPORT,
        f"refused: deep.json is JSON nested deeper than 1024 levels; {FROM_EXPORT}",
    ]


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "state"


def test_export_verify_and_a_tampered_copy_through_the_command(state: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["results", "keygen", "--out", "instructor.key"]).exit_code == 0
    assert (tmp_path / "instructor.key").stat().st_mode & 0o777 == 0o600
    again = runner.invoke(app, ["results", "keygen", "--out", "instructor.key"])
    assert again.exit_code == 1 and "instructor.key exists" in again.output
    write_run(state, "ada", "r1", declare_after=12.5, fix_after=20)
    key = ["--key-file", "instructor.key"]
    nothing = runner.invoke(app, ["results", "export", "--out", "cy.json", "--learner", "cy", *key])
    assert nothing.exit_code == 1 and "no lab or drill run of 'cy'" in nothing.output
    exported = runner.invoke(app, ["results", "export", "--out", "ada.json", "--learner", "ada", *key])
    assert exported.exit_code == 0 and "exported 1 drill run(s) and 0 lab(s) of ada to ada.json" in exported.output
    ok = runner.invoke(app, ["results", "verify", "ada.json", *key])
    assert ok.exit_code == 0 and "ada.json: signature valid (ada, 1 drill run(s))" in ok.output
    body = json.loads((tmp_path / "ada.json").read_text())
    body["runs"][0]["score"] = 100.0
    (tmp_path / "forged.json").write_text(json.dumps(body))
    refused = runner.invoke(app, ["results", "verify", "ada.json", "forged.json", *key])
    assert refused.exit_code == 1 and "forged.json was changed after it was signed" in refused.output
    no_key = runner.invoke(app, ["results", "verify", "ada.json"])
    assert no_key.exit_code == 1
    assert "no instructor key: set LAB_INSTRUCTOR_KEY_FILE to the key's file (or LAB_INSTRUCTOR_KEY" in no_key.output


@pytest.mark.parametrize(
    "command",
    [
        ["results", "export", "--out", "b.json"],
        ["drill", "run", "incident-error-burst"],
        ["drill", "gameday", "--drills", "incident-error-burst", "--between", "1s", "2s"],
        ["capstone", "start"],
        ["capstone", "status"],
    ],
)
def test_a_learner_option_that_is_not_utf8_is_refused_in_one_line(state: Path, command: list[str]) -> None:
    name = os.fsdecode(b"\xff")  # what Python makes of such bytes on the command line
    result = CliRunner().invoke(app, [*command, "--learner", name], env={"LAB_INSTRUCTOR_KEY": "k" * 32})
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        "error: --learner is not valid UTF-8: a learner's name is 1 to 64 printable characters "
        "(letters, digits, spaces, punctuation), e.g. --learner=ada\n"
    )
