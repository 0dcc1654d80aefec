"""The console agent, a sandbox service while LAB_CONSOLE_URL and LAB_CONSOLE_TOKEN are set: it ships the journal
to the instructor console and carries out the console's drill orders. It only ever calls out (it works behind NAT)
and nothing in the sandbox waits for it: while the console is down it retries, and the sandbox runs on.

Its cursor file (`console-agent.json` in the state dir) keeps the last event the console acknowledged and the last
order taken, so after a restart of either side every event arrives once and in order, and no order runs twice:
the console takes a batch only when it starts right after the events it holds, and otherwise answers with where
it is.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import ValidationError

from lab_runtime.console.wire import (
    BATCH,
    EVENTS_PATH,
    MAX_ID,
    ORDER_WAIT,
    ORDERS_PATH,
    Batch,
    Order,
    OrderResult,
    SandboxState,
    WireEvent,
    headers,
)
from lab_runtime.files.atomic import read_json, write_json_atomic
from lab_runtime.journal import Journal
from lab_runtime.labs.scripting import LAB
from lab_runtime.settings import Settings

log = logging.getLogger("lab_runtime.console.agent")

CURSOR_FILE = "console-agent.json"
POLL = 0.1  # seconds between reads of a journal with nothing new
STATE_EVERY = 5.0  # seconds between reports of the sandbox's state
BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)  # seconds before each retry of a console that did not answer
REFUSED_WAIT = 30.0  # seconds before trying a token the console refused again
ORDER_TIMEOUT = 120.0  # seconds an order's `lab` command may take to start its runner
STATUS_HINT = "`lab drill status` in the sandbox says whether a drill started"


class Cursor:
    """The agent's durable place: the last journal id the console holds, the last order taken, and the answers to
    orders not yet delivered."""

    def __init__(self, path: Path) -> None:
        self.path = path
        body = read_json(path) or {}
        self.events = int(body.get("events", 0))
        self.order = int(body.get("order", 0))
        self.unreported: dict[str, dict[str, str]] = dict(body.get("unreported", {}))
        self._lock = threading.Lock()

    def save(self, **changes: Any) -> None:
        with self._lock:
            for name, value in changes.items():
                setattr(self, name, value)
            body = {"events": self.events, "order": self.order, "unreported": self.unreported}
            write_json_atomic(self.path, body)


class Say:
    """The agent's log of its link to the console: a line when trouble starts or changes kind (a console down for
    an hour is one line, not thousands), and one when it ends."""

    def __init__(self) -> None:
        self._trouble: str | None = None

    def __call__(self, kind: str | None, line: str = "") -> None:
        """`kind` of trouble now (None: none), said in `line`."""
        if kind is not None and kind != self._trouble:
            log.warning(line)
        elif kind is None and self._trouble is not None:
            log.info("the console answers again")
        self._trouble = kind


class Link:
    """Signed HTTP calls to the console (one connection each, kept alive)."""

    def __init__(self, url: str, token: str, timeout: float) -> None:
        self.token = token
        self.client = httpx.Client(
            base_url=url.rstrip("/"), timeout=httpx.Timeout(timeout, connect=3.0), trust_env=False
        )

    def post(self, path: str, body: bytes) -> httpx.Response:
        return self.client.post(path, content=body, headers=headers(self.token, "POST", path, body, time.time()))

    def get(self, path: str, params: dict[str, Any], timeout: float) -> httpx.Response:
        target = f"{path}?{urlencode(params)}"
        return self.client.get(target, headers=headers(self.token, "GET", target, b"", time.time()), timeout=timeout)


def problem(response: httpx.Response) -> str:
    """What the console said was wrong, in one line."""
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    if response.status_code == 401:
        return f"the console refused this sandbox's token (401): {detail}"
    return f"the console answered {response.status_code}: {detail or response.text[:200]}"


class Agent:
    def __init__(self, settings: Settings, state: Callable[[], SandboxState], stop: threading.Event) -> None:
        assert settings.console_url and settings.console_token
        self.settings = settings
        self.state = state
        self.stop = stop
        self.cursor = Cursor(settings.root / CURSOR_FILE)
        self.heartbeat = settings.console_agent_heartbeat
        self.say = Say()
        self.ship_link = Link(settings.console_url, settings.console_token, 10.0)
        self.order_link = Link(settings.console_url, settings.console_token, ORDER_WAIT + 10.0)

    def run(self) -> None:
        """Ship and follow orders in threads of their own; beat the heartbeat here until stopped (a console that
        hangs does not make the agent look dead)."""
        shipper = threading.Thread(target=self.ship, name="ship", daemon=True)
        orders = threading.Thread(target=self.follow_orders, name="orders", daemon=True)  # a poll held open is cut
        shipper.start()
        orders.start()
        while not self.stop.is_set() and shipper.is_alive() and orders.is_alive():
            self.heartbeat.touch()
            self.stop.wait(1.0)
        died = not self.stop.is_set()
        self.stop.set()
        shipper.join(timeout=3.0)  # a batch on its way may finish; the cursor file is written whole either way
        if died:
            raise SystemExit("a thread of the console agent died (its error is above); `lab up` starts it again")

    def _wait(self, seconds: float) -> None:
        self.stop.wait(seconds)

    def ship(self) -> None:
        """Send the journal after the cursor, a batch at a time, with the sandbox's state every few seconds."""
        journal = Journal(self.settings.journal_path, source="console-agent")
        identity = journal.identity()
        failures, state_at = 0, 0.0
        try:
            while not self.stop.is_set():
                now = time.monotonic()
                found = journal.events(after_id=self.cursor.events, limit=BATCH)
                due = now - state_at >= STATE_EVERY
                if not found and not due:
                    self._wait(POLL)
                    continue
                try:
                    state = self.state() if due else None
                except Exception as exc:  # a state that cannot be read is not sent; the events are
                    log.warning("cannot read the sandbox's state: %r", exc)
                    state = None
                events = [WireEvent.of(e) for e in found]
                wait = self._send(Batch(journal=identity, after=self.cursor.events, events=events, state=state))
                if wait is None:
                    failures, state_at = 0, now if due else state_at
                    continue
                failures += 1
                self._wait(wait if wait > 0 else BACKOFF[min(failures, len(BACKOFF)) - 1])
        finally:
            journal.close()

    def _send(self, batch: Batch) -> float | None:
        """Deliver one batch: None once the console has it (or said where it is), else seconds to wait (0: back
        off)."""
        try:
            response = self.ship_link.post(EVENTS_PATH, batch.model_dump_json().encode())
        except httpx.HTTPError as exc:
            self.say("down", f"the console at {self.settings.console_url} does not answer ({exc!r}); retrying")
            return 0.0
        if response.status_code in (200, 409):  # 409: it holds other events than the batch assumed
            try:
                cursor = int(response.json()["cursor"])
            except (ValueError, KeyError, TypeError):
                self.say("garbled", f"the console's answer is not one an agent reads: {response.text[:200]!r}")
                return 0.0
            self.say(None)
            self.cursor.save(events=cursor)
            return None
        self.say(str(response.status_code), problem(response))
        return REFUSED_WAIT if response.status_code in (401, 403) else 0.0

    def follow_orders(self) -> None:
        """Poll the console for orders (it holds each poll open until one comes) and carry them out in turn."""
        failures = 0
        while not self.stop.is_set():
            self._report()
            try:
                response = self.order_link.get(
                    ORDERS_PATH, {"after": self.cursor.order, "wait": ORDER_WAIT}, ORDER_WAIT + 10.0
                )
            except httpx.HTTPError:  # the shipper, which calls every few seconds, says how the console is
                failures += 1
                self._wait(BACKOFF[min(failures, len(BACKOFF)) - 1])
                continue
            if response.status_code != 200:
                self._wait(REFUSED_WAIT if response.status_code in (401, 403) else 5.0)
                continue
            failures = 0
            try:
                orders = response.json()["orders"]
            except (ValueError, KeyError, TypeError):
                self._wait(5.0)
                continue
            for raw in orders if isinstance(orders, list) else []:
                self._carry_out(raw)

    def _carry_out(self, raw: dict[str, Any]) -> None:
        try:
            order = Order.model_validate(raw)
        except ValidationError as exc:
            given = raw.get("id") if isinstance(raw, dict) else None
            order_id = given if isinstance(given, int) and 0 < given <= MAX_ID else 0
            if order_id > self.cursor.order:  # refused once, and never read again
                said = f"this sandbox cannot read the order: {exc.errors()[0]['msg']}"
                self._answer(order_id, OrderResult(state="refused", message=said), order=order_id)
            return
        if order.id <= self.cursor.order:
            return  # taken before a restart
        # Taken before it runs, so it never runs twice; its answer, should the agent stop before it has one, says so.
        stopped = OrderResult(state="refused", message=f"the agent stopped while starting it; {STATUS_HINT}")
        self._answer(order.id, stopped, deliver=False, order=order.id)
        result = run_order(order)
        log.info("order %d (%s): %s: %s", order.id, order.action, result.state, result.message)
        self._answer(order.id, result)

    def _answer(self, order_id: int, result: OrderResult, deliver: bool = True, **cursor: int) -> None:
        """Keep `result` as order `order_id`'s answer until the console has it (and move the cursor with it)."""
        self.cursor.save(unreported={**self.cursor.unreported, str(order_id): result.model_dump()}, **cursor)
        if deliver:
            self._report()

    def _report(self) -> None:
        """Deliver the answers to orders the console has not had yet."""
        for order_id, body in list(self.cursor.unreported.items()):
            path = f"{ORDERS_PATH}/{order_id}"
            try:
                response = self.order_link.post(path, OrderResult.model_validate(body).model_dump_json().encode())
            except httpx.HTTPError:
                return  # the poll that follows says the console is down
            if response.status_code in (200, 404, 409):
                rest = {k: v for k, v in self.cursor.unreported.items() if k != order_id}
                self.cursor.save(unreported=rest)


def run_order(order: Order) -> OrderResult:
    """Carry out `order` with its `lab` command: started, with what the command said, or refused with why."""
    try:
        done = subprocess.run(
            [*LAB, *order.argv()], capture_output=True, text=True, timeout=ORDER_TIMEOUT, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return OrderResult(state="refused", message=f"`lab {' '.join(order.argv())}` took over {ORDER_TIMEOUT:.0f}s")
    lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    said = lines[-1] if lines else f"exit code {done.returncode}"
    if done.returncode == 0:
        return OrderResult(state="started", message=said[:2000])
    return OrderResult(state="refused", message=said.removeprefix("error: ")[:2000])
