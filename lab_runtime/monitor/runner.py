"""The monitor's loop: every few seconds read the latest window, evaluate it, step the alert rules,
journal what fired or resolved, and hand the window to the report writer. All the I/O lives here.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import httpx
import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

from lab_runtime import loopback
from lab_runtime.events import ALERT_FIRING, ALERT_RESOLVED
from lab_runtime.files.watched import WatchedFile
from lab_runtime.journal import Journal
from lab_runtime.modeling.columns import FEATURES, LABEL
from lab_runtime.modeling.data import DataGenerator
from lab_runtime.monitor.alerts import AlertEngine, Transition, firing_alerts, resolutions
from lab_runtime.monitor.evaluate import Baseline, Evaluation, Limits, Window, evaluate, serving_version
from lab_runtime.monitor.report_job import PREDICTION, JudgedWindow, ReportWriter
from lab_runtime.monitor.rules import RuleBook
from lab_runtime.monitor.sequential import ChangeDetector, QualityChart
from lab_runtime.predlog import PredictionLog
from lab_runtime.service.policy import BUILTIN, WindowRules, load_policy
from lab_runtime.settings import Settings

log = logging.getLogger("lab_runtime.monitor")
RETRY_BASELINE_AFTER = 30.0
HEALTH_TIMEOUT = 2.0  # seconds the model service has to answer its health check
FEED_LIMIT = 20_000  # predictions the change charts read per evaluation at most (the rest at the next one)


def service_down(health_url: str, timeout: float = HEALTH_TIMEOUT) -> str | None:
    """Why the model service did not answer `health_url` with 200 within `timeout`; None when it did."""
    try:
        status = loopback.get(health_url, timeout=timeout).status_code
    except loopback.LoopbackTimeout:
        return f"{health_url}: no answer within {timeout:g}s"
    except loopback.LoopbackError as exc:
        return str(exc)
    return None if status == 200 else f"{health_url} answered {status}"


class Baselines:
    """Each served version's predictions and quality on the reference set, loaded once per version."""

    def __init__(self, settings: Settings, reference: pd.DataFrame) -> None:
        self.settings = settings
        self.reference = reference
        self.cache: dict[str, Baseline] = {}
        self.errors: dict[str, tuple[float, str]] = {}

    def get(self, version: str | None) -> Baseline | None:
        if version is None:
            return None
        if version in self.cache:
            return self.cache[version]
        failed = self.errors.get(version)
        if failed and time.time() - failed[0] < RETRY_BASELINE_AFTER:
            return None
        try:
            self.cache[version] = self._load(version)
            self.errors.pop(version, None)
        except Exception as exc:  # the registry is down or the version cannot load: no prediction drift for now
            self.errors[version] = (time.time(), f"{type(exc).__name__}: {exc}")
            log.warning("cannot score the reference set with version %s: %s", version, exc)
            return None
        return self.cache[version]

    def _load(self, version: str) -> Baseline:
        from lab_runtime.service.models import load_version

        model = load_version(self.settings.mlflow_url, self.settings.model_name, version)
        predictions, probabilities = model.score(self.reference[list(FEATURES)].to_dict("records"))
        labels = self.reference[LABEL]
        return Baseline(
            version,
            probabilities,
            float(accuracy_score(labels, predictions)),
            float(f1_score(labels, predictions, zero_division=0)),
        )


class Webhook:
    """Posts alert transitions to a URL from its own thread; a slow or failing receiver never delays alerts."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self.sent = 0
        self.last_error: str | None = None
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(1000)
        if url:
            threading.Thread(target=self._run, name="webhook", daemon=True).start()

    def send(self, body: dict[str, Any]) -> None:
        if self.url:
            try:
                self._queue.put_nowait(body)
            except queue.Full:
                self.last_error = "queue full: alert dropped"

    def _run(self) -> None:
        assert self.url is not None
        with httpx.Client(timeout=3.0) as client:
            while True:
                body = self._queue.get()
                try:
                    client.post(self.url, json=body).raise_for_status()
                    self.sent += 1
                except httpx.HTTPError as exc:
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.warning("alert webhook %s failed: %s", self.url, exc)


class Monitor:
    def __init__(self, settings: Settings, on_evaluation: Callable[[Monitor], None] = lambda m: None) -> None:
        self.settings = settings
        self.on_evaluation = on_evaluation
        self.limits = Limits(settings.drift_alpha, settings.monitor_min_rows, settings.min_labels)
        self.reference = DataGenerator(settings.seed).reference(settings.reference_rows)
        self.baselines = Baselines(settings, self.reference)
        self.changes = ChangeDetector(self.reference, settings.change_threshold)
        self.quality = QualityChart(settings.quality_threshold, settings.reference_rows)
        self.fed: dict[str, int] = {}  # table -> id of the last row the charts read
        self.rulebook = RuleBook(settings.rules_dir)
        self.rules = self.rulebook.reload()
        self.journal = Journal(settings.journal_path, source="monitor", learner=settings.learner)
        alert_events = self.journal.events([ALERT_FIRING, ALERT_RESOLVED])
        self.engine = AlertEngine(firing_alerts(alert_events), settings.time_scale, resolved=resolutions(alert_events))
        # the windows and the interval on the sandbox's clock
        self.window_seconds = settings.scaled(settings.monitor_window)
        self.quality_seconds = settings.scaled(settings.quality_window)
        self.interval = settings.scaled(settings.monitor_interval)
        self.log = PredictionLog(settings.prediction_log_path)
        self.policy = WatchedFile(settings.policy_path, load_policy, BUILTIN)
        self.webhook = Webhook(settings.alert_webhook)
        self.reports = ReportWriter(settings.reports_dir, settings.report_interval)
        self.latest: Evaluation | None = None
        self.last_seconds: float | None = None
        self.evaluations = 0
        self.last_error: str | None = None
        self.snapshot = self._status()  # replaced whole by the monitor thread; /status reads it without a lock

    def window(self, now: float, live: bool = False) -> Window:
        """The window ending at `now`; `live` (it ends now) also asks the service's /health."""
        cfg = self.settings
        return Window(
            self.log.window(now - self.window_seconds, now, limit=cfg.monitor_max_rows),
            self.log.requests(now - self.window_seconds, now),
            self.log.labelled(now - self.quality_seconds, now),
            self.window_seconds,
            service_down(f"{cfg.service_url}/health") if live else None,
            self.log.fallback_decisions(now - self.window_seconds, now),
            self._policy(),
        )

    def _policy(self) -> WindowRules:
        """The window rules of the output policy in force (a bad file of the learner's: the last good one's)."""
        self.policy.refresh()
        return self.policy.value.window

    def evaluate_once(self, now: float | None = None) -> tuple[Evaluation, list[Transition[Any]]]:
        """Evaluate the latest window, step the rules, journal and send what fired or resolved."""
        started = time.perf_counter()
        at = time.time() if now is None else now
        self.rules = self.rulebook.reload()
        window = self.window(at, live=now is None)
        baseline = self.baselines.get(serving_version(window.predictions))
        self._feed(at, baseline)
        charts = self.changes.reading(self.quality.score)
        evaluation = evaluate(window, self.reference, baseline, self.limits, at, charts)
        transitions = self.engine.step(self.rules, evaluation.signals, evaluation.details, at)
        for t in transitions:
            event = self.journal.append(t.kind, t.payload)
            self.webhook.send({"kind": t.kind, "ts": event.ts, "learner": self.settings.learner, **t.payload})
            log.info("%s %s: %s", t.kind, t.payload["rule"], t.payload.get("summary", ""))
        self.latest, self.evaluations = evaluation, self.evaluations + 1
        self.last_seconds = time.perf_counter() - started
        self.snapshot = self._status()
        self.on_evaluation(self)
        if evaluation.drift is not None:
            reference = self.reference.copy()
            if baseline is not None:
                reference[PREDICTION] = baseline.probabilities
            self.reports.submit(JudgedWindow(reference, window.predictions, evaluation))
        return evaluation, transitions

    def _feed(self, until: float, baseline: Baseline | None) -> None:
        """Feed the charts every prediction and every label of the serving version once, from the first
        evaluation's windows on. A batch that cannot be read is logged and skipped, so it cannot stop alerting."""
        if not self.fed:
            self.fed = {
                "predictions": self.log.last_id("predictions", until - self.window_seconds),
                "feedback": self.log.last_id("feedback", until - self.quality_seconds),
            }
        rows = self.log.newer(self.fed["predictions"], until, FEED_LIMIT)
        labels = self.log.labels_newer(self.fed["feedback"], until, FEED_LIMIT)
        if not rows.empty:
            self.fed["predictions"] = int(rows["id"].iloc[-1])
        if not labels.empty:
            self.fed["feedback"] = int(labels["id"].iloc[-1])
        try:
            self.changes.update(rows)
            if baseline is not None:
                self.quality.update(baseline.version, baseline.accuracy, labels)
        except Exception:  # a row the charts cannot read: its batch is lost, monitoring goes on
            log.exception("the change charts could not read %d prediction(s) and %d label(s)", len(rows), len(labels))

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.evaluate_once()
                self.last_error = None
            except Exception as exc:  # keep monitoring through a locked database or a bad window
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.snapshot = {**self.snapshot, "last_error": self.last_error}
                log.exception("evaluation failed")
            stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def firing(self) -> list[tuple[str, str]]:
        """(rule, severity) of every firing alert."""
        return [(a.rule.name, a.rule.severity) for a in self.engine.active.values() if a.state == "firing"]

    def status(self) -> dict[str, Any]:
        """Everything `GET /status` shows: the last evaluation's snapshot, with the report and webhook now."""
        return {
            **self.snapshot,
            "report": asdict(self.reports.latest) if self.reports.latest else None,
            "report_error": self.reports.last_error,
            "webhook": {"url": self.webhook.url, "sent": self.webhook.sent, "last_error": self.webhook.last_error},
        }

    def _status(self) -> dict[str, Any]:
        """The snapshot of the monitor's state, built in the monitor's thread."""
        cfg, ev = self.settings, self.latest
        body: dict[str, Any] = {
            "state": ev.state if ev else "starting",
            "message": ev.message if ev else "the first evaluation has not run yet",
            "evaluated_at": ev.at if ev else None,
            "evaluation_seconds": self.last_seconds,
            "evaluations": self.evaluations,
            "last_error": self.last_error,
            "window": {
                "seconds": self.window_seconds,
                "rows": ev.rows if ev else 0,
                "min_rows": cfg.monitor_min_rows,
                "max_rows": cfg.monitor_max_rows,
                "quality_seconds": self.quality_seconds,
                "interval": self.interval,
                "model_version": ev.model_version if ev else None,
            },
            "drift": None,
            "signals": ev.signals if ev else {},
            "details": ev.details if ev else {},
            "rules": [{**r.model_dump(by_alias=True), "source": self.rulebook.source(r)} for r in self.rules],
            "rule_errors": self.rulebook.problems(),
            "alerts": [
                {
                    "rule": a.rule.name,
                    "severity": a.rule.severity,
                    "state": a.state,
                    "since": a.firing_since or a.pending_since,
                    "value": a.value,
                    "summary": a.rule.describe(a.value, a.detail),
                }
                for a in self.engine.active.values()
            ],
            "baseline_errors": {v: e for v, (_, e) in self.baselines.errors.items()},
        }
        if ev and ev.drift:
            body["drift"] = {
                "alpha": ev.drift.alpha,
                "threshold": ev.drift.threshold,
                "tested": ev.drift.tested,
                "drifted": ev.drift.drifted,
                "features": [asdict(f) for f in ev.drift.features],
            }
        return body
