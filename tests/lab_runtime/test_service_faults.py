"""The model service's faults: the table and validation (pure: a passed clock, a seeded rng), the admin endpoints
in process, and the admin client against a mock transport."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from lab_runtime.errors import FaultInjectionFailed, RuntimeNotReady
from lab_runtime.service.admin_client import ServiceAdmin
from lab_runtime.service.app import create_app
from lab_runtime.service.faults import NO_FAULT, Decision, FaultTable, ServiceFault, check_fault_id
from lab_runtime.service.switch import FALLBACK
from lab_runtime.settings import Settings


def latency(ms: float = 100, **kw: Any) -> ServiceFault:
    return ServiceFault(**{"kind": "latency", "latency_ms": ms, "ttl": 60, **kw})


def errors(status: int = 503, **kw: Any) -> ServiceFault:
    return ServiceFault(**{"kind": "errors", "status": status, "ttl": 60, **kw})


def test_a_fault_expires_at_its_ttl() -> None:
    table = FaultTable()
    assert table.put("slow", latency(ttl=10), now=100.0) == 110.0
    assert set(table.active(109.9)) == {"slow"}
    assert table.active(110.0) == {}
    assert table.decide("champion", 111.0, random.Random(0)) == NO_FAULT


def test_an_expired_fault_is_dropped_not_just_hidden() -> None:
    table = FaultTable()
    table.put("slow", latency(ttl=1), now=0.0)
    table.active(5.0)
    assert table.remove("slow") is False


def test_putting_the_same_id_replaces_the_fault_and_restarts_its_expiry() -> None:
    table = FaultTable()
    table.put("f", latency(100, ttl=10), now=0.0)
    table.put("f", errors(502, ttl=10), now=5.0)
    active = table.active(12.0)
    assert list(active) == ["f"]
    assert active["f"] == (errors(502, ttl=10), 15.0)


def test_remove_says_whether_the_fault_was_there() -> None:
    table = FaultTable()
    table.put("f", latency(), now=0.0)
    assert table.remove("f") is True
    assert table.remove("f") is False
    assert table.active(1.0) == {}


def test_clear_removes_every_fault_and_counts_them() -> None:
    table = FaultTable()
    for i in range(3):
        table.put(f"f{i}", latency(), now=0.0)
    assert table.clear() == 3
    assert table.clear() == 0
    assert table.active(1.0) == {}


def test_active_lists_faults_in_id_order() -> None:
    table = FaultTable()
    for fault_id in ("b", "c", "a"):
        table.put(fault_id, latency(), now=0.0)
    assert list(table.active(1.0)) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("fault_variant", "hits"),
    [("any", {"champion", "challenger"}), ("champion", {"champion"}), ("challenger", {"challenger"})],
)
def test_a_fault_hits_only_its_variant(fault_variant: str, hits: set[str]) -> None:
    table = FaultTable()
    table.put("f", errors(variant=fault_variant), now=0.0)
    hit = {v for v in ("champion", "challenger") if table.decide(v, 1.0, random.Random(0)).status == 503}
    assert hit == hits


@pytest.mark.parametrize("share", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_the_share_of_requests_hit_is_the_faults_share(share: float) -> None:
    table = FaultTable()
    table.put("f", errors(share=share), now=0.0)
    rng = random.Random(7)
    n = 20_000
    hit = sum(table.decide("champion", 1.0, rng).status is not None for _ in range(n)) / n
    assert hit == pytest.approx(share, abs=0.015)
    if share in (0.0, 1.0):
        assert hit == share


def test_latency_stays_within_its_jitter_and_never_goes_below_zero() -> None:
    table = FaultTable()
    table.put("f", latency(300, jitter_ms=50), now=0.0)
    rng = random.Random(1)
    delays = [table.decide("champion", 1.0, rng).delay_s for _ in range(5000)]
    assert all(0.25 <= d <= 0.35 for d in delays)
    assert min(delays) < 0.26 and max(delays) > 0.34  # the whole range is used
    table.put("f", latency(10, jitter_ms=1000), now=0.0)
    delays = [table.decide("champion", 1.0, rng).delay_s for _ in range(5000)]
    assert min(delays) == 0.0 and max(delays) <= 1.01


def test_a_latency_fault_without_jitter_delays_exactly() -> None:
    table = FaultTable()
    table.put("f", latency(250), now=0.0)
    assert table.decide("challenger", 1.0, random.Random(0)) == Decision(0.25, None)


def test_delays_add_up_and_the_first_error_fault_by_id_sets_the_status() -> None:
    table = FaultTable()
    table.put("b-slow", latency(200), now=0.0)
    table.put("a-slow", latency(100), now=0.0)
    table.put("z-errors", errors(502), now=0.0)
    table.put("m-errors", errors(504), now=0.0)
    decision = table.decide("champion", 1.0, random.Random(0))
    assert decision.delay_s == pytest.approx(0.3)
    assert decision.status == 504


def test_each_fault_draws_its_share_independently() -> None:
    table = FaultTable()
    table.put("a", errors(500, share=0.5), now=0.0)
    table.put("b", errors(503, share=0.5), now=0.0)
    rng = random.Random(3)
    n = 20_000
    statuses = [table.decide("champion", 1.0, rng).status for _ in range(n)]
    assert statuses.count(500) / n == pytest.approx(0.5, abs=0.02)
    assert statuses.count(503) / n == pytest.approx(0.25, abs=0.02)  # b decides only where a missed
    assert statuses.count(None) / n == pytest.approx(0.25, abs=0.02)


def test_no_fault_costs_no_draw() -> None:
    rng = random.Random(5)
    state = rng.getstate()
    assert FaultTable().decide("champion", 0.0, rng) == NO_FAULT
    assert rng.getstate() == state


def test_the_table_takes_concurrent_puts_and_decisions() -> None:
    table = FaultTable()

    def put(k: int) -> None:
        for i in range(100):
            table.put(f"f{k}-{i}", latency(1, ttl=10), now=0.0)
            table.decide("champion", 1.0, random.Random(i))

    threads = [threading.Thread(target=put, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(table.active(1.0)) == 400
    assert table.decide("champion", 1.0, random.Random(0)).delay_s == pytest.approx(0.4)


# Bad faults, named after their defect, with the words the refusal must contain.
BAD_FAULTS: list[tuple[str, dict[str, Any], str, str]] = [
    ("no kind", {"ttl": 10}, "kind", "Field required"),
    ("unknown kind", {"kind": "crash", "ttl": 10}, "kind", "'latency', 'errors' or 'overload'"),
    ("no ttl", {"kind": "errors"}, "ttl", "Field required"),
    ("zero ttl", {"kind": "errors", "ttl": 0}, "ttl", "greater than 0"),
    ("ttl over six hours", {"kind": "errors", "ttl": 6 * 3600 + 1}, "ttl", "less than or equal to 21600"),
    ("share over one", {"kind": "errors", "share": 1.5, "ttl": 10}, "share", "less than or equal to 1"),
    ("negative share", {"kind": "errors", "share": -0.1, "ttl": 10}, "share", "greater than or equal to 0"),
    ("status not 5xx", {"kind": "errors", "status": 404, "ttl": 10}, "status", "greater than or equal to 500"),
    ("status over 599", {"kind": "errors", "status": 600, "ttl": 10}, "status", "less than or equal to 599"),
    ("unknown variant", {"kind": "errors", "variant": "canary", "ttl": 10}, "variant", "'challenger'"),
    ("unknown field", {"kind": "errors", "ttl": 10, "delay": 1}, "delay", "Extra inputs"),
    ("latency without latency", {"kind": "latency", "ttl": 10}, "", "a latency fault needs latency_ms > 0"),
    ("zero latency", {"kind": "latency", "latency_ms": 0, "ttl": 10}, "", "needs latency_ms > 0"),
    ("negative latency", {"kind": "latency", "latency_ms": -5, "ttl": 10}, "latency_ms", "greater than or equal"),
    ("negative jitter", {"kind": "latency", "latency_ms": 5, "jitter_ms": -1, "ttl": 10}, "jitter_ms", "greater"),
    ("infinite latency", {"kind": "latency", "latency_ms": float("inf"), "ttl": 10}, "latency_ms", "finite"),
    ("latency over a minute", {"kind": "latency", "latency_ms": 60_001, "ttl": 10}, "latency_ms", "less than"),
    ("errors with latency", {"kind": "errors", "latency_ms": 5, "ttl": 10}, "", "not to an errors fault"),
    ("errors with jitter", {"kind": "errors", "jitter_ms": 5, "ttl": 10}, "", "not to an errors fault"),
    ("latency with status", {"kind": "latency", "latency_ms": 5, "status": 503, "ttl": 10}, "", "errors faults only"),
]


@pytest.mark.parametrize(("case", "raw", "field", "message"), BAD_FAULTS, ids=[c[0] for c in BAD_FAULTS])
def test_a_bad_fault_is_refused_naming_the_field(case: str, raw: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ServiceFault.model_validate(raw)
    errs = caught.value.errors()
    assert any(message in e["msg"] for e in errs), errs
    if field:
        assert any(e["loc"] == (field,) for e in errs), errs


def test_defaults_and_a_round_trip_through_json() -> None:
    fault = ServiceFault(kind="errors", ttl=30)
    assert (fault.share, fault.status, fault.variant, fault.latency_ms) == (1.0, 500, "any", 0.0)
    slow = latency(120, jitter_ms=20, variant="challenger", share=0.25)
    assert ServiceFault.model_validate_json(slow.model_dump_json()) == slow
    assert ServiceFault.model_validate(fault.model_dump()) == fault  # defaults of the other kind pass


@pytest.mark.parametrize("fault_id", ["a", "0", "drill-1.latency_x", "a" * 64])
def test_a_valid_fault_id_is_accepted(fault_id: str) -> None:
    assert check_fault_id(fault_id) == fault_id


@pytest.mark.parametrize("fault_id", ["", "-a", ".a", "A", "a b", "a/b", "é", "a" * 65])
def test_an_invalid_fault_id_is_refused_with_the_rule(fault_id: str) -> None:
    with pytest.raises(ValueError, match="1-64 characters of a-z"):
        check_fault_id(fault_id)
    with pytest.raises(ValueError, match="invalid fault id"):
        FaultTable().put(fault_id, latency(), now=0.0)


# The admin endpoints in process (no lifespan: no registry, no model), and the client's error mapping.


class InProcess:
    """Requests to the app over ASGI, without its lifespan (no registry follower, no prediction log)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
                return await client.request(method, path, **kw)

        return asyncio.run(send())

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("PUT", path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)


@pytest.fixture
def admin_app(tmp_path: Path) -> InProcess:
    return InProcess(create_app(Settings(state_dir=tmp_path / "state", admin_token="secret-token")))


AUTH = {"Authorization": "Bearer secret-token"}


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "need the header `Authorization: Bearer <token>`"),
        ({"Authorization": "secret-token"}, "need the header `Authorization: Bearer <token>`"),
        ({"Authorization": "Basic secret-token"}, "need the header `Authorization: Bearer <token>`"),
        ({"Authorization": "Bearer wrong"}, "the admin token does not match"),
        ({"Authorization": "Bearer sécret".encode("latin-1")}, "the admin token does not match"),
    ],
)
def test_admin_endpoints_refuse_a_missing_or_wrong_token_with_401(
    admin_app: InProcess, headers: dict[str, str | bytes], message: str
) -> None:
    client = admin_app
    for method, path in [("GET", "/admin/faults"), ("PUT", "/admin/faults/x"), ("DELETE", "/admin/faults")]:
        answer = client.request(method, path, headers=headers, content=b"{not json")
        assert answer.status_code == 401, answer.text
        assert message in answer.json()["detail"] and "admin.token" in answer.json()["detail"]
        assert answer.headers["www-authenticate"] == "Bearer"


def test_admin_endpoints_put_list_delete_and_clear(admin_app: InProcess) -> None:
    client = admin_app
    body = {"kind": "latency", "latency_ms": 50, "ttl": 30, "variant": "challenger"}
    put = client.put("/admin/faults/slow", json=body, headers=AUTH).json()
    assert put["id"] == "slow" and put["latency_ms"] == 50 and put["variant"] == "challenger"
    assert put["expires_in"] == pytest.approx(30, abs=1) and put["expires_at"] > time.time() + 29
    client.put("/admin/faults/boom", json={"kind": "errors", "status": 503, "ttl": 30}, headers=AUTH)
    listed = client.get("/admin/faults", headers=AUTH).json()["faults"]
    assert [f["id"] for f in listed] == ["boom", "slow"] and listed[0]["status"] == 503
    assert client.delete("/admin/faults/slow", headers=AUTH).json() == {"removed": "slow"}
    missing = client.delete("/admin/faults/slow", headers=AUTH)
    assert missing.status_code == 404 and "no active fault 'slow'" in missing.json()["detail"]
    assert client.delete("/admin/faults", headers=AUTH).json() == {"removed": 1}
    assert client.get("/admin/faults", headers=AUTH).json() == {"faults": []}


@pytest.mark.parametrize(
    ("path", "body", "loc", "message"),
    [
        ("/admin/faults/x", b"{not json", ["body"], "Invalid JSON"),
        ("/admin/faults/x", b'{"kind": "errors", "ttl": 10, "status": 404}', ["body", "status"], "greater than"),
        ("/admin/faults/x", b'{"kind": "latency", "ttl": 10}', ["body"], "needs latency_ms > 0"),
        ("/admin/faults/x", b'{"kind": "errors"}', ["body", "ttl"], "Field required"),
        ("/admin/faults/Bad%20Id", b'{"kind": "errors", "ttl": 10}', ["path", "fault_id"], "invalid fault id"),
    ],
)
def test_a_bad_fault_put_gets_422_naming_the_field(
    admin_app: InProcess, path: str, body: bytes, loc: list[str], message: str
) -> None:
    client = admin_app
    answer = client.put(path, content=body, headers={**AUTH, "content-type": "application/json"})
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert any(e["loc"] == loc and message in e["msg"] for e in detail), detail


def test_admin_endpoints_are_not_in_the_openapi_schema(admin_app: InProcess) -> None:
    client = admin_app
    assert not [p for p in client.get("/openapi.json").json()["paths"] if "admin" in p]


def _admin(settings: Settings, handler: Callable[[httpx.Request], httpx.Response]) -> ServiceAdmin:
    return ServiceAdmin(settings, transport=httpx.MockTransport(handler))


def test_the_client_sends_the_token_and_reads_the_answers(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, admin_token="tok")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "PUT":
            return httpx.Response(200, json={"id": "x", "expires_at": 123.5})
        if request.method == "GET":
            return httpx.Response(200, json={"faults": [{"id": "x", "kind": "errors"}]})
        if request.url.path == "/admin/faults":
            return httpx.Response(200, json={"removed": 2})
        return httpx.Response(404, json={"detail": "no active fault"})

    admin = _admin(settings, handler)
    assert admin.put("x", errors()) == 123.5
    assert json.loads(seen[0].content) == errors().model_dump(mode="json")
    assert admin.list() == {"x": {"id": "x", "kind": "errors"}}
    assert admin.delete("x") is False
    assert admin.clear() == 2
    assert {r.headers["authorization"] for r in seen} == {"Bearer tok"}


def test_the_client_names_the_service_and_lab_up_when_it_does_not_answer(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, admin_token="tok")

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(RuntimeNotReady, match=rf"{settings.service_url}.*`lab up`"):
        _admin(settings, refuse).list()


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (401, {"detail": "the admin token does not match"}, "does not match.*admin.token.*LAB_ADMIN_TOKEN"),
        (422, {"detail": [{"loc": ["body", "ttl"], "msg": "Field required"}]}, "422: body.ttl: Field required"),
        (500, {"detail": "boom"}, "answered 500: boom"),
    ],
)
def test_the_client_turns_a_refusal_into_fault_injection_failed(
    tmp_path: Path, status: int, body: dict[str, Any], message: str
) -> None:
    settings = Settings(state_dir=tmp_path, admin_token="tok")
    with pytest.raises(FaultInjectionFailed, match=message):
        _admin(settings, lambda _: httpx.Response(status, json=body)).put("x", errors())


def overload(capacity: float = 10.0, **changes: Any) -> ServiceFault:
    fields = {"kind": "overload", "capacity": capacity, "latency_ms": 400.0, "degraded": ("debt_to_income",)}
    return ServiceFault(**{**fields, "ttl": 60.0, **changes})


def test_an_overload_slows_and_degrades_the_model_only_while_more_requests_reach_it_than_its_capacity() -> None:
    table, rng = FaultTable(), random.Random(0)
    table.put("o", overload(capacity=10.0), now=0.0)
    # 20 requests over 2 s (10 a second): at capacity, served well
    within = [table.decide("champion", 1.0 + i * 0.1, rng) for i in range(20)]
    assert all(d == NO_FAULT for d in within)
    # the 21st within the window: over capacity, slowed and scored with its feature read as 0
    over = table.decide("champion", 2.95, rng)
    assert over == Decision(0.4, None, frozenset({"debt_to_income"}))
    # what the fallback decides never counts nor suffers
    assert table.decide(FALLBACK, 2.96, rng) == Decision()
    # a quiet second later the load is back under capacity
    assert table.decide("champion", 6.0, rng) == Decision()


def test_the_fallbacks_requests_do_not_load_the_model() -> None:
    table, rng = FaultTable(), random.Random(0)
    table.put("o", overload(capacity=5.0), now=0.0)
    for i in range(100):
        assert table.decide(FALLBACK, 1.0 + i * 0.01, rng) == Decision()
    assert table.decide("champion", 2.0, rng) == Decision()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "overload", "latency_ms": 100, "degraded": ["income"]}, "an overload fault needs capacity > 0"),
        ({"kind": "latency", "latency_ms": 100, "capacity": 3}, "capacity and degraded apply to overload faults"),
        ({"kind": "overload", "capacity": 3, "degraded": ["region"]}, "unknown numeric feature 'region'"),
        ({"kind": "overload", "capacity": 3, "status": 503}, "status applies to errors faults only"),
        ({"kind": "errors", "latency_ms": 5}, "latency_ms and jitter_ms apply to latency and overload faults"),
    ],
)
def test_a_fault_of_one_kind_refuses_the_fields_of_another(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ServiceFault(**{**fields, "ttl": 60.0})
