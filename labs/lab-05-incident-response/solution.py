"""Reference solution of lab 05, run by `lab solve lab-05` in your workspace with your sandbox's settings."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab_runtime.labs.scripting import lab, observe, wait

# What each built-in alert points to first, and the smallest fix for it.
TRIAGE = {
    "error-rate": ("errors", ["restart", "model-service"]),
    "latency-p99": ("latency", ["restart", "model-service"]),
}


def steps() -> dict[str, dict[str, Any]]:
    report = observe("check", "--json", check=False)
    if not report.stdout:  # the incident could not start yet (its steady-state gate): said on stderr
        print(report.stderr.strip())
        return {}
    return {s["id"]: s for s in json.loads(report.stdout)["steps"]}


def utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


# 1. On call: `lab check` starts the shift once the monitor sees traffic.
NOT_STARTED = "the incident has not started yet"  # what `lab check` says of a step until then (or on an error)
wait(
    "the shift to start", lambda: not steps().get("diagnose", {"detail": NOT_STARTED})["detail"].startswith(NOT_STARTED)
)
print("on call")


# 2. Triage: wait for an alert we know how to act on.
def firing() -> dict[str, Any] | None:
    alerts = json.loads(observe("alerts", "--json").stdout)
    return next((a for a in alerts if a["rule"] in TRIAGE and a["state"] == "firing"), None)


alert = wait("an alert", firing)
diagnosis, fix = TRIAGE[alert["rule"]]
print(f"{alert['rule']} fired: {alert['summary']}; declaring {diagnosis}")
detected = time.time()  # the grader times each move from when its command started
lab("declare", diagnosis, "--note", alert["summary"])

# 3. Remediate, then wait until the fix is credited (healthy for the drill's hold time after it).
mitigated = time.time()
print(lab(*fix).stdout.strip())
wait("the remediation to hold", lambda: steps().get("remediate", {}).get("passed"))
print("remediated")

# 4. The note, its TODOs in order. When it began comes from the record (`lab grade`, once the incident is over).
runs = wait("the incident's grade", lambda: [r for r in json.loads(observe("grade", "--json").stdout) if r["ttr"]])
answers = [
    diagnosis,
    utc(runs[-1]["injected_at"]),
    utc(detected),
    utc(mitigated),
    f"{alert['summary']}: a share of the /predict calls failed until the restart",
    "the model service process itself answered with server errors; a restart cleared it",
    f"page on {alert['rule']} per variant; find out what put the process in that state",
]
note = Path("incident-note.md").read_text()
for answer in answers:
    note = note.replace("TODO", answer, 1)
Path("incident-note.md").write_text(note)
wait("the note to pass", lambda: steps().get("note", {}).get("passed"), 30)
print("incident note accepted")
