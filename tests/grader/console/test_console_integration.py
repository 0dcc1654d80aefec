"""The console and its agents as real processes: the journal shipped exactly once and in order across kill -9 of
either side, who may read and write what, and an agent that cannot reach its console."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest

from grader.console.store import SqliteStore
from lab_runtime.console.wire import EVENTS_PATH, SIGNATURE_HEADER, headers
from lab_runtime.events import LAB_EVENT
from lab_runtime.journal import Journal
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
    done = threading.Event()

    def write() -> None:  # a busy sandbox: 3,000 events over about 6 s
        for i in range(3000):
            journal.append(LAB_EVENT, {"lab": "lab-01", "event": i, "aliases_before": {"x" * (i % 50): str(i)}})
            time.sleep(0.002)
        done.set()

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
                time.sleep(0.5)  # the agent ships into a console that is gone
                with console(store_path, port):
                    assert done.wait(60)
                    last = journal.events()[-1].id
                    wait_for(lambda: cursor(store_path, "ada") == last, 60, "every event at the console")
                    log = again.said()
    finally:
        writer.join()
    shipped = SqliteStore(store_path).events("ada")
    written = journal.events()
    assert len(shipped) == len(written) == 3000
    assert shipped == written  # once each, in order, every field as written
    assert log.count("does not answer") == 1, log  # the outage is one line, then one when it answers again
    assert "the console answers again" in log


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
        assert get("/api/me", ada).json()["learner"] == "ada"
        assert get("/export/xapi.json", ada).status_code == 403
        assert get("/api/agent/orders", teacher).status_code == 403  # an instructor's token ships no sandbox

        one = {"id": 1, "ts": 1.0, "source": "cli", "kind": "k", "payload": {}, "learner": "ada"}
        body = json.dumps({"after": 0, "events": [one]}).encode()
        as_bob = client.post(EVENTS_PATH, content=body, headers=headers(bob, "POST", EVENTS_PATH, body))
        assert as_bob.status_code == 403 and "this token is bob's" in as_bob.json()["detail"]
        forged = {**headers(ada, "POST", EVENTS_PATH, body), SIGNATURE_HEADER: "0" * 64}
        unsigned = client.post(EVENTS_PATH, content=body, headers=forged)
        assert unsigned.status_code == 401 and "does not sign this request" in unsigned.json()["detail"]
        garbled = b'{"after": 0, "events": "many"}'
        bad = client.post(EVENTS_PATH, content=garbled, headers=headers(ada, "POST", EVENTS_PATH, garbled))
        assert bad.status_code == 422 and bad.json()["detail"].startswith("events:")
        assert client.post(EVENTS_PATH, content=body, headers=headers(ada, "POST", EVENTS_PATH, body)).json() == {
            "cursor": 1
        }
        assert cursor(store_path, "bob") == 0

        issued.revoke(bob_id)
        assert get("/api/me", bob).status_code == 401
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
            started = time.monotonic()
            for i in range(200):
                journal.append(LAB_EVENT, {"lab": "lab-01", "event": i + 1, "aliases_before": {}})
            assert time.monotonic() - started < 5
            wait_for(lambda: "401" in a.said(), 30, "the agent's line on the refused token")
            lines = [ln for ln in a.said().splitlines() if "refused this sandbox's token" in ln]
    assert len(lines) == 1, a.said()
    assert "(401): the token is unknown or revoked" in lines[0]
    assert cursor(store_path, "ada") == 1
