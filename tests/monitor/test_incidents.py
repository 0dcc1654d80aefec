"""A rule that fires again soon after it resolved is one incident with its occurrences: in the engine's payloads,
after a restart, in the history's grouping and in `lab alerts`. No services."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from lab_runtime.events import ALERT_FIRING, ALERT_RESOLVED
from lab_runtime.journal import Event, Journal
from lab_runtime.monitor.alerts import AlertEngine, Resolution, alert_history, firing_alerts, incidents, resolutions
from lab_runtime.monitor.rules import Rule
from lab_runtime.settings import load_settings
from tests.cli import lab, ok

RULES = [
    Rule.model_validate(
        {
            "name": "errors",
            "signal": "error_rate",
            "comparison": ">",
            "threshold": 0.05,
            "for": 0,
            "severity": "critical",
            "summary": "{value:.0%} of calls fail",
            "runbook": "read the log",
        }
    )
]


def burst(engine: AlertEngine, spans: list[tuple[float, float]]) -> list[Event]:
    """The engine's transitions, as journal events, for a condition that holds over each (start, end) span."""
    events: list[Event] = []
    for start, end in spans:
        for now, value in ((start, 0.5), (end, 0.0)):
            for t in engine.step(RULES, {"error_rate": value}, {}, now=now):
                events.append(Event(len(events) + 1, now, "monitor", t.kind, dict(t.payload)))
    return events


def fired(events: list[Event]) -> list[tuple[float, int]]:
    return [(e.payload["incident"], e.payload["occurrence"]) for e in events if e.kind == ALERT_FIRING]


def test_an_alert_that_fires_again_within_the_gap_is_the_same_incident() -> None:
    events = burst(AlertEngine(), [(100, 110), (200, 210), (300, 310)])
    assert fired(events) == [(100, 1), (100, 2), (100, 3)]
    (incident,) = incidents(alert_history(events))
    assert incident["state"] == "resolved" and incident["occurrence"] == 3
    assert (incident["fired_at"], incident["resolved_at"], incident["last_fired_at"]) == (100, 310, 300)
    assert [(o["occurrence"], o["fired_at"], o["resolved_at"]) for o in incident["occurrences"]] == [
        (1, 100, 110),
        (2, 200, 210),
        (3, 300, 310),
    ]


def test_an_alert_that_fires_again_beyond_the_gap_is_a_new_incident() -> None:
    events = burst(AlertEngine(), [(0, 10), (610, 620), (1221, 1230)])  # 600 s after, then 601 s after
    assert fired(events) == [(0, 1), (0, 2), (1221, 1)]
    grouped = incidents(alert_history(events))
    assert [(i["incident"], i["occurrence"], i["fired_at"], i["resolved_at"]) for i in grouped] == [
        (0, 2, 0, 620),
        (1221, 1, 1221, 1230),
    ]


def test_the_incident_gap_runs_on_the_sandboxs_clock() -> None:
    scaled = burst(AlertEngine(time_scale=0.1), [(0, 10), (70, 80), (141, 150)])  # a 600 s gap is 60 s here
    assert fired(scaled) == [(0, 1), (0, 2), (141, 1)]
    shorter = burst(AlertEngine(incident_gap=30), [(0, 10), (40, 50), (81, 90)])
    assert fired(shorter) == [(0, 1), (0, 2), (81, 1)]


def test_a_pending_alert_that_never_fired_is_no_occurrence() -> None:
    engine = AlertEngine()
    slow = [RULES[0].model_copy(update={"for_": 10.0})]
    for now, value in [(0, 0.5), (5, 0.5), (6, 0.0), (20, 0.5), (30, 0.5)]:
        transitions = engine.step(slow, {"error_rate": value}, {}, now=now)
    (first,) = transitions
    assert (first.payload["incident"], first.payload["occurrence"]) == (30, 1)
    assert engine.resolved == {}


def test_after_a_restart_an_inherited_alert_carries_on_its_incident() -> None:
    first = AlertEngine()
    before = burst(first, [(0, 10)])
    (again,) = first.step(RULES, {"error_rate": 0.5}, {}, now=50)
    before.append(Event(3, 50, "monitor", again.kind, dict(again.payload)))
    assert fired(before) == [(0, 1), (0, 2)]
    restarted = AlertEngine(firing_alerts(before))  # the monitor started again while the second firing goes on
    assert restarted.step(RULES, {"error_rate": 0.5}, {}, now=60) == []  # still firing: no new firing
    assert (restarted.active["errors"].incident, restarted.active["errors"].occurrence) == (0, 2)
    assert [t.kind for t in restarted.step(RULES, {"error_rate": 0.0}, {}, now=70)] == [ALERT_RESOLVED]
    assert fired(burst(restarted, [(80, 90)])) == [(0, 3)]


def test_an_inherited_firing_from_before_incidents_is_the_first_occurrence_of_its_own() -> None:
    old = {"rule": "errors", "severity": "critical", "pending_since": 40.0, "firing_since": 50.0}
    engine = AlertEngine({"errors": old})
    assert [t.kind for t in engine.step(RULES, {"error_rate": 0.0}, {}, now=60)] == [ALERT_RESOLVED]
    assert engine.resolved == {"errors": Resolution(60, 50.0, 1)}
    (again,) = engine.step(RULES, {"error_rate": 0.5}, {}, now=70)
    assert (again.payload["incident"], again.payload["occurrence"]) == (50.0, 2)


def test_an_engine_started_again_continues_the_incident_of_an_alert_resolved_before() -> None:
    before = burst(AlertEngine(), [(0, 10), (20, 30)])
    assert resolutions(before) == {"errors": Resolution(30, 0, 2)}
    (again,) = AlertEngine(resolved=resolutions(before)).step(RULES, {"error_rate": 0.5}, {}, now=40)
    assert (again.payload["incident"], again.payload["occurrence"]) == (0, 3)


def test_history_rows_from_an_older_journal_are_each_their_own_incident() -> None:
    events = [
        Event(1, 1.0, "monitor", ALERT_FIRING, {"rule": "drift", "severity": "warning", "firing_since": 1.0}),
        Event(2, 2.0, "monitor", ALERT_RESOLVED, {"rule": "drift"}),
        Event(3, 3.0, "monitor", ALERT_FIRING, {"rule": "drift", "severity": "warning", "firing_since": 3.0}),
    ]
    grouped = incidents(alert_history(events))
    assert [(i["state"], i["fired_at"], i["resolved_at"], i["occurrence"]) for i in grouped] == [
        ("resolved", 1.0, 2.0, 1),
        ("firing", 3.0, None, 1),
    ]


def test_an_incident_whose_latest_occurrence_fires_is_firing_with_no_resolution() -> None:
    engine = AlertEngine()
    events = burst(engine, [(0, 10)])
    events += [
        Event(3, 20, "monitor", t.kind, dict(t.payload)) for t in engine.step(RULES, {"error_rate": 0.3}, {}, 20)
    ]
    (incident,) = incidents(alert_history(events))
    assert (incident["state"], incident["fired_at"], incident["resolved_at"]) == ("firing", 0, None)
    assert incident["summary"] == "30% of calls fail" and incident["value"] == 0.3  # the latest occurrence's
    assert [o["state"] for o in incident["occurrences"]] == ["resolved", "firing"]


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "state"


def journal_steps(steps: list[tuple[float, float]]) -> None:
    """The engine's transitions for each (seconds since an hour ago, error rate), written to the sandbox's journal."""
    t0 = time.time() - 3600
    journal = Journal(load_settings().journal_path, source="monitor")
    engine = AlertEngine()
    for at, value in steps:
        for t in engine.step(RULES, {"error_rate": value}, {}, now=t0 + at):
            journal.append(t.kind, t.payload, ts=t0 + at)


def test_lab_alerts_lists_a_recurring_alert_as_one_incident(state: Path) -> None:
    # one incident that fired twice and resolved; 890 s later (beyond the gap) another, firing for the second time
    journal_steps([(0, 0.5), (10, 0.0), (100, 0.5), (110, 0.0), (1000, 0.5), (1010, 0.0), (1100, 0.5)])
    rows: list[dict[str, Any]] = json.loads(ok(lab("alerts", "--all", "--json")))
    assert [(r["rule"], r["state"], r["occurrence"], len(r["occurrences"])) for r in rows] == [
        ("errors", "resolved", 2, 2),
        ("errors", "firing", 2, 2),
    ]
    first, second = rows
    assert first["resolved_at"] == first["occurrences"][-1]["resolved_at"] and second["resolved_at"] is None
    assert second["fired_at"] == second["incident"] < second["last_fired_at"] == second["occurrences"][1]["fired_at"]
    assert {"severity", "summary", "runbook", "pending_since", "firing_since"} <= set(first)
    assert json.loads(ok(lab("alerts", "--json"))) == [second]
    table = ok(lab("alerts", "--all"))
    assert table.count("errors") == 2 and "occurrence 2, last fired" in table
