"""Prometheus metrics of the model service, in a registry of their own (one per app instance)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ServiceMetrics:
    def __init__(self, queue_depth: Callable[[], int], shadow_depth: Callable[[], int] = lambda: 0) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "lab_requests", "Prediction requests by outcome", ["status", "variant", "version"], registry=self.registry
        )
        self.records = Counter("lab_records", "Records scored", ["variant", "version"], registry=self.registry)
        self.latency = Histogram(
            "lab_request_latency_seconds",
            "Time to answer /predict",
            ["variant"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.score = Histogram(
            "lab_prediction_probability",
            "Distribution of the predicted probability of default",
            ["variant"],
            buckets=tuple(i / 10 for i in range(1, 11)),
            registry=self.registry,
        )
        self.decisions = Counter(
            "lab_decisions", "Decisions served, by decision", ["decision", "variant", "version"], registry=self.registry
        )
        self.violations = Counter(
            "lab_policy_violations",
            "Decisions served that broke a rule of the output policy, by rule",
            ["rule", "variant", "version"],
            registry=self.registry,
        )
        self.log_dropped = Counter(
            "lab_prediction_log_dropped",
            "Prediction rows dropped because the log queue was full",
            registry=self.registry,
        )
        depth = Gauge("lab_prediction_log_queue_depth", "Rows waiting to be written", registry=self.registry)
        depth.set_function(lambda: float(queue_depth()))
        self.model_version = Gauge(
            "lab_model_version", "Model version serving each variant", ["variant"], registry=self.registry
        )
        self.canary_weight = Gauge(
            "lab_canary_weight", "Share of requests sent to the challenger", registry=self.registry
        )
        self.shadow_share = Gauge(
            "lab_shadow_share", "Share of the champion's records mirrored to @staging", registry=self.registry
        )
        self.shadow_records = Counter(
            "lab_shadow_records",
            "Records mirrored to the shadow, by outcome: scored, error (it raised or refused it), dropped (queue full)",
            ["outcome", "version"],
            registry=self.registry,
        )
        self.shadow_latency = Histogram(
            "lab_shadow_latency_seconds",
            "Time the shadow's model call took for a mirrored record (its queue wait left out)",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.shadow_disagreements = Counter(
            "lab_shadow_disagreements",
            "Mirrored records the shadow decided otherwise than the champion",
            ["version"],
            registry=self.registry,
        )
        self.shadow_violations = Counter(
            "lab_shadow_policy_violations",
            "The shadow's decisions (never served) that broke a rule of the output policy, by rule",
            ["rule", "version"],
            registry=self.registry,
        )
        shadow_queue = Gauge("lab_shadow_queue_depth", "Records waiting for the shadow", registry=self.registry)
        shadow_queue.set_function(lambda: float(shadow_depth()))
