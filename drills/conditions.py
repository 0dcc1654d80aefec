"""Conditions on observed signals, written as `signal op number` (e.g. `error_rate < 0.05`), and the probe signals.

A probe observes the sandbox as a flat mapping of signal -> number: the monitor's signals (error rate, latency,
drift, quality; `lab monitor status --json`) plus the runtime's own: `up.<service>`, `ready`, `registry_reachable`,
`challenger`, `canary_weight`, plus the fast signals again over the service's last seconds of requests
(`recent.<signal>`). The monitor's values follow its window (a minute); the recent ones react within seconds of a
learner's move, so a running drill judges the fix by them (`recent_view`) and dates it by them (`drills.spans`).
Pure: nothing here does I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from lab_runtime.backends.services import SERVICES
from lab_runtime.monitor.rules import COMPARISONS
from lab_runtime.monitor.signals import catalog, is_known

RUNTIME_SIGNALS: dict[str, str] = {
    **{f"up.{s}": f"1 when {s} is running and healthy, else 0" for s in SERVICES},
    "ready": "1 when the model service has a champion loaded and answers /predict",
    "registry_reachable": "1 when the model service could reach the MLflow registry at its last poll",
    "challenger": "1 when a challenger version serves part of the traffic",
    "canary_weight": "share of traffic sent to the challenger (0 without one)",
}
# The signals a probe also measures over the service's last seconds of requests (the traffic signals) and of
# decisions (the output signal, over a longer span: a violation is rarer than a slow call).
TRAFFIC_FAST = ("error_rate", "server_error_rate", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms")
OUTPUT_FAST = ("unsafe_output_rate",)
FAST_SIGNALS = TRAFFIC_FAST + OUTPUT_FAST
RECENT = "recent."  # prefix of a fast signal's recent value in an observation
RECENT_FIRST = "recent.first"  # when the first of those recent requests was answered
_FORM = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$")


def known_signal(signal: str) -> bool:
    return signal in RUNTIME_SIGNALS or is_known(signal)


@dataclass(frozen=True)
class Condition:
    signal: str
    op: str
    value: float

    def __str__(self) -> str:
        return f"{self.signal} {self.op} {self.value:g}"

    def holds(self, observed: Mapping[str, float]) -> bool | None:
        """True or False, or None when the signal has no value (not measured yet)."""
        value = observed.get(self.signal)
        if value is None:
            return None
        return COMPARISONS[self.op](value, self.value)


def parse_condition(text: str) -> Condition:
    """`error_rate < 0.05` as a Condition; ValueError naming the form or the unknown signal."""
    match = _FORM.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not a condition; write `signal op number`, e.g. `error_rate < 0.05`")
    signal, op, raw = match.groups()
    if not known_signal(signal):
        raise ValueError(f"unknown signal {signal!r}; signals are {', '.join(RUNTIME_SIGNALS)}, {catalog()}")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{text!r}: {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{text!r}: the threshold must be a finite number")
    return Condition(signal, op, value)


@dataclass(frozen=True)
class Verdict:
    """Whether every condition holds, a line for each one that does not, and the signals of those."""

    ok: bool
    failing: tuple[str, ...]
    signals: frozenset[str] = frozenset()


def judge(conditions: tuple[Condition, ...], observed: Mapping[str, float]) -> Verdict:
    failing, signals = [], set()
    for cond in conditions:
        holds = cond.holds(observed)
        if holds is None:
            failing.append(f"{cond}: no value yet")
        elif not holds:
            failing.append(f"{cond}: is {observed[cond.signal]:.4g}")
        if not holds:
            signals.add(cond.signal)
    return Verdict(not failing, tuple(failing), frozenset(signals))


def recent_view(observed: Mapping[str, float]) -> dict[str, float]:
    """The observation with every fast signal taken over the service's last seconds of requests (absent when the
    probe had too few of them): what a learner's move changes within seconds."""
    view = {k: v for k, v in observed.items() if k not in FAST_SIGNALS}
    view |= {s: observed[RECENT + s] for s in FAST_SIGNALS if RECENT + s in observed}
    return view


def recent_bad_key(family: str, what: str = "last") -> str:
    """The observation key of the recent requests bad for `family` (a fast signal's, or `latency`): when the `last`
    of them was answered, or their `rate` per second."""
    return f"{RECENT}bad_{what}.{'latency' if family.startswith('latency_') else family}"
