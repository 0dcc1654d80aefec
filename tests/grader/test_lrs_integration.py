"""xAPI statements sent to a real LRS (Ralph) through the durable outbox: taken once and read back as written,
kept when the LRS is down, taken once after the sender was killed mid-send, 4xx reported, 5xx retried."""

from __future__ import annotations

import csv
import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from grader.results import sign
from lab_runtime.settings import HOST
from tests.cli import LAB, lab, ok, one_line_error
from tests.grader.lrs import PASSWORD, USER, running_ralph
from tests.grader.test_cohort import KEY, raw, run
from tests.sandbox import wait_for

pytestmark = pytest.mark.integration
CAPSTONE = {"capstone_id": "c1", "finished": True, "passed": False, "score": 55.0, "dimensions": {"detection": 0.5}}
PER_LEARNER = 4  # a lab, two drill runs and a capstone


def cohort(tmp_path: Path, learners: int) -> Path:
    """Signed bundles of `learners` learners in a directory."""
    folder = tmp_path / "cohort"
    folder.mkdir()
    for i in range(learners):
        name = f"learner-{i:03d}"
        runs = [
            {**run("drift-credit-score-shift", 10.0 + i, 40.0 + i, score=80.0), "run_id": f"{name}-1"},
            {**run("incident-error-burst", 5.0, None, score=20.0), "run_id": f"{name}-2"},
        ]
        (folder / f"{name}.json").write_text(json.dumps(sign(raw(name, runs, capstone=CAPSTONE), KEY.encode())))
    return folder


@pytest.fixture
def env(lab_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {**lab_env, "LAB_INSTRUCTOR_KEY": KEY, "LAB_LRS_USER": USER, "LAB_LRS_PASSWORD": PASSWORD}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def test_statements_reach_the_lrs_once_and_read_back_as_written(env: dict[str, str], tmp_path: Path) -> None:
    folder, written = cohort(tmp_path, 3), tmp_path / "statements.json"
    with running_ralph(tmp_path / "ralph") as ralph:
        sent = ok(lab("results", "xapi", str(folder), "--out", str(written), "--lrs", ralph.url))
        assert f"wrote 12 statement(s) of 3 learner(s) to {written}" in sent
        assert f"sent 12 statement(s) to {ralph.url} (12 newly queued, 0 still queued)" in sent
        mine = {s["id"]: s for s in json.loads(written.read_text())}
        held = {s["id"]: s for s in ralph.statements()}
        assert held.keys() == mine.keys()
        for sid, statement in mine.items():  # the LRS adds `stored` and `authority`, and changes nothing
            assert {k: held[sid][k] for k in statement} == statement
        again = ok(lab("results", "xapi", str(folder), "--lrs", ralph.url))
        assert f"sent 0 statement(s) to {ralph.url} (0 newly queued, 0 still queued)" in again
        assert len(ralph.statements()) == 12


def test_statements_wait_in_the_outbox_while_the_lrs_is_down(env: dict[str, str], tmp_path: Path) -> None:
    folder = cohort(tmp_path, 2)
    with running_ralph(tmp_path / "ralph", start=False) as ralph:
        down = lab("results", "xapi", str(folder), "--lrs", ralph.url, "--retries", "1")
        assert down.returncode == 1 and "Traceback" not in down.stderr + down.stdout
        assert "trying again in 0.5s" in down.stderr
        assert f"the LRS at {ralph.url}statements is unreachable or failing (ConnectError" in down.stderr
        assert "after 2 tries; 8 statement(s) stay queued in" in down.stderr and "run the command again" in down.stderr
        ralph.start()
        up = ok(lab("results", "xapi", str(folder), "--lrs", ralph.url))
        assert f"sent 8 statement(s) to {ralph.url} (0 newly queued, 0 still queued)" in up
        assert len(ralph.statements()) == 8


def test_a_sender_killed_mid_send_leaves_nothing_lost_or_doubled(env: dict[str, str], tmp_path: Path) -> None:
    learners = 50
    folder, total = cohort(tmp_path, learners), learners * PER_LEARNER
    with running_ralph(tmp_path / "ralph") as ralph:
        command = [*LAB, "results", "xapi", str(folder), "--lrs", ralph.url, "--batch", "1"]
        with (tmp_path / "sender.log").open("w") as log:
            sender = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_for(lambda: ralph.held() >= 5, 60, "the first statements to reach the LRS (see sender.log)")
        finally:
            sender.kill()
            sender.wait(10)
        assert len(ralph.statements()) < total, "the sender finished before it could be killed"
        done = ok(lab("results", "xapi", str(folder), "--lrs", ralph.url))
        assert "(0 newly queued, 0 still queued)" in done
        held = [s["id"] for s in ralph.statements()]
        assert len(held) == len(set(held)) == total


def test_a_refusal_is_reported_with_the_lrs_message_and_nothing_is_lost(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = cohort(tmp_path, 1)
    with running_ralph(tmp_path / "ralph") as ralph:
        monkeypatch.setenv("LAB_LRS_PASSWORD", "not-the-password")
        refused = lab("results", "xapi", str(folder), "--lrs", ralph.url)
        one_line_error(refused, "refused the credentials (HTTP 401: Invalid authentication credentials); 4 statement")
        monkeypatch.setenv("LAB_LRS_PASSWORD", PASSWORD)
        assert "sent 4 statement(s)" in ok(lab("results", "xapi", str(folder), "--lrs", ralph.url))
        assert len(ralph.statements()) == 4
    one_line_error(lab("results", "xapi", str(folder)), "say where the statements go: --out FILE, --lrs URL, or both")
    one_line_error(lab("results", "xapi", str(folder), "--lrs", "ftp://lrs"), "--lrs 'ftp://lrs' is not an http(s) URL")
    one_line_error(
        lab("results", "xapi", str(folder), "--lrs", "http://h:abc/xAPI/"), "--lrs 'http://h:abc/xAPI/' is not a URL"
    )
    monkeypatch.delenv("LAB_LRS_PASSWORD")
    one_line_error(lab("results", "xapi", str(folder), "--lrs", ralph.url), "basic auth needs both --lrs-user")


@pytest.fixture
def failing_twice() -> Iterator[tuple[str, list[int]]]:
    """An HTTP endpoint that answers 503 to its first two POSTs and 204 after: an LRS having a bad moment."""
    answers: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            status = 503 if len(answers) < 2 else 204
            answers.append(status)
            body = b'{"detail": "busy"}' if status == 503 else b""
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((HOST, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}/xAPI/", answers
    finally:
        server.shutdown()
        server.server_close()


def test_a_5xx_is_retried_with_back_off(
    env: dict[str, str], tmp_path: Path, failing_twice: tuple[str, list[int]]
) -> None:
    url, answers = failing_twice
    sent = lab("results", "xapi", str(cohort(tmp_path, 1)), "--lrs", url, "--retries", "3")
    assert sent.returncode == 0 and "sent 4 statement(s)" in sent.stdout, sent
    assert answers == [503, 503, 204]
    assert "(HTTP 503: busy); trying again in 0.5s" in sent.stderr and "trying again in 1s" in sent.stderr


def test_the_gradebook_has_a_column_per_lab_of_the_course(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "grades.csv"
    assert "wrote the gradebook of 2 learner(s)" in ok(
        lab("results", "gradebook", str(cohort(tmp_path, 2)), "--out", str(out))
    )
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert [r["learner"] for r in rows] == ["learner-000", "learner-001"]
    assert rows[0]["lab-01"] == "100" and rows[0]["lab-08"] == "" and rows[0]["capstone"] == "55"


def test_a_statement_the_lrs_refuses_is_kept_aside_and_the_others_go_on(tmp_path: Path) -> None:
    from grader.lrs import Outbox, deliver, statements_url
    from grader.xapi import statements
    from tests.grader.test_cohort import bundles

    good = statements(bundles())[:3]
    bad = {k: v for k, v in good[0].items() if k != "actor"} | {"id": "5b4e3a2c-0d1e-4f50-8a6b-7c8d9e0f1a2b"}
    with running_ralph(tmp_path / "ralph") as ralph, Outbox(tmp_path / "outbox.db") as outbox:  # no actor: refused
        url = statements_url(ralph.url)
        assert outbox.add(url, [good[0], bad, *good[1:]], 1.0) == 4
        sent, refused = deliver(outbox, url, (USER, PASSWORD))
        assert sent == 3 and len(refused) == 1 and refused[0].startswith(f"{bad['id']}: HTTP 4")
        assert {s["id"] for s in ralph.statements()} == {s["id"] for s in good}
        assert outbox.count_pending(url) == 0 and deliver(outbox, url, (USER, PASSWORD)) == (0, ())  # never again
