"""Labs 02 and 04's alert steps: an early signal or its confirmation counts, and every one that fired must resolve
(journals written by hand, no servers)."""

from __future__ import annotations

from pathlib import Path

from lab_runtime.events import ALERT_FIRING, ALERT_RESOLVED, LAB_EVENT
from tests.labs.test_model_checks import Lab, Registry

RULES = ["feature-change", "feature-drift"]


def fire(lab: Lab, ts: float, rule: str) -> None:
    lab.event(ts, ALERT_FIRING, rule=rule, severity="warning", signal="s", comparison=">=", threshold=1.0,
              resolve_threshold=None, value=1.0, detail="", summary="", runbook="", pending_since=ts, firing_since=ts,
              incident=ts, occurrence=1, **{"for": 0.0})  # fmt: skip


def resolve(lab: Lab, ts: float, rule: str, since: float) -> None:
    lab.event(ts, ALERT_RESOLVED, rule=rule, severity="warning", value=0.0, firing_since=since, duration=ts - since)


def judged(lab: Lab, name: str) -> tuple[bool, str]:
    return lab.check(name, Registry({}), rules=RULES)


def test_the_early_alert_alone_passes_both_steps_for_a_learner_who_acts_before_the_confirmation(
    tmp_path: Path,
) -> None:
    lab = Lab(tmp_path)
    fire(lab, 5, "feature-change")  # before the incident: not this one's
    resolve(lab, 8, "feature-change", 5)
    assert judged(lab, "alert_fired")[1].startswith("the incident has not started yet")
    lab.event(10, LAB_EVENT, lab="lab-02", event=0)
    assert judged(lab, "alert_fired") == (
        False, "neither 'feature-change' nor 'feature-drift' has fired since the incident started (watch `lab alerts`)"
    )  # fmt: skip
    assert judged(lab, "alert_resolved") == (
        False, "neither 'feature-change' nor 'feature-drift' has fired and resolved since the incident started"
    )  # fmt: skip
    fire(lab, 14, "feature-change")
    assert judged(lab, "alert_fired") == (True, "'feature-change' fired 4s after the incident started")
    assert judged(lab, "alert_resolved") == (
        False, "'feature-change' still firing (watch `lab alerts`)"
    )  # fmt: skip
    resolve(lab, 40, "feature-change", 14)
    assert judged(lab, "alert_resolved") == (True, "'feature-change' resolved")


def test_a_confirmation_still_firing_holds_the_resolved_step_back(tmp_path: Path) -> None:
    lab = Lab(tmp_path)
    lab.event(10, LAB_EVENT, lab="lab-02", event=0)
    fire(lab, 14, "feature-change")
    fire(lab, 50, "feature-drift")
    resolve(lab, 60, "feature-change", 14)
    assert judged(lab, "alert_resolved") == (
        False, "'feature-drift' still firing (watch `lab alerts`)"
    )  # fmt: skip
    resolve(lab, 90, "feature-drift", 50)
    assert judged(lab, "alert_resolved") == (True, "'feature-change' and 'feature-drift' resolved")


def test_one_rule_reads_as_one(tmp_path: Path) -> None:
    lab = Lab(tmp_path)
    lab.event(10, LAB_EVENT, lab="lab-04", event=0)
    assert lab.check("alert_fired", Registry({}), rules=["accuracy-floor"]) == (
        False, "'accuracy-floor' has not fired since the incident started (watch `lab alerts`)"
    )  # fmt: skip


def test_an_early_alert_already_firing_when_the_incident_starts_counts_as_fired(tmp_path: Path) -> None:
    lab = Lab(tmp_path)
    fire(lab, 8, "feature-change")
    lab.event(10, LAB_EVENT, lab="lab-02", event=0)
    assert judged(lab, "alert_fired") == (True, "'feature-change' was firing when the incident started")
    resolve(lab, 30, "feature-change", 8)
    assert judged(lab, "alert_fired") == (True, "'feature-change' was firing when the incident started")
    assert judged(lab, "alert_resolved") == (True, "'feature-change' resolved")
