"""The console and its agents as real processes: the journal shipped exactly once and in order across kill -9 of
either side, who may read and write what, and an agent that cannot reach its console."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from grader.console.store import OrderRecord, SqliteStore
from lab_runtime.console.wire import EVENTS_PATH, SIGNATURE_HEADER, TIME_HEADER, Order, headers
from lab_runtime.events import LAB_EVENT
from lab_runtime.journal import Journal
from tests.cli import LAB, lab, ok, one_line_error
from tests.conftest import free_port
from tests.grader.console.running import agent, agent_env, console
from tests.sandbox import wait_for

pytestmark = pytest.mark.integration


def cursor(store: Path, learner: str) -> int:
    held = SqliteStore(store)
    try:
        return next((s.cursor for s in held.sandboxes() if s.learner == learner), 0)
    finally:
        held.close()


def test_kill_9_of_the_agent_then_of_the_console_mid_stream_loses_and_repeats_no_event(tmp_path: Path) -> None:
    store_path = tmp_path / "console" / "console.db"
    issued = SqliteStore(store_path)
    _, token = issued.issue("learner", "ada")
    issued.close()
    port = free_port()
    env = agent_env(tmp_path / "sandbox", f"http://127.0.0.1:{port}", token, "ada")
    journal = Journal(tmp_path / "sandbox" / "journal.db", source="test", learner="ada")
    stop = threading.Event()

    def write() -> None:  # a busy sandbox: about 400 events a second, until the test has done its worst
        i = 0
        while not stop.is_set():
            journal.append(LAB_EVENT, {"lab": "lab-01", "event": i, "aliases_before": {"x" * (i % 50): str(i)}})
            i += 1
            time.sleep(0.002)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        with console(store_path, port) as first:
            with agent(env) as a:
                wait_for(lambda: cursor(store_path, "ada") > 300, 60, "the first events at the console")
                a.kill9()
            held = cursor(store_path, "ada")
            with agent(env) as again:
                wait_for(lambda: cursor(store_path, "ada") > held + 300, 60, "events after the agent's restart")
                first.kill9()
                wait_for(lambda: "does not answer" in again.said(), 30, "the agent finding the console gone")
                with console(store_path, port):
                    wait_for(lambda: "answers again" in again.said(), 60, "the agent finding the console back")
                    stop.set()
                    writer.join()
                    last = journal.events()[-1].id
                    wait_for(lambda: cursor(store_path, "ada") == last, 60, "every event at the console")
                    log = again.said()
    finally:
        stop.set()
        writer.join()
    shipped = SqliteStore(store_path).events("ada")
    written = journal.events()
    assert len(written) > held + 600
    assert shipped == written  # once each, in order, every field as written
    assert log.count("does not answer") == 1, log  # the outage is one line, then one when it answers again


def test_tokens_decide_who_reads_and_writes_what(tmp_path: Path) -> None:
    store_path = tmp_path / "console" / "console.db"
    issued = SqliteStore(store_path)
    _, ada = issued.issue("learner", "ada")
    bob_id, bob = issued.issue("learner", "bob")
    _, teacher = issued.issue("instructor", None)
    with console(store_path) as c, httpx.Client(base_url=c.url, trust_env=False, timeout=10) as client:

        def get(path: str, token: str | None) -> httpx.Response:
            return client.get(path, headers={"Authorization": f"Bearer {token}"} if token else {})

        assert get("/api/cohort", None).status_code == 401
        assert "unknown or revoked" in get("/api/cohort", "labc_nope").json()["detail"]
        refused = get("/api/cohort", ada)
        assert refused.status_code == 403 and "needs an instructor token" in refused.json()["detail"]
        assert [r["learner"] for r in get("/api/cohort", teacher).json()["learners"]] == ["ada", "bob"]
        status = json.loads(ok(lab("console", "status", "--json", "--url", c.url, "--token", teacher)))
        assert [r["learner"] for r in status["learners"]] == ["ada", "bob"]
        one_line_error(lab("console", "status", "--url", c.url, "--token", ada), "the console refused: 403")
        port = c.url.rsplit(":", 1)[1]
        one_line_error(
            lab("console", "serve", "--port", port, "--store", str(store_path)),
            f"cannot listen on 127.0.0.1:{port} (Address already in use)",
        )
        assert get("/api/me", ada).json()["learner"] == "ada"
        assert get("/export/xapi.json", ada).status_code == 403
        polled = client.get("/api/agent/orders", headers=headers(teacher, "GET", "/api/agent/orders", b"", time.time()))
        assert polled.status_code == 403  # an instructor's token ships no sandbox

        def post(token: str, target: str, body: bytes, **changed: str | bytes) -> httpx.Response:
            return client.post(
                target, content=body, headers={**headers(token, "POST", target, body, time.time()), **changed}
            )

        one = {"id": 1, "ts": 1.0, "source": "cli", "kind": "k", "payload": {}, "learner": "ada"}
        body = json.dumps({"journal": "c" * 32, "after": 0, "events": [one]}).encode()
        state = {"runtime": "local", "learner": "ada"}
        ada_sandbox = json.dumps({"journal": "d" * 32, "after": 0, "events": [], "state": state}).encode()
        as_bob = post(bob, EVENTS_PATH, ada_sandbox)
        assert (
            as_bob.status_code == 403 and "this token is bob's, the sandbox journals as ada" in as_bob.json()["detail"]
        )
        forged = post(ada, EVENTS_PATH, body, **{SIGNATURE_HEADER: "0" * 64})
        assert forged.status_code == 401 and "does not sign this request" in forged.json()["detail"]
        stale = post(ada, EVENTS_PATH, body, **{TIME_HEADER: f"{time.time() - 3600:.3f}"})
        assert stale.status_code == 401 and "off the console's clock" in stale.json()["detail"]
        garbled = b'{"journal": "' + b"c" * 32 + b'", "after": 0, "events": "many"}'
        bad = post(ada, EVENTS_PATH, garbled)
        assert bad.status_code == 422 and bad.json()["detail"].startswith("events:")
        assert post(ada, EVENTS_PATH, body).json() == {"cursor": 1}
        assert cursor(store_path, "bob") == 0
        odd_signature = post(ada, EVENTS_PATH, body, **{SIGNATURE_HEADER: "é".encode("latin-1") * 64})
        assert odd_signature.status_code == 401
        huge = post(ada, EVENTS_PATH, b"x" * (5 * 2**20))
        assert huge.status_code == 413 and "at most" in huge.json()["detail"]
        far = "/api/agent/orders?after=100000000000000000000"
        signed_far = client.get(far, headers=headers(ada, "GET", far, b"", time.time()))
        assert signed_far.status_code == 422 and "after" in signed_far.json()["detail"]
        teacher_auth = {"Authorization": f"Bearer {teacher}"}
        odd = client.post("/api/orders", content=b'{"learners": 5, "order": {"action": "abort"}}', headers=teacher_auth)
        assert odd.status_code == 422 and "learners" in odd.json()["detail"]
        cookie_only = client.get("/api/cohort", cookies={"lab_console": teacher})
        assert cookie_only.status_code == 401  # the API takes bearer tokens only: no other site's page calls it
        elsewhere = client.post(
            "/orders", content=b"learner=ada&action=abort", cookies={"lab_console": teacher},
            headers={"Origin": "http://127.0.0.1:5000", "Content-Type": "application/x-www-form-urlencoded"},
        )  # fmt: skip
        assert elsewhere.status_code == 403 and "cannot act on this console" in elsewhere.json()["detail"]
        assert issued.orders() == []

        issued.revoke(bob_id)
        assert get("/api/me", bob).status_code == 401
        outside = subprocess.run(  # an instructor's machine with no sandbox: the store is all the console needs
            [*LAB, "console", "token", "cy", "--store", str(store_path)], cwd=tmp_path, capture_output=True, text=True,
            env={k: v for k, v in os.environ.items() if k not in ("LAB_STATE_DIR", "LAB_HOME")}, timeout=60,
        )  # fmt: skip
        assert outside.returncode == 0, outside.stderr
        cy = issued.identify(outside.stdout.strip().splitlines()[-1])
        assert cy is not None and cy.learner == "cy"
        page = client.post(
            "/login", content=b"token=labc_nope", headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert page.status_code == 401 and "unknown or revoked" in page.text


def test_an_agent_whose_token_is_revoked_says_so_once_and_the_sandbox_journal_goes_on(tmp_path: Path) -> None:
    store_path = tmp_path / "console" / "console.db"
    issued = SqliteStore(store_path)
    token_id, token = issued.issue("learner", "ada")
    with console(store_path) as c:
        env = agent_env(tmp_path / "sandbox", c.url, token, "ada")
        journal = Journal(tmp_path / "sandbox" / "journal.db", source="test", learner="ada")
        journal.append(LAB_EVENT, {"lab": "lab-01", "event": 0, "aliases_before": {}})
        with agent(env) as a:
            wait_for(lambda: cursor(store_path, "ada") == 1, 60, "the first event at the console")
            issued.revoke(token_id)
            for i in range(200):  # the sandbox journals on, whatever the console says to its agent
                journal.append(LAB_EVENT, {"lab": "lab-01", "event": i + 1, "aliases_before": {}})
            wait_for(lambda: "401" in a.said(), 30, "the agent's line on the refused token")
            lines = [ln for ln in a.said().splitlines() if "refused this sandbox's token" in ln]
    assert len(lines) == 1, a.said()
    assert "(401): the token is unknown or revoked" in lines[0]
    assert cursor(store_path, "ada") == 1


def test_orders_are_answered_with_the_sandboxes_reason_and_none_runs_twice_across_an_agent_restart(
    tmp_path: Path,
) -> None:
    store_path = tmp_path / "console" / "console.db"
    issued = SqliteStore(store_path)
    _, token = issued.issue("learner", "ada")
    with console(store_path) as c:
        env = agent_env(tmp_path / "sandbox", c.url, token, "ada")

        def answered(order_id: int) -> OrderRecord:
            wait_for(lambda: next(o for o in issued.orders() if o.order.id == order_id).state != "pending", 60, "taken")
            wait_for(
                lambda: next(o for o in issued.orders() if o.order.id == order_id).message is not None, 90, "answer"
            )
            return next(o for o in issued.orders() if o.order.id == order_id)

        with agent(env) as first:
            (starved,) = issued.place(["ada"], Order(action="drill", drill="incident-service-starved", seed=1))
            refused = answered(starved)
            first.kill9()
        assert refused.state == "refused" and "needs the compose runtime" in (refused.message or "")
        with agent(env) as again:
            (abort,) = issued.place(["ada"], Order(action="abort"))
            nothing = answered(abort)
            log = again.said()
    assert nothing.state == "refused" and "no drill" in (nothing.message or ""), nothing
    assert log.count(f"order {starved} (drill)") == 1, log  # taken before the kill: not run again after it
    assert log.count(f"order {abort} (abort)") == 1, log
