"""Model operations against a real sandbox: a regressed version served, rollback, canary abort, retraining."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from mlflow import MlflowClient

from lab_runtime.events import ALIAS_CHANGED, LEARNER_ACTION
from lab_runtime.journal import Journal
from lab_runtime.modeling.columns import FEATURES
from lab_runtime.modeling.data import DataGenerator
from lab_runtime.modeling.model import Regression, train_and_register
from lab_runtime.predlog import PredictionLog
from lab_runtime.registry import model_ops
from lab_runtime.registry.rest import CANARY_WEIGHT_TAG, CHALLENGER, CHAMPION
from tests.cli import lab
from tests.sandbox import Sandbox, running_sandbox, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path_factory.mktemp("model-ops") / "state", versions=2) as sandbox:
        yield sandbox


def served(box: Sandbox) -> dict[str, Any]:
    return dict(httpx.get(f"{box.settings.service_url}/model").json())


def actions(box: Sandbox, action: str) -> list[dict[str, Any]]:
    journal = Journal(box.settings.journal_path, source="test")
    return [e.payload for e in journal.events([LEARNER_ACTION]) if e.payload.get("action") == action]


def features() -> dict[str, Any]:
    frame = DataGenerator(9).production(0, 1)
    return dict(json.loads(frame[list(FEATURES)].to_json(orient="records"))[0])


def test_a_regressed_version_is_registered_blind_and_served(box: Sandbox) -> None:
    settings = box.settings
    bad = train_and_register(
        settings.mlflow_url, settings.model_name, regression=Regression(drop_feature="credit_score", slow_predict_ms=40)
    )
    good = box.versions[0]
    assert bad.metrics["roc_auc"] < good.metrics["roc_auc"] - 0.05
    run = MlflowClient(settings.mlflow_url).get_run(bad.run_id)
    assert set(run.data.params) == {"C", "seed", "train_rows"}
    assert "credit_score" not in json.dumps(run.data.tags) and "slow" not in json.dumps(run.data.tags)
    model_ops.set_canary_weight(settings, 1.0)
    model_ops.set_alias(settings, CHALLENGER, bad.version)
    try:
        wait_for(lambda: served(box)["challenger"] == bad.version, 60, "the regressed version served")
        started = time.monotonic()
        answer = httpx.post(f"{settings.service_url}/predict", json={"request_id": "r1", "features": features()})
        assert answer.status_code == 200, answer.text
        assert answer.json()["model_version"] == bad.version and answer.json()["variant"] == "challenger"
        assert time.monotonic() - started >= 0.04
    finally:
        model_ops.set_canary_weight(settings, 0.0)
        model_ops.delete_alias(settings, CHALLENGER)
    assert CHALLENGER not in model_ops.aliases(settings)


def test_canary_abort_zeroes_the_share_removes_the_challenger_and_journals(box: Sandbox) -> None:
    settings, v2 = box.settings, box.versions[1].version
    model_ops.set_canary_weight(settings, 0.3)
    model_ops.set_alias(settings, CHALLENGER, v2)
    wait_for(lambda: served(box)["challenger"] == v2, 30, "the challenger served")
    result = lab("canary", "abort")
    assert result.returncode == 0, result
    assert CHALLENGER not in model_ops.aliases(settings)
    tags = MlflowClient(settings.mlflow_url).get_registered_model(settings.model_name).tags
    assert tags[CANARY_WEIGHT_TAG] == "0"
    assert actions(box, "canary.abort")[-1]["version"] == v2
    wait_for(lambda: served(box)["challenger"] is None, 10, "the service dropping the challenger")

    again = lab("canary", "abort")
    assert again.returncode == 1 and "no @challenger" in again.stderr and len(actions(box, "canary.abort")) == 1


def test_rollback_brings_back_the_previous_champion_and_never_the_bad_one(box: Sandbox) -> None:
    settings, v1, v2 = box.settings, box.versions[0].version, box.versions[1].version
    model_ops.set_alias(settings, CHAMPION, v2)
    journal = Journal(settings.journal_path, source="test")
    wait_for(lambda: any(e.payload["after"] == v2 for e in journal.events([ALIAS_CHANGED])), 10, "v1->v2 journaled")

    result = lab("model", "rollback", "--json")
    assert result.returncode == 0, result
    assert json.loads(result.stdout) == {"from": v2, "to": v1, "changed": True}
    assert model_ops.aliases(settings)[CHAMPION] == v1
    assert actions(box, "model.rollback") == [{"action": "model.rollback", "from": v2, "to": v1}]
    wait_for(lambda: served(box)["champion"] == v1, 30, "the service back on v1")

    second = lab("model", "rollback")  # v2 was rolled back from: there is nothing earlier than v1
    assert second.returncode == 1 and "no earlier @champion" in second.stderr
    unknown = lab("model", "rollback", "--to", "99")
    assert unknown.returncode == 1 and "no version '99'" in unknown.stderr
    assert model_ops.aliases(settings)[CHAMPION] == v1 and len(actions(box, "model.rollback")) == 1


def test_retrain_on_recent_labelled_traffic_registers_a_version_the_service_serves(box: Sandbox) -> None:
    settings = box.settings
    log = PredictionLog(settings.prediction_log_path)
    wait_for(lambda: len(log.labelled(time.time() - 300)) >= 200, 60, "200 labelled predictions")

    too_few = lab("model", "retrain", "--window", "5m", "--min-rows", "1000000")
    assert too_few.returncode == 1 and "widen --window" in too_few.stderr and "fewer than the 1000000" in too_few.stderr

    result = lab("model", "retrain", "--window", "5m", "--min-rows", "200", "--promote", "--json")
    assert result.returncode == 0, result
    body = json.loads(result.stdout)
    assert body["promoted"] and body["train_rows"] >= 160 and body["test_rows"] >= 40
    assert set(body["metrics"]) == {"accuracy", "f1", "roc_auc"} and body["metrics"]["accuracy"] > 0.6
    assert model_ops.aliases(settings)[CHAMPION] == body["version"]
    assert actions(box, "model.retrain")[-1] == {
        "action": "model.retrain",
        "version": body["version"],
        "promoted": True,
    }
    wait_for(lambda: served(box)["champion"] == body["version"], 60, "the retrained version served")
    answer = httpx.post(f"{settings.service_url}/predict", json={"features": features()})
    assert answer.status_code == 200 and answer.json()["model_version"] == body["version"]


def test_a_registry_that_is_down_fails_rollback_in_one_line_within_seconds(box: Sandbox) -> None:
    settings = box.settings
    before = model_ops.aliases(settings)
    rollbacks = len(actions(box, "model.rollback"))
    box.backend.pause("mlflow")
    try:
        started = time.monotonic()
        result = lab("model", "rollback")
        elapsed = time.monotonic() - started
    finally:
        box.backend.resume("mlflow")
    assert result.returncode == 1 and elapsed < 12, (elapsed, result)
    assert result.stdout == "" and result.stderr.strip().count("\n") == 0
    assert "MLflow at" in result.stderr and "no answer within 5 s" in result.stderr
    assert model_ops.aliases(settings) == before and len(actions(box, "model.rollback")) == rollbacks
