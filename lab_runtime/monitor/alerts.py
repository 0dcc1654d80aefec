"""Alert states, like Prometheus rules: pending while a rule's condition holds, firing once it has held for
the rule's `for` duration, resolved as soon as it stops holding (or its signal is absent); a rule with a
`resolve_threshold` keeps firing until the signal is beyond that. A rule that fires again within the incident
gap of its last resolution is the same incident, one more occurrence. Pure: no I/O.
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
    incident: float | None = None  # once firing: the `firing_since` of its incident's first firing
    occurrence: int = 1  # once firing: which firing of its incident this is

    @property
    def state(self) -> str:
        return "firing" if self.firing_since is not None else "pending"


@dataclass(frozen=True)
class Resolution:
    """A rule's last alert that resolved: when, and the incident it was part of."""

    at: float
    incident: float
    occurrence: int


def _incident_of(payload: dict[str, Any]) -> tuple[float, int]:
    """A firing payload's incident and occurrence; one written before incidents existed is its own first."""
    return float(payload.get("incident", payload["firing_since"])), int(payload.get("occurrence", 1))


@dataclass(frozen=True)
class Transition(Generic[Payload]):
    """An alert that started firing or resolved: what goes to the journal and the webhook."""

    kind: EventKind[Payload]  # ALERT_FIRING or ALERT_RESOLVED
    payload: Payload


def _firing(alert: AlertState, now: float) -> Transition[AlertFiring]:
    rule = alert.rule
    assert alert.incident is not None  # set with firing_since
    return Transition(
        ALERT_FIRING,
        AlertFiring(
            {
                "rule": rule.name,
                "severity": rule.severity,
                "signal": rule.signal,
                "comparison": rule.comparison,
                "threshold": rule.threshold,
                "resolve_threshold": rule.resolve_threshold,
                "for": rule.for_,
                "value": alert.value,
                "detail": alert.detail,
                "summary": rule.describe(alert.value, alert.detail),
                "runbook": rule.runbook,
                "pending_since": alert.pending_since,
                "firing_since": now,
                "incident": alert.incident,
                "occurrence": alert.occurrence,
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
    """Steps every rule once per evaluation and returns the alerts that fired or resolved. A rule's `for` and the
    `incident_gap` (seconds after a rule's alert resolved within which its next firing is the same incident) run
    on the sandbox's clock: `time_scale` times the duration stated. `firing` and `resolved` are what the journal
    says (`firing_alerts`, `resolutions`) when the monitor starts again."""

    def __init__(
        self,
        firing: dict[str, dict[str, Any]] | None = None,
        time_scale: float = 1.0,
        incident_gap: float = 600.0,
        resolved: dict[str, Resolution] | None = None,
    ) -> None:
        self.time_scale = time_scale
        self.incident_gap = incident_gap
        self.active: dict[str, AlertState] = {}
        self.resolved: dict[str, Resolution] = dict(resolved or {})  # rule name -> its last resolved alert
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
            alert = self.active.get(rule.name)
            firing = alert.firing_since is not None if alert is not None else rule.name in self._inherited
            if value is None or not rule.holds(value, firing):  # a pending alert clears at the threshold
                transitions += self._clear(rule.name, value, now)
                continue
            detail = details.get(rule.signal, "")
            if alert is None:
                inherited = self._inherited.pop(rule.name, None)
                since = inherited["pending_since"] if inherited else now
                alert = self.active[rule.name] = AlertState(rule, since, value, detail)
                if inherited:
                    alert.firing_since = inherited["firing_since"]
                    alert.incident, alert.occurrence = _incident_of(inherited)
            alert.value, alert.detail = value, detail
            if alert.firing_since is None and now - alert.pending_since >= rule.for_ * self.time_scale:
                alert.firing_since = now
                alert.incident, alert.occurrence = self._incident(rule.name, now)
                transitions.append(_firing(alert, now))
        for name, payload in list(self._inherited.items()):  # inherited alerts whose rule is gone
            if name not in by_name:
                del self._inherited[name]
                self.resolved[name] = Resolution(now, *_incident_of(payload))
                transitions.append(_resolved(name, payload["severity"], payload["firing_since"], None, now))
        return transitions

    def _incident(self, name: str, now: float) -> tuple[float, int]:
        """The incident and occurrence of a rule's alert firing `now`: the incident of its last resolved alert when
        that resolved within the gap, else a new one."""
        last = self.resolved.get(name)
        if last is not None and now - last.at <= self.incident_gap * self.time_scale:
            return last.incident, last.occurrence + 1
        return now, 1

    def _clear(self, name: str, value: float | None, now: float) -> list[Transition[Any]]:
        alert = self.active.pop(name, None)
        inherited = self._inherited.pop(name, None)
        if alert is not None and alert.firing_since is not None:
            assert alert.incident is not None  # set with firing_since
            self.resolved[name] = Resolution(now, alert.incident, alert.occurrence)
            return [_resolved(name, alert.rule.severity, alert.firing_since, value, now)]
        if alert is None and inherited is not None:
            self.resolved[name] = Resolution(now, *_incident_of(inherited))
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


def resolutions(events: list[Event]) -> dict[str, Resolution]:
    """Each rule's last alert that resolved in a sequence of alert events (the journal's `ts` of its resolution),
    for an engine started again to carry on its incidents."""
    open_by_rule: dict[str, dict[str, Any]] = {}
    resolved: dict[str, Resolution] = {}
    for event in events:
        rule = event.payload["rule"]
        if event.kind == ALERT_FIRING:
            open_by_rule[rule] = event.payload
        elif rule in open_by_rule:
            resolved[rule] = Resolution(event.ts, *_incident_of(open_by_rule.pop(rule)))
    return resolved


def alert_history(events: list[Event]) -> list[dict[str, Any]]:
    """Pure: every alert of a sequence of alert events, oldest first: its firing payload (with its `incident` and
    `occurrence`, when written by an engine that knew them) with `state` (firing or resolved), `fired_at` and
    `resolved_at`."""
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


def incidents(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pure: `alert_history`'s rows grouped into incidents (a rule's alert and its recurrences within the gap),
    ordered by first firing. Each is its latest occurrence's row (payload, `state`) with `fired_at` the incident's
    first firing, `resolved_at` its last resolution (None while it fires), `last_fired_at`, `occurrence` (the
    latest's number) and `occurrences`: each firing's `occurrence`, `state`, `fired_at`, `resolved_at`, `value`.
    A row without `incident` (from an older journal) is an incident of its own."""
    grouped: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for row in rows:
        incident, _ = _incident_of(row)
        grouped.setdefault((row["rule"], incident), []).append(row)
    result: list[dict[str, Any]] = []
    for (_, incident), occurrences in grouped.items():
        first, last = occurrences[0], occurrences[-1]
        result.append(
            {
                **last,
                "incident": incident,
                "fired_at": first["fired_at"],
                "resolved_at": last["resolved_at"],
                "last_fired_at": last["fired_at"],
                "occurrence": last.get("occurrence", len(occurrences)),
                "occurrences": [
                    {
                        "occurrence": row.get("occurrence", n),
                        "state": row["state"],
                        "fired_at": row["fired_at"],
                        "resolved_at": row["resolved_at"],
                        "value": row.get("value"),
                    }
                    for n, row in enumerate(occurrences, start=1)
                ],
            }
        )
    return result
