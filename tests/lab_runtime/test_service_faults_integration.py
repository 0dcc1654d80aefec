"""Faults injected into the real model service through its admin endpoints, with the admin client."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from lab_runtime.errors import FaultInjectionFailed
from lab_runtime.modeling.columns import FEATURES
from lab_runtime.modeling.data import DataGenerator
from lab_runtime.predlog import PredictionLog
from lab_runtime.service.admin_client import ServiceAdmin
from lab_runtime.service.faults import ServiceFault
from lab_runtime.settings import Settings
from tests.sandbox import running_sandbox, wait_for

pytestmark = pytest.mark.integration

RECORD = {"features": dict(json.loads(DataGenerator(9).production(0, 1)[list(FEATURES)].to_json(orient="records"))[0])}


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    state = tmp_path_factory.mktemp("faults") / "state"
    with running_sandbox(state, {"LAB_PIPELINE_RATE": "5"}, versions=1) as box:
        wait_for(lambda: ready(box.settings), 60, "the service's /ready")
        yield box.settings


@pytest.fixture
def admin(settings: Settings) -> Iterator[ServiceAdmin]:
    client = ServiceAdmin(settings)
    yield client
    client.clear()


def ready(settings: Settings) -> bool:
    try:
        return httpx.get(f"{settings.service_url}/ready", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def predict(settings: Settings, record: dict[str, Any] = RECORD) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    answer = httpx.post(f"{settings.service_url}/predict", json=record, timeout=10)
    return answer, time.perf_counter() - started


def test_the_admin_endpoints_refuse_a_missing_or_wrong_token(settings: Settings) -> None:
    url = f"{settings.service_url}/admin/faults"
    missing = httpx.get(url)
    assert missing.status_code == 401
    assert "Authorization: Bearer <token>" in missing.json()["detail"]
    wrong = httpx.put(f"{url}/x", json={"kind": "errors", "ttl": 5}, headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401 and "does not match" in wrong.json()["detail"]
    with pytest.raises(FaultInjectionFailed, match="admin token"):
        ServiceAdmin(settings.model_copy(update={"admin_token": "wrong"})).list()
    assert ServiceAdmin(settings).list() == {}


def test_a_latency_fault_slows_the_very_first_request_after_put_and_ends_on_delete(
    settings: Settings, admin: ServiceAdmin
) -> None:
    since = time.time()
    admin.put("slow", ServiceFault(kind="latency", latency_ms=300, ttl=30))
    answer, took = predict(settings)
    assert answer.status_code == 200 and took >= 0.3
    log = PredictionLog(settings.prediction_log_path)
    wait_for(lambda: (log.requests(since)["latency_ms"] >= 300).any(), 5, "a slow request in the log")
    assert admin.delete("slow") is True
    answer, took = predict(settings)
    assert answer.status_code == 200 and took < 0.3


def test_an_errors_fault_answers_its_status_and_is_logged_and_counted_like_a_real_error(
    settings: Settings, admin: ServiceAdmin
) -> None:
    since = time.time()
    admin.put("boom", ServiceFault(kind="errors", status=503, ttl=30))
    answer, _ = predict(settings)
    assert answer.status_code == 503 and answer.json() == {"detail": "service unavailable"}
    log = PredictionLog(settings.prediction_log_path)

    def logged() -> bool:
        rows = log.requests(since)
        return bool(((rows["status"] == 503) & (rows["variant"] == "champion")).any())

    wait_for(logged, 5, "a 503 RequestRow")
    assert 'lab_requests_total{status="503",variant="champion"' in httpx.get(f"{settings.service_url}/metrics").text
    assert admin.delete("boom") is True
    assert predict(settings)[0].status_code == 200
    assert admin.delete("boom") is False


def test_a_fault_ends_on_its_own_at_its_ttl(settings: Settings, admin: ServiceAdmin) -> None:
    expires_at = admin.put("short", ServiceFault(kind="errors", ttl=1))
    assert predict(settings)[0].status_code == 500
    wait_for(lambda: predict(settings)[0].status_code == 200, 3, "the fault's expiry")
    assert time.time() >= expires_at - 0.05  # the service's clock, not a delete, ended it
    assert admin.list() == {}


def test_a_challenger_fault_leaves_champion_requests_alone(settings: Settings, admin: ServiceAdmin) -> None:
    admin.put("canary-only", ServiceFault(kind="errors", variant="challenger", ttl=30))
    assert set(admin.list()) == {"canary-only"}
    answers = [predict(settings, {**RECORD, "request_id": f"user-{i}"})[0] for i in range(20)]
    assert all(a.status_code == 200 and a.json()["variant"] == "champion" for a in answers)


def test_a_fault_is_invisible_to_the_learner(settings: Settings, admin: ServiceAdmin) -> None:
    admin.put("hidden-drill-fault", ServiceFault(kind="latency", latency_ms=50, jitter_ms=10, ttl=30))
    paths = httpx.get(f"{settings.service_url}/openapi.json").json()["paths"]
    assert "/predict" in paths and not [p for p in paths if p.startswith("/admin")]
    for page in ("/model", "/metrics", "/health"):
        text = httpx.get(f"{settings.service_url}{page}").text
        assert not any(word in text for word in ("hidden-drill-fault", "admin", "jitter", "latency_ms")), page
