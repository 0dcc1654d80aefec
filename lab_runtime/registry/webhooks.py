"""Registry pushes: MLflow's webhooks wake the model service and the registry watcher when an alias or a version
tag changes, instead of both asking MLflow twice a second.

Each listener owns one webhook, named after it and pointed at its own URL, with a secret drawn when it starts;
MLflow signs every delivery with it (HMAC-SHA256 of `delivery_id.timestamp.body`, base64, `v1,` first). A
verified delivery only wakes the listener, which then reads the registry as a poll does: a payload is never
taken for state. The poll stays, slow (`poll_interval`), as the safety net for what sends no webhook (a
registered model's own tags set outside the lab's commands) and for deliveries missed while a listener was down.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from lab_runtime.errors import RuntimeNotReady

if TYPE_CHECKING:
    from lab_runtime.registry.rest import Registry

log = logging.getLogger(__name__)

EVENTS = [
    {"entity": "MODEL_VERSION_ALIAS", "action": "CREATED"},
    {"entity": "MODEL_VERSION_ALIAS", "action": "DELETED"},
    {"entity": "MODEL_VERSION_TAG", "action": "SET"},
    {"entity": "MODEL_VERSION_TAG", "action": "DELETED"},
]
MAX_AGE = 300.0  # seconds a delivery's timestamp may be from now: an older one is a replay
SIGNATURE, TIMESTAMP, DELIVERY = "x-mlflow-signature", "x-mlflow-timestamp", "x-mlflow-delivery-id"


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """MLflow's signature of a delivery: `v1,` and the base64 HMAC-SHA256 of `delivery_id.timestamp.body`."""
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()


def verified(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> bool:
    """Whether `body` with `headers` (any case) was signed with `secret` within MAX_AGE of `now`."""
    named = {k.lower(): v for k, v in headers.items()}
    signature, timestamp, delivery = named.get(SIGNATURE), named.get(TIMESTAMP), named.get(DELIVERY)
    if not (signature and timestamp and delivery):
        return False
    try:
        if abs(now - float(timestamp)) > MAX_AGE:
            return False
    except ValueError:
        return False
    return hmac.compare_digest(signature, sign(secret, delivery, timestamp, body))


class Wakeup:
    """A listener's webhook (`name`, to `url`) and the event its loop waits on between two reads of the registry.

    `pushed` holds from the first verified delivery after subscribing (MLflow's test delivery, asked for at once)
    until the registry stops answering or a delivery is refused (MLflow holds another secret, e.g. its cache of
    the subscriptions is a second old): only then may the loop read the registry slowly.
    """

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.url = url
        self.secret = secrets.token_urlsafe(32)
        self.subscribed = False  # MLflow took the subscription
        self.pushed = False  # and a delivery signed with this secret arrived since
        self.pushes = 0  # verified deliveries received
        self.refused = 0  # deliveries refused (bad or missing signature, too old)
        self._event = threading.Event()
        self._said: str | None = None

    def subscribe(self, registry: Registry) -> None:
        """Point the webhook here and ask MLflow for a test delivery, unless that is done; a failure is logged
        (once per reason; not while MLflow is still starting) and tried again at the next read."""
        if self.subscribed:
            return
        try:
            webhook = registry.subscribe(self.name, self.url, self.secret, EVENTS)
            self.subscribed = True  # before the test: its delivery may arrive before the call returns
            registry.test_webhook(webhook)
        except RuntimeNotReady:
            self.subscribed = False
            return  # MLflow not up (yet): the poll says so
        except Exception as exc:  # any failure leaves the listener polling, never stops it
            self.subscribed = False
            if str(exc) != self._said:
                log.warning("webhook %s not subscribed (%s); polling until it is", self.name, exc)
            self._said = str(exc)
            return
        self._said = None
        log.debug("webhook %s subscribed: %s", self.name, self.url)

    def lost(self) -> None:
        """The registry stopped answering: subscribe again once it answers (its store may be new)."""
        self.subscribed = self.pushed = False

    def receive(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Wake the loop; whether the delivery is MLflow's, signed with this secret (one that is not makes the
        loop subscribe again and read the registry at once, since a change may have gone unseen)."""
        if not verified(self.secret, headers, body, time.time()):
            self.refused += 1
            self.lost()
            self._event.set()
            return False
        self.pushes += 1
        self.pushed = self.subscribed
        self._event.set()
        return True

    def wake(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> bool:
        """Wait for a delivery (or `wake`) at most `timeout` seconds; whether one came."""
        woke = self._event.wait(timeout)
        if woke:
            self._event.clear()
        return woke


class Receiver:
    """A small HTTP server for a process that has none (the registry watcher), on a free port of `bind`: each
    POST goes to the `receive` given to `start`, answered 204 when it is taken, 401 when it is not."""

    def __init__(self, bind: str) -> None:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(204 if receiver.receive(dict(self.headers.items()), body) else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                log.debug(format, *args)

        self.receive: Callable[[Mapping[str, str], bytes], bool] = lambda headers, body: False
        self._server = http.server.ThreadingHTTPServer((bind, 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])

    def start(self, receive: Callable[[Mapping[str, str], bytes], bool]) -> None:
        self.receive = receive
        threading.Thread(target=self._server.serve_forever, name="webhooks", daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
