"""`lab pipeline ...` and `lab load` without a sandbox: releases, ship, deploy, rollback, the label feed, and every
refusal."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from lab_runtime.cli import pipeline as pipeline_cli
from lab_runtime.events import LEARNER_ACTION, PIPELINE_DEPLOYED
from lab_runtime.journal import Journal
from lab_runtime.pipeline.conditions import LabelFeedStop, label_feed_status
from lab_runtime.pipeline.store import CONCEPT, LABEL_FEED, ReleaseStore
from lab_runtime.pipeline.traffic import Counters, write_json_atomic
from lab_runtime.settings import load_settings
from tests.cli import lab, one_line_error

BUREAU = """\
version: v2-bureau
note: the bureau now sends income in units
transforms:
  - {type: scale, feature: income, factor: 1000}
"""


def releases() -> list[dict[str, object]]:
    result = lab("pipeline", "releases", "--json")
    assert result.returncode == 0, result
    return list(json.loads(result.stdout))


@pytest.fixture
def bureau(lab_env: dict[str, str], tmp_path: Path) -> Path:
    path = tmp_path / "v2-bureau.yaml"
    path.write_text(BUREAU)
    return path


def test_ship_then_deploy_then_rollback_each_journaled_with_who_did_it(lab_env: dict[str, str], bureau: Path) -> None:
    assert [(r["version"], r["active"], r["transforms"]) for r in releases()] == [("v1", True, [])]
    shipped = lab("pipeline", "ship", str(bureau))
    assert shipped.returncode == 0, shipped
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
    one_line_error(
        lab("pipeline", "ship", str(bad)), f"{bad}: transforms.0.scale.feature: Value error, unknown feature 'incme'"
    )
    one_line_error(lab("pipeline", "ship", str(tmp_path / "missing.yaml")), "cannot read the pipeline release")
    assert lab("pipeline", "ship", str(bureau)).returncode == 0
    bureau.write_text(BUREAU.replace("1000", "100"))
    one_line_error(lab("pipeline", "ship", str(bureau)), "release v2-bureau already exists with other contents")
    assert [(r["version"], r["active"]) for r in releases()] == [("v1", False), ("v2-bureau", True)]


def test_a_release_file_that_is_not_yaml_is_refused_in_one_line_naming_the_line_and_column(
    lab_env: dict[str, str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: v3\ntransforms: [\n  {type: scale, feature: income, factor: 1000}\nnote: oops\n")
    result = lab("pipeline", "ship", str(broken))
    one_line_error(result, "not valid YAML")
    assert result.stderr == (
        f"error: {broken}: not valid YAML: line 4, column 1: expected ',' or ']', but got '<scalar>' "
        "(while parsing a flow sequence from line 2, column 13)\n"
    )
    assert [r["version"] for r in releases()] == ["v1"]


def test_deploy_and_rollback_refuse_what_does_not_exist(lab_env: dict[str, str]) -> None:
    one_line_error(
        lab("pipeline", "rollback"), "no earlier release to roll back to; v1 is the only release ever deployed"
    )
    one_line_error(lab("pipeline", "deploy", "v9"), "no pipeline release 'v9'; releases are v1")
    one_line_error(lab("pipeline", "rollback", "--to", "v9"), "no pipeline release 'v9'")
    assert "v1 is already the active release" in lab("pipeline", "deploy", "v1").stdout
    assert Journal(Path(lab_env["LAB_STATE_DIR"]) / "journal.db", source="test").events([PIPELINE_DEPLOYED]) == []


def test_status_says_when_the_pipeline_is_not_running(lab_env: dict[str, str]) -> None:
    one_line_error(lab("pipeline", "status"), "the sandbox is not running (pipeline down); start it with `lab up`")


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
    one_line_error(lab("load", *args), message)
    assert not list((Path(lab_env["LAB_STATE_DIR"]) / "load").glob("*"))


OUTAGE = {"reason": "the labelling vendor's export job fails"}


def learner_actions(lab_env: dict[str, str]) -> list[dict[str, Any]]:
    journal = Journal(Path(lab_env["LAB_STATE_DIR"]) / "journal.db", source="test")
    return [e.payload for e in journal.events([LEARNER_ACTION])]


def test_labels_resume_clears_the_outage_and_is_journaled_as_the_learners_action(lab_env: dict[str, str]) -> None:
    with ReleaseStore(load_settings().pipeline_db_path) as store:
        store.set_condition(LABEL_FEED, OUTAGE, note="drill d1", by="drill", expires_at=time.time() + 60)
        store.set_condition(CONCEPT, {"intercept_shift": 1.0}, note="drill d1", by="drill")
    result = lab("pipeline", "labels", "resume")
    assert result.returncode == 0, result
    assert result.stdout.startswith("resumed the label feed") and result.stdout.count("\n") == 1
    assert learner_actions(lab_env) == [{"action": "pipeline.labels_resume"}]
    with ReleaseStore(load_settings().pipeline_db_path) as store:
        assert list(store.conditions()) == [CONCEPT]  # only the label feed is the learner's to resume


def test_labels_resume_when_the_feed_runs_says_so_and_journals_nothing(lab_env: dict[str, str]) -> None:
    result = lab("pipeline", "labels", "resume")
    assert result.returncode == 0, result
    assert result.stdout == "the label feed is running already; nothing changed\n"
    with ReleaseStore(load_settings().pipeline_db_path) as store:  # an expired outage is over already
        store.set_condition(LABEL_FEED, OUTAGE, note="drill", by="drill", expires_at=time.time() + 0.05)
    time.sleep(0.1)
    assert "running already" in lab("pipeline", "labels", "resume").stdout
    assert learner_actions(lab_env) == []


class _Running:
    def require(self, *services: str) -> None:
        pass


def test_status_shows_a_stopped_label_feed_with_its_reason_and_how_to_resume_it(
    lab_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline_cli, "backend", lambda current: _Running())
    settings = load_settings()
    settings.ensure_dirs()
    with ReleaseStore(settings.pipeline_db_path) as store:
        store.set_condition(LABEL_FEED, OUTAGE, note="drill", by="drill")
        since = store.conditions()[LABEL_FEED].set_at
    feed = label_feed_status(LabelFeedStop.model_validate(OUTAGE), since)
    write_json_atomic(
        settings.pipeline_status_path,
        {
            "state": "sending",
            "reason": None,
            "release": "v1",
            "target_rate": 20.0,
            "actual_rate": 19.9,
            "pending_labels": 3,
            "label_feed": feed,
            "counters": asdict(Counters(sent=100, ok=100, labels_posted=20, labels_withheld=30)),
            "last_error": None,
        },
    )
    as_json = lab("pipeline", "status", "--json")
    assert as_json.returncode == 0, as_json
    assert json.loads(as_json.stdout)["label_feed"] == {"state": "stopped", "reason": OUTAGE["reason"], "since": since}
    table = lab("pipeline", "status").stdout
    assert "labels     20 posted, 3 pending, 0 dropped, 30 withheld" in table
    assert f"label feed stopped since {pipeline_cli._when(since)}: {OUTAGE['reason']}" in table
    assert "`lab pipeline labels resume`" in table
    assert lab("pipeline", "labels", "resume").returncode == 0
    table = lab("pipeline", "status").stdout  # the pipeline has not rewritten its status yet
    assert "the label feed is running now; the pipeline follows within a second" in table
