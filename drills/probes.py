"""Observing the running sandbox as probe signals: the runtime's own state, the monitor's signals, and the fast
signals over the service's last seconds of requests (read from its prediction log)."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import numpy as np

from drills.conditions import (
    FAST_SIGNALS,
    OUTPUT_FAST,
    RECENT,
    RECENT_FIRST,
    RUNTIME_SIGNALS,
    TRAFFIC_FAST,
    Condition,
    recent_bad_key,
)
from lab_runtime import loopback
from lab_runtime.backends.base import Backend
from lab_runtime.monitor.traffic import output_signals, traffic_signals
from lab_runtime.predlog import PredictionLog
from lab_runtime.settings import Settings

TIMEOUT = 1.5
STALE_AFTER = 3  # monitor evaluations older than this many intervals are not trusted
MONITOR_EVALUATED_AT = "monitor.evaluated_at"  # not a signal conditions may name: when the monitor's values are from
RECENT_MIN_REQUESTS = 10  # fewer requests in the recent window: no recent value (too few to judge a fix by)
RECENT_DECISIONS = 200  # decisions the recent output signal is judged on, at the pipeline's rate


def _get(url: str) -> dict[str, Any] | None:
    try:
        answer = loopback.get(url, timeout=TIMEOUT)
    except loopback.LoopbackError:
        return None
    if answer.status_code != 200:
        return None
    try:
        body: dict[str, Any] = answer.json()
    except ValueError:
        return None
    return body


def recent_seconds(settings: Settings) -> float:
    """How far back the recent view reads: `drill_recent_window` (a sample of requests, not a clock: unscaled),
    widened at a low pipeline rate so it still holds enough requests to judge."""
    return max(settings.drill_recent_window, 2 * RECENT_MIN_REQUESTS / settings.pipeline_rate)


def output_seconds(settings: Settings) -> float:
    """How far back the recent output signal reads: at least the recent window, and `RECENT_DECISIONS` decisions at
    the pipeline's rate (a sound model breaks a rule in about one decision of 200)."""
    return max(recent_seconds(settings), RECENT_DECISIONS / settings.pipeline_rate)


def _recent_output(log: PredictionLog, since: float, seconds: float) -> dict[str, float]:
    """`recent.unsafe_output_rate` over the decisions since `since`, and when the last unsafe one was served and how
    many came a second; nothing below `RECENT_MIN_REQUESTS` decisions."""
    decisions, fallback = log.decisions(since), log.fallback_decisions(since)
    if len(decisions) + fallback < RECENT_MIN_REQUESTS:
        return {}
    found = output_signals(decisions, fallback)
    observed = {RECENT + s: found[s] for s in OUTPUT_FAST if s in found}
    unsafe = decisions.loc[decisions["violations"] != "", "ts"]
    if len(unsafe):
        observed[recent_bad_key("unsafe_output_rate")] = float(unsafe.iloc[-1])
        observed[recent_bad_key("unsafe_output_rate", "rate")] = len(unsafe) / seconds
    return observed


def recent(settings: Settings, slow_ms: float | None = None, output: bool = False) -> dict[str, float]:
    """The fast signals over the service's requests of the last `drill_recent_window` seconds (`recent.<signal>`),
    when the first of them was answered, and of the bad ones (an error, a server error, a successful call of
    `slow_ms` or more) when the last was answered and how many came a second (`recent_bad_key`); nothing below
    `RECENT_MIN_REQUESTS` requests. With `output`, the output signal too, over `output_seconds`."""
    seconds, decided, now = recent_seconds(settings), output_seconds(settings), time.time()
    log = PredictionLog(settings.prediction_log_path)
    try:
        calls = log.requests(now - seconds)
        observed = _recent_output(log, now - decided, decided) if output else {}
    finally:
        log.close()
    if len(calls) < RECENT_MIN_REQUESTS:
        return observed
    found = traffic_signals(calls, seconds)
    observed |= {RECENT + s: found[s] for s in TRAFFIC_FAST if s in found} | {RECENT_FIRST: float(calls["ts"].iloc[0])}
    bad = {
        "error_rate": calls["status"] != 200,
        "server_error_rate": calls["status"] >= 500,
        "latency": (calls["status"] == 200) & (calls["latency_ms"] >= (slow_ms if slow_ms is not None else np.inf)),
    }
    for family, rows in bad.items():
        if rows.any():
            observed[recent_bad_key(family)] = float(calls.loc[rows, "ts"].iloc[-1])
            observed[recent_bad_key(family, "rate")] = float(rows.sum()) / seconds
    return observed


def observe(
    settings: Settings, backend: Backend, signals: Collection[str] | None = None, slow_ms: float | None = None
) -> dict[str, float]:
    """Every probe signal that has a value now (a signal nobody can measure is left out, not guessed). With
    `signals`, only the sources those need are read: a lighter probe, and a sharper time for what it saw. A
    recent call of `slow_ms` or more counts as a bad one (the lowest latency limit of the drill's conditions)."""
    wanted = set(signals) if signals is not None else None
    needs_model = wanted is None or any(s in RUNTIME_SIGNALS and not s.startswith("up.") for s in wanted)
    needs_monitor = wanted is None or any(s not in RUNTIME_SIGNALS for s in wanted)  # the gate judges its window
    needs_recent = wanted is None or any(s in FAST_SIGNALS for s in wanted)
    with ThreadPoolExecutor(max_workers=3) as pool:  # the reads at once: a probe costs the slowest, not the sum
        model_read = pool.submit(_get, f"{settings.service_url}/model") if needs_model else None
        status_read = pool.submit(_get, f"{settings.monitor_url}/status") if needs_monitor else None
        needs_output = wanted is None or any(s in OUTPUT_FAST for s in wanted)
        recent_read = pool.submit(recent, settings, slow_ms, needs_output) if needs_recent else None
        observed: dict[str, float] = {f"up.{s.name}": float(s.healthy) for s in backend.status()}
        model = model_read.result() if model_read else None
        status = status_read.result() if status_read else None
        if recent_read is not None:
            observed |= recent_read.result()
    if model is not None:
        observed["ready"] = float(model.get("champion") is not None)
        observed["registry_reachable"] = float(bool(model.get("registry_reachable")))
        observed["challenger"] = float(model.get("challenger") is not None)
        observed["canary_weight"] = float(model.get("canary_weight") or 0.0)
    elif needs_model:
        observed["ready"] = 0.0
    evaluated = status.get("evaluated_at") if status else None
    if status and evaluated and time.time() - evaluated < STALE_AFTER * settings.scaled(settings.monitor_interval) + 2:
        observed |= {k: float(v) for k, v in status.get("signals", {}).items() if isinstance(v, int | float)}
        observed[MONITOR_EVALUATED_AT] = float(evaluated)
    return observed


def observer_for(conditions: Collection[Condition]) -> Callable[[Settings, Backend], dict[str, float]]:
    """An observer that reads only what `conditions` need."""
    limits = [c.value for c in conditions if c.signal.startswith("latency_") and c.op in ("<", "<=")]
    return partial(observe, signals=frozenset(c.signal for c in conditions), slow_ms=min(limits, default=None))
