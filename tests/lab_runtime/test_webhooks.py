"""Registry webhooks: MLflow's signature checked as MLflow makes it, and a receiver that wakes its listener only
for a signed delivery (a real HTTP server on a free loopback port)."""

from __future__ import annotations

import http.client
import json
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from mlflow.webhooks.delivery import _generate_hmac_signature

from lab_runtime import loopback
from lab_runtime.errors import RuntimeNotReady
from lab_runtime.registry.webhooks import Receiver, Wakeup, sign, verified
from lab_runtime.settings import HOST

BODY = json.dumps({"entity": "model_version_alias", "action": "created", "data": {"alias": "champion"}}).encode()


def headers(secret: str, body: bytes = BODY, at: float | None = None) -> dict[str, str]:
    delivery, stamp = str(uuid.uuid4()), str(int(time.time() if at is None else at))
    return {
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": sign(secret, delivery, stamp, body),
    }


def test_our_signature_is_mlflows() -> None:
    assert sign("s3cret", "d-1", "1700000000", BODY) == _generate_hmac_signature(
        "s3cret", "d-1", "1700000000", BODY.decode()
    )


def test_a_delivery_is_verified_by_secret_body_and_age_whatever_the_header_case() -> None:
    now = time.time()
    good = headers("s3cret", at=now)
    assert verified("s3cret", good, BODY, now)
    assert verified("s3cret", {k.lower(): v for k, v in good.items()}, BODY, now)
    assert not verified("other", good, BODY, now)  # another secret
    assert not verified("s3cret", good, BODY + b" ", now)  # a changed body
    assert not verified("s3cret", headers("s3cret", at=now - 301), BODY, now)  # a replay, older than MAX_AGE
    assert not verified("s3cret", {k: v for k, v in good.items() if k != "X-MLflow-Signature"}, BODY, now)
    assert not verified("s3cret", {**good, "X-MLflow-Timestamp": "soon"}, BODY, now)


@pytest.fixture
def listening() -> Iterator[tuple[Wakeup, str]]:
    receiver = Receiver(HOST)
    wakeup = Wakeup("test", f"http://{HOST}:{receiver.port}/")
    receiver.start(wakeup.receive)
    try:
        yield wakeup, wakeup.url
    finally:
        receiver.close()


def post(url: str, body: bytes, sent: dict[str, str]) -> int:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or HOST, parts.port, timeout=5)
    try:
        connection.request("POST", "/", body=body, headers={**sent, "Content-Type": "application/json"})
        return connection.getresponse().status
    finally:
        connection.close()


def test_a_signed_delivery_wakes_the_listener_and_an_unsigned_one_is_refused(listening: tuple[Wakeup, str]) -> None:
    wakeup, url = listening
    assert post(url, BODY, {}) == 401
    assert post(url, BODY, headers("not the listener's secret")) == 401
    assert (wakeup.pushes, wakeup.refused) == (0, 2) and not wakeup.pushed
    assert wakeup.wait(0)  # a refusal wakes the loop too: it reads the registry and subscribes again
    assert post(url, BODY, headers(wakeup.secret)) == 204
    assert wakeup.wait(0) and not wakeup.wait(0)  # woken once, then waiting again
    assert (wakeup.pushes, wakeup.refused) == (1, 2)


def test_a_receiver_answers_nothing_but_post(listening: tuple[Wakeup, str]) -> None:
    _, url = listening
    assert loopback.get(url, timeout=2).status_code == 501  # the standard library's "unsupported method"


class Registry:
    """A stand-in registry: `subscribe` takes the subscription, `test_webhook` delivers as MLflow would."""

    def __init__(self, wakeup: Wakeup | None = None, fails: Exception | None = None) -> None:
        self.wakeup, self.fails, self.tests = wakeup, fails, 0

    def subscribe(self, name: str, url: str, secret: str, events: list[dict[str, str]]) -> str:
        if self.fails:
            raise self.fails
        return "wh-1"

    def test_webhook(self, webhook_id: str) -> None:
        self.tests += 1
        if self.wakeup:  # MLflow's test delivery arrives before the call returns
            self.wakeup.receive(headers(self.wakeup.secret), BODY)


def test_a_listener_is_pushed_only_once_a_signed_delivery_came_after_subscribing() -> None:
    wakeup = Wakeup("w", "http://127.0.0.1:1/")
    registry = Registry(wakeup)
    wakeup.subscribe(registry)  # type: ignore[arg-type]
    assert wakeup.subscribed and wakeup.pushed and registry.tests == 1
    wakeup.subscribe(registry)  # type: ignore[arg-type]
    assert registry.tests == 1  # subscribed: nothing asked again
    assert not wakeup.receive(headers("a secret MLflow no longer holds"), BODY)
    assert not wakeup.subscribed and not wakeup.pushed  # back to polling, and subscribing again
    assert wakeup.wait(0)  # the refusal woke the loop to read the registry at once
    wakeup.subscribe(registry)  # type: ignore[arg-type]
    assert wakeup.pushed and registry.tests == 2
    wakeup.lost()
    assert not wakeup.subscribed and not wakeup.pushed


def test_a_subscription_mlflow_takes_but_never_delivers_leaves_the_listener_polling() -> None:
    wakeup = Wakeup("w", "http://127.0.0.1:1/")
    wakeup.subscribe(Registry(None))  # type: ignore[arg-type]
    assert wakeup.subscribed and not wakeup.pushed


def test_a_failed_subscription_is_logged_once_per_reason_and_never_while_mlflow_starts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    wakeup = Wakeup("w", "http://127.0.0.1:1/")
    wakeup.subscribe(Registry(fails=RuntimeNotReady("MLflow is unreachable")))  # type: ignore[arg-type]
    for _ in range(3):
        wakeup.subscribe(Registry(fails=KeyError("webhook_id")))  # type: ignore[arg-type]
    assert not wakeup.subscribed
    assert [r.getMessage() for r in caplog.records] == ["webhook w not subscribed ('webhook_id'); polling until it is"]
