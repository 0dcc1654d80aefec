"""Alert rules as data (validation, reload, last good rules) and `for` semantics, with no services."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab_runtime.errors import InvalidRules
from lab_runtime.events import ALERT_FIRING, ALERT_RESOLVED
from lab_runtime.journal import Event
from lab_runtime.monitor.alerts import AlertEngine, alert_history, firing_alerts
from lab_runtime.monitor.rules import BUILTIN_RULES, Rule, RuleBook, load_rules

RULE = """
rules:
  - name: drift
    signal: drifted_features
    comparison: ">="
    threshold: 1
    for: 10s
    severity: warning
    summary: "drift: {detail}"
    runbook: read the report
"""


def rule(**changes: object) -> Rule:
    base = {
        "name": "drift",
        "signal": "drifted_features",
        "comparison": ">=",
        "threshold": 1,
        "for": "10s",
        "summary": "drift: {detail}",
        "runbook": "read the report",
    }
    return Rule.model_validate({**base, **changes})


def test_the_builtin_rules_are_valid() -> None:
    names = [r.name for r in load_rules(BUILTIN_RULES)]
    assert "feature-drift" in names and "error-rate" in names


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (RULE.replace("drifted_features", "drifted_featurez"), "rules.0.signal: Value error, unknown signal"),
        (RULE.replace("threshold: 1", "threshold: lots"), "rules.0.threshold: Input should be a valid number"),
        (RULE.replace("threshold: 1", "threshold: .inf"), "rules.0.threshold: Value error, the threshold must be"),
        (RULE.replace('">="', '"=>"'), "rules.0.comparison: Input should be '>', '>=', '<', '<=', '==' or '!='"),
        (RULE.replace("for: 10s", "for: ten"), "rules.0.for: Value error, 'ten' is not a duration"),
        (RULE.replace("    runbook: read the report\n", ""), "rules.0.runbook: Field required"),
        (RULE.replace("{detail}", "{feature}"), "rules.0.summary: Value error, the summary may use only"),
        (RULE.replace("drifted_features", "drift_p_value.salary"), "unknown signal 'drift_p_value.salary'"),
        (RULE.replace("{detail}", "{value[0]}"), "rules.0.summary: Value error, the summary may use only"),
        (RULE.replace("for: 10s", "for:"), "rules.0.for: Value error, None is not a duration"),
        (
            RULE.replace("for: 10s", "for: 10s\n    resolve_threshold: 2"),
            "rules.0: Value error, resolve_threshold 2 is on the firing side of the threshold 1: for '>=' it must be"
            " <= the threshold",
        ),
        (
            RULE.replace('">="', '"<"').replace("for: 10s", "for: 10s\n    resolve_threshold: 0.5"),
            "rules.0: Value error, resolve_threshold 0.5 is on the firing side of the threshold 1: for '<' it must be"
            " >= the threshold",
        ),
        (
            RULE.replace('">="', '"=="').replace("for: 10s", "for: 10s\n    resolve_threshold: 1"),
            "rules.0: Value error, resolve_threshold has no meaning for the comparison '=='; remove it",
        ),
        (
            RULE.replace("for: 10s", "for: 10s\n    resolve_threshold: .nan"),
            "rules.0.resolve_threshold: Value error, resolve_threshold must be a finite number",
        ),
        ("rules: []", "rules: List should have at least 1 item"),
        ("- just a list", "a rule file must be a mapping of fields, got list"),
    ],
)
def test_a_bad_rule_file_is_refused_naming_the_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(InvalidRules) as caught:
        load_rules(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_the_rulebook_keeps_a_files_last_good_rules_when_it_breaks(tmp_path: Path) -> None:
    book = RuleBook(tmp_path)
    mine = tmp_path / "mine.yaml"
    mine.write_text(RULE.replace("name: drift", "name: my-drift"))
    assert "my-drift" in [r.name for r in book.reload()]
    mine.write_text(RULE.replace("name: drift", "name: my-drift").replace("threshold: 1", "threshold: x"))
    os.utime(mine, (1, 1))  # a new mtime even within the same clock tick
    assert "my-drift" in [r.name for r in book.reload()]
    assert any("threshold" in p and str(mine) in p for p in book.problems())
    mine.unlink()
    assert "my-drift" not in [r.name for r in book.reload()] and book.problems() == []


def test_a_rule_fires_only_after_its_for_duration_and_resolves_when_the_signal_clears() -> None:
    engine, rules = AlertEngine(), [rule()]
    assert engine.step(rules, {"drifted_features": 1}, {"drifted_features": "age"}, now=100) == []
    assert engine.active["drift"].state == "pending"
    assert engine.step(rules, {"drifted_features": 2}, {}, now=105) == []
    fired = engine.step(rules, {"drifted_features": 1}, {"drifted_features": "age (p=1e-9)"}, now=110)
    assert [t.kind for t in fired] == [ALERT_FIRING]
    assert fired[0].payload["summary"] == "drift: age (p=1e-9)" and fired[0].payload["pending_since"] == 100
    assert engine.step(rules, {"drifted_features": 1}, {}, now=115) == []  # fires once
    resolved = engine.step(rules, {"drifted_features": 0}, {}, now=120)
    assert [t.kind for t in resolved] == [ALERT_RESOLVED] and resolved[0].payload["duration"] == 10


def test_a_condition_that_breaks_before_the_for_duration_never_fires() -> None:
    engine, rules = AlertEngine(), [rule()]
    for now, value in [(0, 1), (5, 1), (9, 0), (10, 1), (15, 1)]:
        assert engine.step(rules, {"drifted_features": value}, {}, now=now) == []
    assert engine.active["drift"].pending_since == 10


def test_an_absent_signal_resolves_a_firing_alert_and_never_fires_one() -> None:
    engine, rules = AlertEngine(), [rule(**{"for": 0})]
    assert [t.kind for t in engine.step(rules, {"drifted_features": 3}, {}, now=0)] == [ALERT_FIRING]
    assert [t.kind for t in engine.step(rules, {"rows": 12}, {}, now=1)] == [ALERT_RESOLVED]
    assert engine.step(rules, {}, {}, now=2) == []


def test_a_rule_removed_while_firing_resolves_its_alert() -> None:
    engine = AlertEngine()
    engine.step([rule(**{"for": 0})], {"drifted_features": 3}, {}, now=0)
    assert [t.payload["rule"] for t in engine.step([], {"drifted_features": 3}, {}, now=1)] == ["drift"]


def test_after_a_restart_an_alert_the_journal_says_is_firing_is_kept_or_resolved() -> None:
    events = [
        Event(
            1,
            0.0,
            "monitor",
            ALERT_FIRING,
            {"rule": "drift", "severity": "warning", "pending_since": 0.0, "firing_since": 10.0},
        ),
        Event(
            2,
            1.0,
            "monitor",
            ALERT_FIRING,
            {"rule": "gone", "severity": "info", "pending_since": 0.0, "firing_since": 1.0},
        ),
        Event(3, 2.0, "monitor", ALERT_RESOLVED, {"rule": "gone"}),
    ]
    firing = firing_alerts(events)
    assert list(firing) == ["drift"]
    still = AlertEngine(firing)
    assert still.step([rule()], {"drifted_features": 1}, {}, now=50) == []  # no second `firing` for the same alert
    assert still.active["drift"].firing_since == 10.0
    cleared = AlertEngine(firing)
    assert [t.kind for t in cleared.step([rule()], {"drifted_features": 0}, {}, now=50)] == [ALERT_RESOLVED]


def test_the_alert_history_pairs_each_firing_with_its_resolution() -> None:
    events = [
        Event(1, 1.0, "monitor", ALERT_FIRING, {"rule": "drift", "severity": "warning"}),
        Event(2, 2.0, "monitor", ALERT_RESOLVED, {"rule": "drift"}),
        Event(3, 3.0, "monitor", ALERT_RESOLVED, {"rule": "never-fired"}),
        Event(4, 4.0, "monitor", ALERT_FIRING, {"rule": "drift", "severity": "warning"}),
    ]
    assert alert_history(events) == [
        {"rule": "drift", "severity": "warning", "state": "resolved", "fired_at": 1.0, "resolved_at": 2.0},
        {"rule": "drift", "severity": "warning", "state": "firing", "fired_at": 4.0, "resolved_at": None},
    ]


def test_the_built_in_unsafe_output_rule_fires_critical_once_over_two_percent_has_held_ten_seconds() -> None:
    rules = [r for r in load_rules(BUILTIN_RULES) if r.name == "unsafe-output"]
    at_limit, over = AlertEngine(), AlertEngine()
    for now in (0, 5, 10):
        assert at_limit.step(rules, {"unsafe_output_rate": 0.02}, {}, now=now) == []
        fired = over.step(rules, {"unsafe_output_rate": 0.021}, {}, now=now)
    (alert,) = fired
    assert alert.kind == ALERT_FIRING and alert.payload["severity"] == "critical"
    assert alert.payload["summary"] == "2.1% of the decisions served break the output policy"


def floor(**changes: object) -> Rule:
    """The built-in accuracy floor's shape: fires below 0.72, resolves only at 0.74 or more."""
    base = {"name": "floor", "signal": "accuracy", "comparison": "<", "threshold": 0.72, "resolve_threshold": 0.74}
    return rule(**{**base, **changes})


def test_a_firing_alert_with_a_resolve_threshold_keeps_firing_until_the_signal_is_beyond_it() -> None:
    engine, rules = AlertEngine(), [floor()]
    assert engine.step(rules, {"accuracy": 0.70}, {}, now=0) == []
    (fired,) = engine.step(rules, {"accuracy": 0.71}, {}, now=10)
    assert fired.kind == ALERT_FIRING and fired.payload["resolve_threshold"] == 0.74
    for now, value in [(15, 0.72), (20, 0.73), (25, 0.7399), (30, 0.65)]:  # between the thresholds, or back below
        assert engine.step(rules, {"accuracy": value}, {}, now=now) == []
        assert engine.active["floor"].state == "firing" and engine.active["floor"].value == value
    (resolved,) = engine.step(rules, {"accuracy": 0.74}, {}, now=35)
    assert resolved.kind == ALERT_RESOLVED and resolved.payload["duration"] == 25 and resolved.payload["value"] == 0.74
    assert "floor" not in engine.active


def test_a_pending_alert_clears_at_the_threshold_not_the_resolve_threshold() -> None:
    engine, rules = AlertEngine(), [floor()]
    assert engine.step(rules, {"accuracy": 0.70}, {}, now=0) == []
    assert engine.step(rules, {"accuracy": 0.73}, {}, now=5) == []  # between the two: the pending alert is gone
    assert "floor" not in engine.active
    assert engine.step(rules, {"accuracy": 0.70}, {}, now=6) == []
    assert engine.active["floor"].pending_since == 6
    assert engine.step(rules, {"accuracy": 0.70}, {}, now=15) == []  # 9 s of the 10 s `for`: still pending


def test_a_rule_without_a_resolve_threshold_resolves_at_its_threshold() -> None:
    engine, rules = AlertEngine(), [floor(resolve_threshold=None, **{"for": 0})]
    assert [t.kind for t in engine.step(rules, {"accuracy": 0.70}, {}, now=0)] == [ALERT_FIRING]
    (resolved,) = engine.step(rules, {"accuracy": 0.72}, {}, now=1)
    assert resolved.kind == ALERT_RESOLVED


def test_an_inherited_firing_alert_between_the_thresholds_keeps_firing_after_a_restart() -> None:
    payload = {"rule": "floor", "severity": "warning", "pending_since": 0.0, "firing_since": 10.0}
    still = AlertEngine({"floor": payload})
    assert still.step([floor()], {"accuracy": 0.73}, {}, now=50) == []
    assert still.active["floor"].firing_since == 10.0
    cleared = AlertEngine({"floor": payload})
    assert [t.kind for t in cleared.step([floor()], {"accuracy": 0.75}, {}, now=50)] == [ALERT_RESOLVED]


def test_the_built_in_quality_rules_resolve_beyond_their_thresholds() -> None:
    by_name = {r.name: r for r in load_rules(BUILTIN_RULES)}
    assert (by_name["accuracy-floor"].threshold, by_name["accuracy-floor"].resolve_threshold) == (0.72, 0.74)
    assert (by_name["accuracy-drop"].threshold, by_name["accuracy-drop"].resolve_threshold) == (0.1, 0.08)
    assert by_name["service-down"].resolve_threshold is None
