"""Reference solution of lab 06, run by `lab solve lab-06` in your workspace with your sandbox's settings.

It reasons as an on-call engineer would, from what the sandbox shows, never from the drill's name: a champion
that changed just before the harm is rolled back; a model swamped by more traffic than it served before is
throttled to that load; harm with no change anyone made is stopped with the switch, then fixed by retraining.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from lab_runtime.labs.scripting import lab, observe, wait

SURGE = 1.5  # a request rate this many times the pipeline's usual one is a surge
SLOW_MS = 250  # the service's latency objective (p99)
REMEDIATED = re.compile(r"remediated \d+s after it began")  # what `lab check` says of a situation once fixed
ALERTS = ("unsafe-output", "latency-p99")  # what pages on this lab's situations


def steps() -> dict[str, dict[str, Any]]:
    report = observe("check", "--json", check=False)
    if not report.stdout:  # the next situation could not start yet (its steady-state gate): said on stderr
        print(report.stderr.strip())
        return {}
    return {s["id"]: s for s in json.loads(report.stdout)["steps"]}


def passed(step: str) -> bool:
    return bool(steps().get(step, {}).get("passed"))


def signals() -> dict[str, float]:
    return dict(json.loads(observe("monitor", "status", "--json").stdout).get("signals", {}))


def firing(since: float) -> dict[str, Any] | None:
    """The first alert of this lab's kinds that fired since `since`, still firing."""
    alerts = json.loads(observe("alerts", "--json").stdout)
    return next(
        (a for a in alerts if a["rule"] in ALERTS and a["state"] == "firing" and a["last_fired_at"] >= since), None
    )


def pipeline_rate() -> tuple[float, float]:
    """The pipeline's request rate over its last 10 s, and its usual (target) rate."""
    status = json.loads(observe("pipeline", "status", "--json").stdout)
    return float(status["actual_rate"]), float(status["target_rate"])


def surged() -> float | None:
    rate, usual = pipeline_rate()
    return rate / usual if rate > SURGE * usual else None


def champion_moved(since: float) -> bool:
    changes = json.loads(observe("model", "history", "--alias", "champion", "--json").stdout)
    return any(c["ts"] >= since for c in changes)


# 1. On call: the monitor sees traffic.
wait("the monitor to see traffic", lambda: passed("on-call"))
print("on call")

# 2. The levers, rehearsed: half the requests to the fallback rules, then the model back on all.
print(lab("feature", "throttle", "0.5").stdout.strip())
print(lab("feature", "enable").stdout.strip())


# 3-5. Each situation: wait for the page, read what changed, declare, pull the lever, remediate.
def handle(step: str) -> str:
    since = time.time()
    wait(f"{step}: the situation to start", lambda: not steps().get(step, {"detail": "the incident has not started"})[
        "detail"].startswith("the incident has not started"))  # fmt: skip
    alert = wait(f"{step}: a page", lambda: firing(since))
    slow = signals().get("latency_p99_ms", 0.0) > SLOW_MS
    print(f"{step}: {alert['rule']} fired: {alert['summary']}" + ("; the service is slow" if slow else ""))
    if champion_moved(since):
        lab("declare", "unsafe-output", "--note", "a new champion serves decisions the policy forbids")
        print(lab("model", "rollback").stdout.strip())
        why = "a new champion went live just before the harm, and the version before it was safe"
    elif slow and (times := wait(f"{step}: the request rate over 10 s", surged, 15)):
        lab("declare", "overload", "--note", f"{times:.1f} times the usual traffic, slow and unsafe answers")
        share = round(0.8 / times, 2)  # the model back under the load it served well, with a margin
        print(lab("feature", "throttle", str(share)).stdout.strip())
        wait(f"{step}: the remediation", lambda: REMEDIATED.search(steps().get(step, {}).get("detail", "")))
        print(lab("feature", "enable").stdout.strip())  # the surge is over: the model back on every request
        why = f"traffic rose to {times:.1f} times the usual; the model is sound on the load it had before"
    else:
        lab("declare", "unsafe-output", "--note", "no model, release or load changed, yet the harm is served")
        print(lab("feature", "disable").stdout.strip())
        # A retrain on traffic since the change only: the window starts after the alert's first sign of it.
        time.sleep(max(0.0, alert["pending_since"] + 42 - time.time()))
        print(lab("model", "retrain", "--window", "40s", "--min-rows", "200", "--promote").stdout.strip())
        print(lab("feature", "enable").stdout.strip())
        why = "nothing anyone changed: every version is unsafe on the new inputs, so off, retrain, on again"
    wait(f"{step}: the remediation to hold", lambda: passed(step))
    print(f"{step}: handled")
    return why


reasons = [handle(step) for step in ("first", "second", "third")]


# 6. The note: the levers and blast radii the record holds, once every situation is over.
def over() -> list[dict[str, Any]] | None:
    runs = [r for r in json.loads(observe("grade", "--json").stdout) if r["drill"].startswith("output-")]
    return runs[-3:] if len(runs) >= 3 and all(r["finished"] for r in runs[-3:]) else None


runs = wait("every situation to be over", over)
note = Path("decision-note.md").read_text()
for run, why in zip(runs, reasons, strict=True):
    print(f"{run['drill']}: {run['decision']} ({run['verdict']}), blast radius {run['blast_radius']}")
    for answer in (run["decision"], why, str(run["blast_radius"])):
        note = note.replace("TODO", answer, 1)
Path("decision-note.md").write_text(note)
wait("the note to pass", lambda: passed("note"), 30)
print("decision note accepted")
