"""The real sandbox on free ports: MLflow server, the model service on uvicorn, the registry watcher."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from mlflow import MlflowClient

from lab_runtime.backends.local import LocalBackend
from lab_runtime.events import ALIAS_CHANGED, LEARNER_ACTION
from lab_runtime.files.atomic import write_atomic
from lab_runtime.journal import Journal
from lab_runtime.modeling.columns import FEATURES, STREAM_ID_GLOB
from lab_runtime.modeling.data import DataGenerator
from lab_runtime.modeling.model import Registered
from lab_runtime.predlog import PredictionLog
from lab_runtime.registry import model_ops
from lab_runtime.service.policy import BUILTIN, load_policy
from lab_runtime.settings import Settings
from tests.cli import lab
from tests.sandbox import running_sandbox, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, LocalBackend, list[Registered]]]:
    with running_sandbox(tmp_path_factory.mktemp("sandbox") / "state", {"LAB_LABEL_SHARE": "0"}) as box:
        yield box.settings, box.backend, box.versions


def features(i: int = 0) -> dict[str, Any]:
    frame = DataGenerator(9).production(i, 1)
    return dict(json.loads(frame[list(FEATURES)].to_json(orient="records"))[0])


def model(settings: Settings) -> dict[str, Any]:
    return dict(httpx.get(f"{settings.service_url}/model").json())


def test_the_service_serves_the_champion_and_logs_each_prediction(sandbox: Any) -> None:
    settings, _, (v1, _) = sandbox
    wait_for(lambda: model(settings)["champion"] == v1.version, 30)
    assert httpx.get(f"{settings.service_url}/ready").json() == {"ready": True}
    answer = httpx.post(f"{settings.service_url}/predict", json={"request_id": "one", "features": features()})
    assert answer.status_code == 200
    body = answer.json()
    assert body["request_id"] == "one" and body["model_version"] == v1.version and body["variant"] == "champion"
    assert 0.0 <= body["probability"] <= 1.0 and body["prediction"] in (0, 1)
    assert body["decision"] == load_policy().decide(body["probability"])  # the built-in policy's thresholds
    batch = httpx.post(
        f"{settings.service_url}/predict", json={"records": [{"features": features(i)} for i in range(5)]}
    )
    assert [p["model_version"] for p in batch.json()["predictions"]] == [v1.version] * 5
    feedback = httpx.post(f"{settings.service_url}/feedback", json={"request_id": "one", "label": 1})
    assert feedback.status_code == 202
    log = PredictionLog(settings.prediction_log_path)
    wait_for(lambda: log.count(model_version=v1.version, exclude_ids=STREAM_ID_GLOB) == 6 and log.labels() == 1, 5)
    metrics = httpx.get(f"{settings.service_url}/metrics").text
    assert f'lab_requests_total{{status="200",variant="champion",version="{v1.version}"}}' in metrics
    assert "lab_prediction_log_queue_depth" in metrics and "lab_request_latency_seconds_bucket" in metrics
    schema = httpx.get(f"{settings.service_url}/openapi.json").json()
    body_schema = json.dumps(schema["paths"]["/predict"]["post"]["requestBody"])
    assert "credit_score" in body_schema


def policy_source(settings: Settings) -> str:
    return str(httpx.get(f"{settings.service_url}/policy").json()["source"])


def test_a_policy_of_the_learner_reaches_the_service_and_each_broken_rule_is_logged_and_counted(sandbox: Any) -> None:
    settings, _, (v1, _) = sandbox
    wait_for(lambda: model(settings)["champion"] == v1.version, 30)
    assert policy_source(settings) == str(BUILTIN)
    lenient = {
        "decision": {"approve_below": 0.999, "decline_from": 1.0},
        "never": [
            {
                "id": "any-approval",
                "decision": "approve",
                "when": [{"feature": "age", "op": ">", "value": 0}],
                "why": "w",
            }
        ],
        "window": {"approval_rate": {"min": 0.0, "max": 0.5}},
    }
    try:
        write_atomic(settings.policy_path, yaml.safe_dump(lenient).encode())
        wait_for(lambda: policy_source(settings) == str(settings.policy_path), 10, "the learner's policy in force")
        answer = httpx.post(f"{settings.service_url}/predict", json={"request_id": "lenient", "features": features()})
        assert answer.json()["decision"] == "approve"
        log = PredictionLog(settings.prediction_log_path)

        def logged() -> list[tuple[str, str]]:
            rows = log.window(since=0)
            rows = rows[rows["request_id"] == "lenient"]
            return list(zip(rows["decision"], rows["violations"], strict=True))

        wait_for(lambda: logged() == [("approve", "any-approval")], 5, "the violation logged")
        log.close()

        def breaches() -> str:  # the monitor follows the learner's window rules too
            status = httpx.get(f"{settings.monitor_url}/status").json()
            return str(status.get("details", {}).get("policy_breaches", ""))

        wait_for(lambda: re.match(r"approval rate (99|100)% outside 0%-50%", breaches()), 30, "the window rule broken")
        metrics = httpx.get(f"{settings.service_url}/metrics").text
        assert (
            f'lab_policy_violations_total{{rule="any-approval",variant="champion",version="{v1.version}"}}' in metrics
        )

        broken = {**lenient, "decision": {"approve_below": 0.999}}
        write_atomic(settings.policy_path, yaml.safe_dump(broken).encode())
        wait_for(lambda: httpx.get(f"{settings.service_url}/policy").json()["problem"] is not None, 10, "a refusal")
        shown = httpx.get(f"{settings.service_url}/policy").json()
        assert shown["problem"] == (
            f"{settings.policy_path}: decision.decline_from: Field required; the last good one stays in force"
        )
        assert shown["decision"]["approve_below"] == 0.999 and shown["source"] == str(settings.policy_path)
        said = lab("policy")
        assert said.returncode == 0 and f"output policy in force: {settings.policy_path} (yours)" in said.stdout
        assert "refused: " in said.stdout and "never approve when age > 0 (any-approval)" in said.stdout
        assert "over the monitor's window: approve between 0% and 50% of the decisions" in said.stdout
    finally:
        settings.policy_path.unlink(missing_ok=True)
    wait_for(lambda: policy_source(settings) == str(BUILTIN), 10, "the built-in policy back")


def predict(settings: Settings, request_id: str) -> dict[str, Any]:
    body = {"request_id": request_id, "features": features()}
    return dict(httpx.post(f"{settings.service_url}/predict", json=body).json())


def decided_by(settings: Settings, request_ids: list[str]) -> list[str]:
    """Who decided each of a batch of requests with these ids."""
    body = {"records": [{"request_id": rid, "features": features()} for rid in request_ids]}
    return [p["decided_by"] for p in httpx.post(f"{settings.service_url}/predict", json=body).json()["predictions"]]


def switch(settings: Settings) -> dict[str, Any]:
    return dict(model(settings)["switch"])


def test_lab_feature_disables_throttles_and_enables_the_model_and_the_fallback_decides_the_rest(sandbox: Any) -> None:
    settings, _, (v1, _) = sandbox
    wait_for(lambda: model(settings)["champion"] == v1.version, 30)
    since = time.time()
    try:
        assert lab("feature", "disable").returncode == 0
        wait_for(lambda: predict(settings, "off")["decided_by"] == "fallback", 5, "the kill switch in effect")
        off = predict(settings, "off")
        assert (off["probability"], off["model_version"], off["variant"]) == (None, None, "fallback")
        assert off["decision"] == load_policy().fallback.decide(features())
        assert switch(settings) == {"mode": "off", "share": 0.0, "source": str(settings.flags_path), "problem": None}
        metrics = httpx.get(f"{settings.service_url}/metrics").text
        assert f'lab_decisions_total{{decision="{off["decision"]}",variant="fallback",version="fallback"}}' in metrics
        log = PredictionLog(settings.prediction_log_path)
        wait_for(lambda: log.fallback_decisions(since) >= 2, 5, "the fallback's decisions logged")
        log.close()

        assert lab("feature", "throttle", "0.25").returncode == 0
        wait_for(lambda: switch(settings)["share"] == 0.25, 5, "the throttle in force")
        paths = decided_by(settings, [f"throttle-{i}" for i in range(400)])
        assert 0.18 < paths.count("model") / 400 < 0.32, paths.count("model")
        assert decided_by(settings, [f"throttle-{i}" for i in range(20)]) == paths[:20]  # by request id

        write_atomic(settings.flags_path, b'{"flags": {"credit-model": {"state": "ENABLED"}}}')  # whole
        wait_for(lambda: switch(settings)["problem"] is not None, 5, "the bad flag file refused")
        assert switch(settings)["problem"] == (
            f"{settings.flags_path}: flags.credit-model.variants: Field required; flags.credit-model.defaultVariant: "
            "Field required; the last good one stays in force"
        )
        settings.flags_path.unlink()
        wait_for(lambda: "is gone" in str(switch(settings)["problem"]), 5, "the deleted flag file noticed")
        assert switch(settings)["share"] == 0.25  # the last state stays
        assert decided_by(settings, [f"throttle-{i}" for i in range(20)]) == paths[:20]
    finally:
        assert lab("feature", "enable").returncode == 0
    wait_for(lambda: predict(settings, "on")["decided_by"] == "model", 5, "the model back")
    assert switch(settings)["problem"] is None
    acted = [
        (e.payload["action"], e.payload["from"], e.payload["to"])
        for e in Journal(settings.journal_path, source="test").events([LEARNER_ACTION], since=since)
        if e.payload["action"].startswith("feature.")
    ]
    assert acted == [("feature.disable", 1.0, 0.0), ("feature.throttle", 0.0, 0.25), ("feature.enable", 0.25, 1.0)]


BAD_REQUESTS: list[tuple[str, bytes, str]] = [
    ("invalid JSON", b"{not json", "invalid JSON"),
    ("missing feature", json.dumps({"features": {"age": 30}}).encode(), "Field required"),
    ("wrong type", json.dumps({"features": {**features(), "age": "old"}}).encode(), "valid integer"),
    ("NaN", json.dumps({"features": {**features(), "income": float("nan")}}).encode(), "finite number"),
    ("infinity", json.dumps({"features": {**features(), "income": float("inf")}}).encode(), "finite number"),
    ("unknown field", json.dumps({"features": {**features(), "salary": 1.0}}).encode(), "Extra inputs"),
    ("empty batch", json.dumps({"records": []}).encode(), "at least one record"),
    ("batch over the limit", json.dumps({"records": [{"features": features()}] * 1001}).encode(), "at most 1000"),
    ("not an object", b"[1, 2]", "valid dictionary"),
]


@pytest.mark.parametrize(("case", "body", "message"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_a_malformed_request_gets_422_naming_the_field_never_500(
    sandbox: Any, case: str, body: bytes, message: str
) -> None:
    settings, _, (v1, _) = sandbox
    wait_for(lambda: model(settings)["champion"] == v1.version, 30)
    answer = httpx.post(f"{settings.service_url}/predict", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert message in answer.text
    detail = answer.json()["detail"]
    if case in ("missing feature", "wrong type", "NaN", "infinity", "unknown field"):
        assert any(e["loc"][:2] == ["body", "features"] and len(e["loc"]) == 3 for e in detail), detail


def test_an_alias_moved_by_a_plain_client_is_followed_and_journaled(sandbox: Any) -> None:
    settings, _, (v1, v2) = sandbox
    wait_for(lambda: model(settings)["champion"] == v1.version and model(settings)["webhook"]["pushed"], 30)
    subscribed = httpx.get(f"{settings.mlflow_url}/api/2.0/mlflow/webhooks").json()["webhooks"]
    assert {w["name"]: w["url"].rsplit(":", 1)[0] for w in subscribed} == {
        "lab-model-service": "http://127.0.0.1",
        "lab-registry-watcher": "http://127.0.0.1",
    }
    pushes = model(settings)["webhook"]["pushes"]
    MlflowClient(settings.mlflow_url).set_registered_model_alias(settings.model_name, "champion", v2.version)
    followed = wait_for(lambda: model(settings)["champion"] == v2.version, 2.0)
    assert model(settings)["webhook"]["pushes"] > pushes  # pushed by MLflow's webhook, not found by the slow poll
    assert model(settings)["webhook"]["refused"] == 0
    answer = httpx.post(f"{settings.service_url}/predict", json={"features": features()})
    assert answer.json()["model_version"] == v2.version
    journal = Journal(settings.journal_path, source="test")

    def journaled() -> bool:
        return any(
            e.payload.get("after") == v2.version and e.payload.get("before") == v1.version
            for e in journal.events([ALIAS_CHANGED])
        )

    wait_for(journaled, 2.0)
    MlflowClient(settings.mlflow_url).set_registered_model_alias(settings.model_name, "champion", v1.version)
    wait_for(lambda: model(settings)["champion"] == v1.version, 2.0)
    assert followed < 2.0


def test_alias_moves_are_still_pushed_after_mlflow_restarts_on_its_store(sandbox: Any) -> None:
    settings, backend, (_v1, v2) = sandbox
    wait_for(lambda: model(settings)["webhook"]["pushed"], 30)
    backend.restart("mlflow")  # a new process: it must still decrypt the stored webhook secrets
    wait_for(lambda: model(settings)["registry_reachable"], 30)
    pushes = model(settings)["webhook"]["pushes"]
    client = MlflowClient(settings.mlflow_url)
    try:
        client.set_registered_model_alias(settings.model_name, "challenger", v2.version)
        wait_for(lambda: model(settings)["webhook"]["pushes"] > pushes, 5, "a delivery from the restarted MLflow")
        wait_for(lambda: model(settings)["challenger"] == v2.version, 5, "the challenger loaded")
        assert model(settings)["webhook"]["refused"] == 0
    finally:
        client.delete_registered_model_alias(settings.model_name, "challenger")
    wait_for(lambda: model(settings)["challenger"] is None, 5)
    assert "Failed to send webhook" not in (settings.logs_dir / "mlflow.log").read_text()


def test_the_challenger_gets_the_canary_share_sticky_by_request_id(sandbox: Any) -> None:
    settings, _, (_v1, v2) = sandbox
    client = MlflowClient(settings.mlflow_url)
    client.set_registered_model_alias(settings.model_name, "challenger", v2.version)
    model_ops.set_canary_weight(settings, 0.3)  # the registered model's tag, pushed through the challenger's
    try:
        wait_for(lambda: model(settings)["challenger"] == v2.version and model(settings)["canary_weight"] == 0.3, 5)
        records = [{"request_id": f"user-{i}", "features": features(i)} for i in range(400)]
        first = httpx.post(f"{settings.service_url}/predict", json={"records": records}).json()["predictions"]
        again = httpx.post(f"{settings.service_url}/predict", json={"records": records}).json()["predictions"]
        share = sum(p["variant"] == "challenger" for p in first) / len(first)
        assert 0.22 < share < 0.38
        assert [p["variant"] for p in first] == [p["variant"] for p in again]
        assert {p["model_version"] for p in first if p["variant"] == "challenger"} == {v2.version}
    finally:
        client.delete_registered_model_alias(settings.model_name, "challenger")
        client.delete_registered_model_tag(settings.model_name, "canary_weight")
    wait_for(lambda: model(settings)["challenger"] is None, 5)


def test_a_version_without_signature_is_not_served_and_the_old_one_keeps_serving(sandbox: Any) -> None:
    import mlflow

    settings, _, (v1, _) = sandbox
    wait_for(lambda: model(settings)["champion"] == v1.version, 30)
    from lab_runtime.modeling.data import split_features
    from lab_runtime.modeling.model import PIP_REQUIREMENTS, build_pipeline

    X, y = split_features(DataGenerator(1).training(500))
    mlflow.set_tracking_uri(settings.mlflow_url)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            build_pipeline().fit(X, y),
            name="model",
            registered_model_name=settings.model_name,
            pip_requirements=PIP_REQUIREMENTS,
        )
    bad = str(info.registered_model_version)
    client = MlflowClient(settings.mlflow_url)
    client.set_registered_model_alias(settings.model_name, "champion", bad)
    try:
        wait_for(lambda: bad in model(settings)["load_errors"], 10)
        assert "no input signature" in model(settings)["load_errors"][bad]
        assert model(settings)["champion"] == v1.version
        answer = httpx.post(f"{settings.service_url}/predict", json={"features": features()})
        assert answer.status_code == 200 and answer.json()["model_version"] == v1.version
    finally:
        client.set_registered_model_alias(settings.model_name, "champion", v1.version)


def test_status_reports_every_service_healthy_with_pid_and_uptime(sandbox: Any) -> None:
    _, backend, _ = sandbox
    rows = {r.name: r for r in backend.status()}
    assert set(rows) == {"mlflow", "model-service", "registry-watcher", "pipeline", "monitor"}
    assert all(r.healthy and r.pid and r.uptime is not None and r.uptime > 0 for r in rows.values())


def test_every_sandbox_process_runs_with_mlflow_telemetry_off(sandbox: Any) -> None:
    import psutil

    _, backend, _ = sandbox
    pids = [r.pid for r in backend.status() if r.pid]
    processes = [psutil.Process(pid) for pid in pids]
    processes += [child for p in processes for child in p.children(recursive=True)]
    assert len(pids) == 5
    for process in processes:
        try:
            environ, argv = process.environ(), process.cmdline()
        except psutil.NoSuchProcess:  # a short-lived child of the service, gone already
            continue
        assert environ.get("MLFLOW_DISABLE_TELEMETRY", "").lower() in ("true", "1"), argv
