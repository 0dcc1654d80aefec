"""Prometheus gauges of the monitor: one per signal, per feature, and per firing alert."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from lab_runtime.monitor.signals import WINDOW_SIGNALS


class MonitorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.signal = Gauge(
            "lab_monitor_signal", "Latest value of each window signal", ["signal"], registry=self.registry
        )
        self.feature = Gauge(
            "lab_monitor_feature", "Latest per-feature signal", ["signal", "feature"], registry=self.registry
        )
        self.alert = Gauge(
            "lab_monitor_alert_firing", "1 while an alert fires", ["rule", "severity"], registry=self.registry
        )
        self.seconds = Histogram(
            "lab_monitor_evaluation_seconds",
            "Time of one evaluation (report rendering excluded)",
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.evaluations = Counter("lab_monitor_evaluations", "Evaluations run", registry=self.registry)

    def update(self, signals: dict[str, float], firing: list[tuple[str, str]], seconds: float) -> None:
        self.signal.clear()
        self.feature.clear()
        for name, value in signals.items():
            if name in WINDOW_SIGNALS:
                self.signal.labels(name).set(value)
            else:
                prefix, _, feature = name.partition(".")
                self.feature.labels(prefix, feature).set(value)
        self.alert.clear()
        for rule, severity in firing:
            self.alert.labels(rule, severity).set(1)
        self.seconds.observe(seconds)
        self.evaluations.inc()
