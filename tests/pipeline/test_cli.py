"""`lab pipeline ...` and `lab load` without a sandbox: releases, ship, deploy, rollback, and every refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from lab_runtime.cli import app
from lab_runtime.journal import Journal
from lab_runtime.pipeline.store import PIPELINE_DEPLOYED

BUREAU = """\
version: v2-bureau
note: the bureau now sends income in units
transforms:
  - {type: scale, feature: income, factor: 1000}
"""


def lab(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def refused(result: Result, message: str) -> None:
    """Exit code 1 and one line on stderr that says `message`; never a traceback."""
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert message in result.stderr, result.stderr
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.output


def releases() -> list[dict[str, object]]:
    result = lab("pipeline", "releases", "--json")
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout))


@pytest.fixture
def bureau(lab_env: dict[str, str], tmp_path: Path) -> Path:
    path = tmp_path / "v2-bureau.yaml"
    path.write_text(BUREAU)
    return path


def test_ship_then_deploy_then_rollback_each_journaled_with_who_did_it(lab_env: dict[str, str], bureau: Path) -> None:
    assert [(r["version"], r["active"], r["transforms"]) for r in releases()] == [("v1", True, [])]
    shipped = lab("pipeline", "ship", str(bureau))
    assert shipped.exit_code == 0, shipped.output
    assert "shipped v2-bureau (was v1): the bureau now sends income in units" in shipped.stdout
    assert [(r["version"], r["active"]) for r in releases()] == [("v1", False), ("v2-bureau", True)]
    assert "already the active release; nothing changed" in lab("pipeline", "ship", str(bureau)).stdout
    assert "deployed v1 (was v2-bureau)" in lab("pipeline", "deploy", "v1").stdout
    assert "rolled back from v1 to v2-bureau" in lab("pipeline", "rollback").stdout
    assert "rolled back from v2-bureau to v1" in lab("pipeline", "rollback", "--to", "v1").stdout
    table = lab("pipeline", "releases").stdout
    assert "scale income ×1000" in table and "initial release" in table
    journal = Journal(Path(lab_env["LAB_STATE_DIR"]) / "journal.db", source="test")
    events = journal.events([PIPELINE_DEPLOYED])
    assert [(e.payload["version"], e.payload["previous"], e.payload["reason"]) for e in events] == [
        ("v2-bureau", "v1", "ship"),
        ("v1", "v2-bureau", "deploy"),
        ("v2-bureau", "v1", "rollback"),
        ("v1", "v2-bureau", "rollback"),
    ]
    # the instructor ships; the learner's moves are journaled as the learner's (the grader credits only those)
    assert [(e.payload["by"], e.source) for e in events] == [("instructor", "instructor")] + [("learner", "cli")] * 3


def test_a_bad_release_file_is_refused_in_one_line_and_changes_nothing(
    lab_env: dict[str, str], bureau: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: v3\nnote: typo\ntransforms:\n  - {type: scale, feature: incme, factor: 1000}\n")
    refused(
        lab("pipeline", "ship", str(bad)), f"{bad}: transforms.0.scale.feature: Value error, unknown feature 'incme'"
    )
    refused(lab("pipeline", "ship", str(tmp_path / "missing.yaml")), "cannot read the pipeline release")
    assert lab("pipeline", "ship", str(bureau)).exit_code == 0
    bureau.write_text(BUREAU.replace("1000", "100"))
    refused(lab("pipeline", "ship", str(bureau)), "release v2-bureau already exists with other contents")
    assert [(r["version"], r["active"]) for r in releases()] == [("v1", False), ("v2-bureau", True)]


def test_deploy_and_rollback_refuse_what_does_not_exist(lab_env: dict[str, str]) -> None:
    refused(lab("pipeline", "rollback"), "no earlier release to roll back to; v1 is the only release ever deployed")
    refused(lab("pipeline", "deploy", "v9"), "no pipeline release 'v9'; releases are v1")
    refused(lab("pipeline", "rollback", "--to", "v9"), "no pipeline release 'v9'")
    assert "v1 is already the active release" in lab("pipeline", "deploy", "v1").stdout
    assert Journal(Path(lab_env["LAB_STATE_DIR"]) / "journal.db", source="test").events([PIPELINE_DEPLOYED]) == []


def test_status_says_when_the_pipeline_is_not_running(lab_env: dict[str, str]) -> None:
    refused(lab("pipeline", "status"), "the sandbox is not running (pipeline down); start it with `lab up`")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--duration", "5x"], "--duration: '5x' is not a duration; write it like 30s, 2m, 1h30m"),
        (["--duration", "0s"], "a load run lasts a whole number of seconds, at least 1s"),
        (["--users", "0"], "--users must be at least 1, not 0"),
        (["--spawn-rate", "0"], "--spawn-rate must be more than 0 users per second, not 0"),
        ([], "the model service does not answer at http://127.0.0.1:"),
    ],
)
def test_load_refuses_bad_options_and_a_service_that_is_not_up(
    lab_env: dict[str, str], args: list[str], message: str
) -> None:
    refused(lab("load", *args), message)
    assert not list((Path(lab_env["LAB_STATE_DIR"]) / "load").glob("*"))
