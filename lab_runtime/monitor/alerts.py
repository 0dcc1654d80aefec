"""Alert states, like Prometheus rules: pending while a rule's condition holds, firing once it has held for
the rule's `for` duration, resolved as soon as it stops holding (or its signal is absent). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic

from lab_runtime.events import ALERT_FIRING, ALERT_RESOLVED, AlertFiring, AlertResolved, EventKind, Payload
from lab_runtime.journal import Event
from lab_runtime.monitor.rules import Rule


@dataclass
class AlertState:
    rule: Rule
    pending_since: float
    value: float
    detail: str
    firing_since: float | None = None

    @property
    def state(self) -> str:
        return "firing" if self.firing_since is not None else "pending"


@dataclass(frozen=True)
class Transition(Generic[Payload]):
    """An alert that started firing or resolved: what goes to the journal and the webhook."""

    kind: EventKind[Payload]  # ALERT_FIRING or ALERT_RESOLVED
    payload: Payload


def _firing(alert: AlertState, now: float) -> Transition[AlertFiring]:
    rule = alert.rule
    return Transition(
        ALERT_FIRING,
        AlertFiring(
            {
                "rule": rule.name,
                "severity": rule.severity,
                "signal": rule.signal,
                "comparison": rule.comparison,
                "threshold": rule.threshold,
                "for": rule.for_,
                "value": alert.value,
                "detail": alert.detail,
                "summary": rule.describe(alert.value, alert.detail),
                "runbook": rule.runbook,
                "pending_since": alert.pending_since,
                "firing_since": now,
            }
        ),
    )


def _resolved(
    rule_name: str, severity: str, firing_since: float, value: float | None, now: float
) -> Transition[AlertResolved]:
    payload = AlertResolved(
        rule=rule_name, severity=severity, value=value, firing_since=firing_since, duration=now - firing_since
    )
    return Transition(ALERT_RESOLVED, payload)


class AlertEngine:
    """Steps every rule once per evaluation and returns the alerts that fired or resolved. A rule's `for` runs on
    the sandbox's clock: `time_scale` times the duration the rule states."""

    def __init__(self, firing: dict[str, dict[str, Any]] | None = None, time_scale: float = 1.0) -> None:
        self.time_scale = time_scale
        self.active: dict[str, AlertState] = {}
        # Alerts the journal says are firing (from before a restart): resolved unless they still hold.
        self._inherited = dict(firing or {})

    def step(
        self, rules: list[Rule], signals: dict[str, float], details: dict[str, str], now: float
    ) -> list[Transition[Any]]:
        transitions: list[Transition[Any]] = []
        by_name = {r.name: r for r in rules}
        for name in list(self.active):  # a rule that was removed or changed no longer holds its alert
            if by_name.get(name) != self.active[name].rule:
                transitions += self._clear(name, None, now)
        for rule in rules:
            value = signals.get(rule.signal)
            if value is None or not rule.holds(value):
                transitions += self._clear(rule.name, value, now)
                continue
            alert = self.active.get(rule.name)
            detail = details.get(rule.signal, "")
            if alert is None:
                inherited = self._inherited.pop(rule.name, None)
                since = inherited["pending_since"] if inherited else now
                alert = self.active[rule.name] = AlertState(rule, since, value, detail)
                if inherited:
                    alert.firing_since = inherited["firing_since"]
            alert.value, alert.detail = value, detail
            if alert.firing_since is None and now - alert.pending_since >= rule.for_ * self.time_scale:
                alert.firing_since = now
                transitions.append(_firing(alert, now))
        for name, payload in list(self._inherited.items()):  # inherited alerts whose rule is gone
            if name not in by_name:
                del self._inherited[name]
                transitions.append(_resolved(name, payload["severity"], payload["firing_since"], None, now))
        return transitions

    def _clear(self, name: str, value: float | None, now: float) -> list[Transition[Any]]:
        alert = self.active.pop(name, None)
        inherited = self._inherited.pop(name, None)
        if alert is not None and alert.firing_since is not None:
            return [_resolved(name, alert.rule.severity, alert.firing_since, value, now)]
        if alert is None and inherited is not None:
            return [_resolved(name, inherited["severity"], inherited["firing_since"], value, now)]
        return []


def firing_alerts(events: list[Event]) -> dict[str, dict[str, Any]]:
    """The alerts still firing after a sequence of alert events: rule name -> the firing payload."""
    firing: dict[str, dict[str, Any]] = {}
    for event in events:
        if event.kind == ALERT_FIRING:
            firing[event.payload["rule"]] = event.payload
        elif event.kind == ALERT_RESOLVED:
            firing.pop(event.payload["rule"], None)
    return firing


def alert_history(events: list[Event]) -> list[dict[str, Any]]:
    """Pure: every alert of a sequence of alert events, oldest first: its firing payload with `state` (firing or
    resolved), `fired_at` and `resolved_at`."""
    rows: list[dict[str, Any]] = []
    open_by_rule: dict[str, dict[str, Any]] = {}
    for event in events:
        if event.kind == ALERT_FIRING:
            row = {**event.payload, "state": "firing", "fired_at": event.ts, "resolved_at": None}
            rows.append(row)
            open_by_rule[event.payload["rule"]] = row
        elif event.payload["rule"] in open_by_rule:
            row = open_by_rule.pop(event.payload["rule"])
            row.update(state="resolved", resolved_at=event.ts)
    return rows
