"""The monitor's verdict on an outage: every call refused, no call at all, a model service that does not answer."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from lab_runtime.events import ALERT_FIRING, ALERT_RESOLVED
from lab_runtime.modeling.data import DataGenerator
from lab_runtime.monitor.alerts import AlertEngine
from lab_runtime.monitor.evaluate import INSUFFICIENT, Evaluation, Limits, Window, evaluate
from lab_runtime.monitor.rules import BUILTIN_RULES, load_rules
from lab_runtime.monitor.runner import service_down
from lab_runtime.predlog import PredictionLog, PredictionLogger, RequestRow
from lab_runtime.settings import HOST
from tests.conftest import free_port
from tests.lab_runtime.services import running_services
from tests.sandbox import wait_for

T0 = 1_700_000_000.0
LIMITS = Limits(alpha=0.001, min_rows=200, min_labels=100)
REFERENCE = DataGenerator(42).reference(500)
RULES = load_rules(BUILTIN_RULES)


def logged(path: Path, rows: list[RequestRow]) -> PredictionLog:
    logger = PredictionLogger(path, maxsize=1000, retention=float("inf"))
    logger.log(rows)
    logger.close()
    return PredictionLog(path)


def judged(log: PredictionLog, now: float, down: str | None = None) -> Evaluation:
    """The window the runner reads (drift and quality over the last 60 s), evaluated."""
    window = Window(log.window(now - 60, now), log.requests(now - 60, now), log.labelled(now - 60, now), 60.0, down)
    return evaluate(window, REFERENCE, None, LIMITS, now)


def transitions(evaluations: list[Evaluation]) -> list[tuple[str, str]]:
    """(kind, rule) of each built-in alert that fired or resolved over a sequence of evaluations."""
    engine = AlertEngine()
    return [(t.kind, t.payload["rule"]) for e in evaluations for t in engine.step(RULES, e.signals, e.details, e.at)]


def test_a_window_where_every_call_was_refused_has_a_full_error_rate_and_fires_error_rate(tmp_path: Path) -> None:
    log = logged(tmp_path / "p.db", [RequestRow(T0 + i / 10, 422, "none", 1, 1.0) for i in range(300)])
    evaluations = [judged(log, T0 + s) for s in (20, 25, 30)]
    last = evaluations[-1]
    assert last.state == INSUFFICIENT and last.rows == 0
    assert last.message == "no prediction in the last 60s: 300 of 300 /predict call(s) failed, so no drift verdict"
    assert last.signals["error_rate"] == 1.0 and last.signals["requests"] == 300
    assert last.signals["service_up"] == 1.0 and "drifted_features" not in last.signals
    assert transitions(evaluations) == [(ALERT_FIRING, "error-rate")]


def test_a_window_with_no_call_says_no_traffic_with_a_request_rate_of_zero(tmp_path: Path) -> None:
    evaluation = judged(logged(tmp_path / "p.db", []), T0)
    assert evaluation.state == INSUFFICIENT
    assert evaluation.message == "no traffic: no /predict call in the last 60s, so no drift verdict"
    assert evaluation.signals["request_rate"] == 0.0 and evaluation.signals["requests"] == 0.0
    assert "error_rate" not in evaluation.signals  # a rate of no calls is no figure: error-rate resolves


def test_a_window_of_answered_calls_without_their_predictions_says_too_few_predictions(tmp_path: Path) -> None:
    log = logged(tmp_path / "p.db", [RequestRow(T0 + i / 10, 200, "champion", 1, 1.0, "1") for i in range(50)])
    evaluation = judged(log, T0 + 10)  # the predictions' rows were not written (e.g. the log's queue was full)
    assert evaluation.message == (
        "only 0 prediction(s) in the last 60s; drift needs at least 200, so no drift verdict yet"
    )


def test_a_service_that_does_not_answer_fires_service_down_after_its_for(tmp_path: Path) -> None:
    url = f"http://{HOST}:{free_port()}/health"  # nothing listens there
    down = service_down(url)
    assert down == f"{url}: [Errno 111] Connection refused"
    log = logged(tmp_path / "p.db", [])
    rule = next(r for r in RULES if r.name == "service-down")
    assert (rule.signal, rule.comparison, rule.threshold, rule.for_) == ("service_up", "<", 1.0, 10.0)
    early = [judged(log, T0 + s, down) for s in (0, 5)]
    assert early[0].signals["service_up"] == 0.0 and transitions(early) == []
    firing = judged(log, T0 + 10, down)
    assert rule.describe(0.0, firing.details["service_up"]) == (
        f"the model service does not answer its health check ({url}: [Errno 111] Connection refused)"
    )
    back = judged(log, T0 + 15)
    assert back.signals["service_up"] == 1.0
    assert transitions([*early, firing, back]) == [(ALERT_FIRING, "service-down"), (ALERT_RESOLVED, "service-down")]


@pytest.mark.integration
def test_a_monitor_started_while_the_service_is_down_judges_after_one_window_and_fires_service_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAB_TIME_SCALE", "0.1")  # a window of 6 s, an evaluation every 0.5 s, service-down's for 1 s
    with running_services(tmp_path / "state", "monitor") as settings:  # no model service, so no /predict call

        def status() -> dict[str, Any]:
            return dict(httpx.get(f"{settings.monitor_url}/status", timeout=5).json())

        first = status()
        assert first["state"] == "waiting", first
        assert first["message"] == (
            "no traffic yet: the monitor starts evaluating once /predict is called (or 6s after it started)"
        )
        started = time.monotonic()
        wait_for(
            lambda: ("service-down", "firing") in {(a["rule"], a["state"]) for a in status()["alerts"]},
            60,
            "service-down",
        )
        assert time.monotonic() - started >= 1  # its `for` on the sandbox's clock, after the first evaluation
        body = status()
        assert body["signals"]["service_up"] == 0
        assert body["signals"]["requests"] == 0
