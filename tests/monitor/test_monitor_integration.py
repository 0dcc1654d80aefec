"""The monitor in a real sandbox: pipeline traffic through the model service, Evidently, alert rules, journal."""

from __future__ import annotations

import itertools
import json
import math
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from lab_runtime.cli import app
from lab_runtime.events import ALERT_FIRING, ALERT_RESOLVED
from lab_runtime.journal import Journal
from lab_runtime.monitor.alerts import firing_alerts
from lab_runtime.monitor.client import render_report
from lab_runtime.monitor.evaluate import INSUFFICIENT
from lab_runtime.pipeline.releases import Release
from lab_runtime.pipeline.store import ReleaseStore, rollback, ship
from lab_runtime.settings import HOST
from tests.conftest import free_port
from tests.sandbox import Sandbox, running_sandbox, wait_for

pytestmark = pytest.mark.integration
RECEIVED: list[dict[str, Any]] = []


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        RECEIVED.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    server = HTTPServer((HOST, free_port()), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    webhook = f"http://{HOST}:{server.server_port}/alerts"
    try:
        with running_sandbox(tmp_path_factory.mktemp("monitor") / "state", {"LAB_ALERT_WEBHOOK": webhook}) as sandbox:
            yield sandbox
    finally:
        server.shutdown()
        server.server_close()


def status(box: Sandbox) -> dict[str, Any]:
    return dict(httpx.get(f"{box.settings.monitor_url}/status", timeout=5).json())


def evaluating(box: Sandbox) -> dict[str, Any]:
    """The monitor's status once its window holds predictions (the pipeline waits for the champion, the monitor
    for the first /predict call or a window)."""
    wait_for(lambda: status(box).get("window", {}).get("rows", 0) > 0, 90, "the monitor evaluating predictions")
    return status(box)


def alerts(box: Sandbox) -> Journal:
    return Journal(box.settings.journal_path, source="test")


def test_clean_traffic_is_evaluated_reported_and_raises_no_alert(box: Sandbox) -> None:
    wait_for(lambda: status(box)["state"] == "ok", 90, "a clean verdict")
    first = status(box)["evaluations"]
    # Enough evaluations for any rule to fire, had a clean window tripped it: its longest `for`, and half again.
    longest_for = box.settings.scaled(max(r["for"] for r in status(box)["rules"]))
    enough = first + math.ceil(1.5 * longest_for / status(box)["window"]["interval"])
    wait_for(lambda: status(box)["evaluations"] >= enough, 60, f"{enough - first} more evaluations")
    body = status(box)
    assert body["window"]["rows"] >= box.settings.monitor_min_rows
    assert body["drift"]["tested"] == 12 and body["drift"]["drifted"] == []
    assert body["signals"]["error_rate"] == 0 and body["signals"]["prediction_drifted"] == 0
    assert {f["name"]: f["test"] for f in body["drift"]["features"]}["purpose"] == "chisquare_contingency"
    assert alerts(box).events([ALERT_FIRING]) == []
    assert not (box.settings.reports_dir / "latest.html").exists()  # none rendered unasked
    written = render_report(box.settings)  # Evidently in a process of its own, on the latest judged window
    assert written["html"] == str(box.settings.reports_dir / "latest.html")
    assert "credit_score" in Path(written["html"]).read_text()
    verdict = json.loads(Path(written["json"]).read_text())["monitor"]  # the report's window
    assert verdict["tests"] == 12 and verdict["threshold"] == body["drift"]["threshold"]
    assert status(box)["report"]["html"] == written["html"] and status(box)["report_error"] is None
    metrics = httpx.get(f"{box.settings.monitor_url}/metrics").text
    assert 'lab_monitor_feature{feature="credit_score",signal="drift_p_value"}' in metrics
    assert 'lab_monitor_signal{signal="error_rate"} 0.0' in metrics


def test_a_bad_rule_file_is_reported_and_the_last_good_rules_keep_running(box: Sandbox) -> None:
    mine = box.settings.rules_dir / "mine.yaml"
    mine.write_text("rules:\n  - name: x\n    signal: nope\n")
    try:
        wait_for(lambda: any(str(mine) in p for p in status(box)["rule_errors"]), 15, "the refusal")
        problem = next(p for p in status(box)["rule_errors"] if str(mine) in p)
        assert "rules.0.signal: Value error, unknown signal 'nope'" in problem
        assert "rules.0.comparison: Field required" in problem
        assert "feature-drift" in [r["name"] for r in status(box)["rules"]]
        evaluations = status(box)["evaluations"]
        wait_for(lambda: status(box)["evaluations"] > evaluations + 1, 15, "evaluations to go on")
    finally:
        mine.unlink()


def test_a_shipped_shift_fires_the_drift_alert_and_a_rollback_resolves_it(box: Sandbox) -> None:
    cfg = box.settings
    journal = alerts(box)
    release = Release.model_validate(
        {"version": "v9", "note": "bad feed", "transforms": [{"type": "shift", "feature": "credit_score", "std": 1.0}]}
    )
    with ReleaseStore(cfg.pipeline_db_path) as store:
        shipped = ship(store, journal, release, by="test")
    assert shipped is not None

    def fired() -> bool:
        return any(e.payload["rule"] == "feature-drift" for e in journal.events([ALERT_FIRING], since=shipped.ts))

    # Detection needs a share of the window shifted, then the rule's `for` of holding; 2 windows is the budget.
    window, for_ = cfg.scaled(cfg.monitor_window), cfg.scaled(10)
    wait_for(fired, 2 * window + for_ + 20, "feature-drift to fire")
    event = next(e for e in journal.events([ALERT_FIRING], since=shipped.ts) if e.payload["rule"] == "feature-drift")
    assert "credit_score" in event.payload["summary"] and event.payload["severity"] == "warning"
    assert event.payload["for"] == 10 and event.ts - event.payload["pending_since"] >= for_
    assert status(box)["drift"]["drifted"] == ["credit_score"]
    with ReleaseStore(cfg.pipeline_db_path) as store:
        rollback(store, journal, by="test")
    wait_for(
        lambda: "feature-drift" not in firing_alerts(journal.events([ALERT_FIRING, ALERT_RESOLVED])), 60, "resolve"
    )
    wait_for(lambda: any(r["kind"] == ALERT_RESOLVED and r["rule"] == "feature-drift" for r in RECEIVED), 10, "hook")
    firing_hook = next(r for r in RECEIVED if r["kind"] == ALERT_FIRING and r["rule"] == "feature-drift")
    assert firing_hook["summary"] == event.payload["summary"] and firing_hook["learner"] == cfg.learner
    # The default budget (2 windows of 60 s) is measured by `make bench-detect`; here on a tenth of that clock,
    # allow 2 windows plus the `for` from the release to the firing.
    assert event.ts - shipped.ts <= 2 * window + for_, event.ts - shipped.ts


def test_the_monitor_keeps_evaluating_while_every_request_is_refused(box: Sandbox) -> None:
    cfg = box.settings
    evaluating(box)
    journal = alerts(box)
    renamed = Release.model_validate(
        {"version": "v10", "note": "renamed", "transforms": [{"type": "rename", "feature": "income", "to": "revenue"}]}
    )
    with ReleaseStore(cfg.pipeline_db_path) as store:
        ship(store, journal, renamed, by="test")
    try:
        # Once the window holds only refused calls, no prediction is left: the monitor judges the calls.
        wait_for(
            lambda: status(box)["window"]["rows"] == 0,
            cfg.scaled(cfg.monitor_window) + 30,
            "a window without predictions",
        )
        refused = status(box)
        wait_for(lambda: status(box)["evaluated_at"] > refused["evaluated_at"], 10, "the next evaluation")
        body = status(box)
        assert body["last_error"] is None and body["state"] == INSUFFICIENT
        assert body["signals"]["error_rate"] == 1.0 and body["signals"]["requests"] > 0
        assert body["message"].startswith(f"no prediction in the last {cfg.scaled(cfg.monitor_window):g}s: ")
        assert body["message"].endswith(" /predict call(s) failed, so no drift verdict")
    finally:
        with ReleaseStore(cfg.pipeline_db_path) as store:
            rollback(store, journal, by="test")
    wait_for(lambda: status(box)["window"]["rows"] > 0, cfg.scaled(cfg.monitor_window) + 30, "predictions again")


def test_a_killed_model_service_fires_service_down_within_its_for_and_resolves_when_it_is_back(box: Sandbox) -> None:
    cfg = box.settings
    journal = alerts(box)
    rule = next(r for r in evaluating(box)["rules"] if r["name"] == "service-down")
    evaluated: list[float] = []

    def event(kind: str, since: float) -> Any:
        return next((e for e in journal.events([kind], since=since) if e.payload["rule"] == "service-down"), None)

    def fired_yet() -> bool:
        evaluated.append(status(box)["evaluated_at"])
        return event(ALERT_FIRING, killed) is not None

    killed = time.time()
    box.backend.kill("model-service")
    for_ = cfg.scaled(rule["for"])
    wait_for(fired_yet, for_ + 30, "service-down to fire")
    fired = event(ALERT_FIRING, killed)
    # The next evaluation (at most an interval after the kill) sees the service down; the rule fires at the first
    # evaluation once that has held for `for` (at most an interval after it). An interval is the time between two
    # evaluations: the setting, or longer when an evaluation overran it.
    times = sorted(set(evaluated))
    interval = max([cfg.scaled(cfg.monitor_interval), *(b - a for a, b in itertools.pairwise(times))])
    took = fired.payload["firing_since"] - killed
    print(f"kill -9 -> service-down firing: {took:.1f}s (journaled {fired.ts - killed:.1f}s); for {for_:g}s")
    assert took <= for_ + 2 * interval, (took, interval)
    assert fired.payload["summary"] == (
        f"the model service does not answer its health check ({cfg.service_url}/health: [Errno 111] Connection refused)"
    )
    listed = CliRunner().invoke(app, ["alerts", "--json"])
    assert listed.exit_code == 0, listed.output
    assert "service-down" in [a["rule"] for a in json.loads(listed.stdout)]

    restarted = time.time()
    assert box.backend.ensure_running("model-service")
    wait_for(lambda: event(ALERT_RESOLVED, restarted) is not None, 10, "service-down to resolve")
    assert status(box)["signals"]["service_up"] == 1.0
