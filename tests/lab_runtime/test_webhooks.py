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
    assert not wakeup.wait(0)  # neither woke it
    assert (wakeup.pushes, wakeup.refused) == (0, 2)
    assert post(url, BODY, headers(wakeup.secret)) == 204
    assert wakeup.wait(0) and not wakeup.wait(0)  # woken once, then waiting again
    assert (wakeup.pushes, wakeup.refused) == (1, 2)


def test_a_receiver_answers_nothing_but_post(listening: tuple[Wakeup, str]) -> None:
    _, url = listening
    assert loopback.get(url, timeout=2).status_code == 501  # the standard library's "unsupported method"
