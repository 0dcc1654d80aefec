"""Verified result bundles as xAPI 1.0.3 statements, the form a Learning Record Store (and an LMS behind it) takes
in: a statement per lab, per finished drill run and per finished capstone. Pure.

A statement's id is a UUID derived from what it says (its timestamp is when the result happened, not the
export), so the same result exported twice is the same statement (an LRS takes it once) and a changed result (a
lab passed further) is a new one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from grader.results import Bundle, LabResult, Run, canonical

VERSION = "1.0.3"
HOME_PAGE = "https://mlops-lab.invalid"  # the default home of learners' accounts and of the activities' IRIs
NAMESPACE = uuid.UUID("6f1c2a8e-4d3b-5e7f-9a0b-1c2d3e4f5a6b")
ADL = "http://adlnet.gov/expapi"
VERBS = {name: f"{ADL}/verbs/{name}" for name in ("attempted", "completed", "passed", "failed")}
LESSON, SIMULATION, ASSESSMENT = (f"{ADL}/activities/{t}" for t in ("lesson", "simulation", "assessment"))


def iso_duration(seconds: float) -> str:
    """`seconds` as an ISO 8601 duration: 95.5 -> `PT1M35.5S`, 3725 -> `PT1H2M5S`."""
    whole, frac = divmod(round(max(seconds, 0.0), 2), 1)
    hours, rest = divmod(int(whole), 3600)
    minutes, secs = divmod(rest, 60)
    text = "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if secs or frac or text == "PT":
        text += f"{secs + frac:g}S" if frac else f"{secs}S"
    return text


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _activity(home: str, path: str, name: str, kind: str) -> dict[str, Any]:
    return {"objectType": "Activity", "id": f"{home}/{path}", "definition": {"name": {"en-US": name}, "type": kind}}


def _statement(
    home: str, learner: str, verb: str, obj: dict[str, Any], result: dict[str, Any], ts: float
) -> dict[str, Any]:
    body = {
        "actor": {"objectType": "Agent", "name": learner, "account": {"homePage": home, "name": learner}},
        "verb": {"id": VERBS[verb], "display": {"en-US": verb}},
        "object": obj,
        "result": result,
        "context": {"platform": "mlops-lab", "language": "en"},
        "timestamp": _when(ts),
    }
    return {"id": str(uuid.uuid5(NAMESPACE, canonical(body).decode())), **body}


def _extensions(home: str, figures: Mapping[str, Any]) -> dict[str, Any]:
    return {f"{home}/xapi/{name}": value for name, value in figures.items() if value is not None}


def lab_statement(home: str, learner: str, lab: LabResult, ts: float) -> dict[str, Any]:
    result: dict[str, Any] = {"completion": lab.completed, "success": lab.completed}
    if lab.total:
        result["score"] = {"scaled": round(lab.passed / lab.total, 4), "raw": lab.passed, "min": 0, "max": lab.total}
    if lab.steps:
        result["extensions"] = _extensions(home, {"steps": list(lab.steps)})
    verb = "completed" if lab.completed else "attempted"
    return _statement(home, learner, verb, _activity(home, f"labs/{lab.lab}", lab.lab, LESSON), result, ts)


def run_statement(home: str, learner: str, run: Run, ts: float) -> dict[str, Any]:
    """A drill run: passed when the learner remediated it; its duration from the injection to the fix credited
    (to the time limit when there was none)."""
    remediated = run.ttr is not None
    figures = {
        "run_id": run.run_id, "outcome": run.outcome, "blind": run.blind, "ttd": run.ttd, "ttm": run.ttm,
        "ttr": run.ttr, "wrong_declarations": run.wrong_declarations, "decision": run.decision,
        "verdict": run.verdict, "blast_radius": run.blast_radius,
    }  # fmt: skip
    result = {
        "score": {"scaled": round(run.score / 100, 4), "raw": run.score, "min": 0, "max": 100},
        "success": remediated,
        "completion": True,
        "duration": iso_duration(run.ttr if run.ttr is not None else run.time_limit),
        "extensions": _extensions(home, figures),
    }
    obj = _activity(home, f"drills/{run.drill}", run.drill, SIMULATION)
    return _statement(
        home,
        learner,
        "passed" if remediated else "failed",
        obj,
        result,
        ts if run.injected_at is None else run.injected_at,
    )


def capstone_statement(home: str, learner: str, capstone: Mapping[str, Any], ts: float) -> dict[str, Any]:
    score, passed = float(capstone["score"]), bool(capstone["passed"])
    result = {
        "score": {"scaled": round(score / 100, 4), "raw": score, "min": 0, "max": 100},
        "success": passed,
        "completion": True,
        "extensions": _extensions(home, {"capstone_id": capstone.get("capstone_id"), **capstone.get("dimensions", {})}),
    }
    obj = _activity(home, "capstone", "capstone", ASSESSMENT)
    return _statement(home, learner, "passed" if passed else "failed", obj, result, ts)


def statements(bundles: Iterable[Bundle], home: str = HOME_PAGE) -> list[dict[str, Any]]:
    """Every statement of `bundles` (verified): labs, finished drill runs that injected, the capstone once
    finished. Each is dated when it happened (the lab's best check, the run's injection, the capstone's end), so
    exporting it again later gives the same statement (a bundle before format 4 dates labs and capstone by its
    export)."""
    found = []
    for b in bundles:
        at = b.exported_at
        found += [
            lab_statement(home, b.learner, lab, at if lab.checked_at is None else lab.checked_at) for lab in b.labs
        ]
        found += [run_statement(home, b.learner, r, at) for r in b.runs if r.finished and r.injected_at is not None]
        if cap := b.scored_capstone:
            found.append(capstone_statement(home, b.learner, cap, float(cap.get("ended_at", at))))
    return found
