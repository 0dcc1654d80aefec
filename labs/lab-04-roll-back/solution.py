"""Reference solution of lab 04, run by `lab solve lab-04` in your workspace with your sandbox's settings."""

from __future__ import annotations

import json
from typing import Any

from lab_runtime.labs.scripting import lab, observe, wait


def retrained() -> dict[str, Any] | None:
    result = lab("model", "retrain", "--window", "5m", "--min-rows", "1000", "--json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def firing(*rules: str) -> bool:
    """Whether any of `rules` is firing."""
    return any(a["rule"] in rules for a in json.loads(observe("alerts", "--json").stdout))


def champions() -> list[dict[str, Any]]:
    return list(json.loads(observe("model", "history", "--alias", "champion", "--json").stdout))


# 1-2. A candidate trained on recent traffic, promoted through the validation gate.
candidate = wait("1000 labelled predictions to train on", retrained)["version"]
promoted = json.loads(lab("model", "promote", candidate, "--json").stdout)
scores = {v: round(m["accuracy"], 4) for v, m in promoted["gate"].items()}
print(f"version {candidate} passed the gate (holdout accuracy {scores}) and is @champion")
wait("the promotion in the alias history", lambda: any(c["after"] == candidate for c in champions()), 10)
before = len(champions())


# 3. `lab check` moves the lab on: it starts the incident, or says why it could not (its drill's steady-state gate
# refused, say) and starts it on a later check. Then the quality alert fires.
def incident_started() -> bool:
    result = observe("check", "--json", check=False)
    if not result.stdout:  # an error, not a report: the incident could not start yet
        print(result.stderr.strip())
        return False
    steps = {s["id"]: s for s in json.loads(result.stdout)["steps"]}
    return not steps["rollback"]["detail"].startswith("the incident has not started yet")


def graded() -> list[dict[str, Any]]:
    """The drill runs `lab grade` shows: a blind one, such as the lab's incident, only once it is over."""
    return list(json.loads(observe("grade", "--json").stdout))


wait("the lab's incident to start", incident_started)
shown = {r["run_id"] for r in graded()}  # runs over before this incident (a run its gate refused, say)
wait("the accuracy-floor alert", lambda: firing("accuracy-floor"))
print("accuracy-floor fired")

# 4-5. The history shows who moved @champion since: the job, twice, outside the lab commands (the brief says it
# retried: the second move can come after the alert).
wait("the job's two promotions in the alias history", lambda: len(champions()) - before >= 2, 30)
since = champions()[before:]
for change in since:
    print(f"@champion {change['before']} -> {change['after']} ({change['via']})")
assert since and all(c["via"].startswith("outside") for c in since), since
last_good = since[0]["before"]
note = f"champion replaced by the retraining job {len(since)} times; version {last_good} was good"
lab("declare", "bad-model", "--note", note)
print(lab("model", "rollback", "--to", last_good).stdout.strip())


# 6. The alert resolves once the labelled traffic of the good version shows its accuracy. Right after a rollback the
# window still holds the bad versions' late labels, so it can fire again before it settles: the incident is over
# once its drill has seen the fix hold, with both alerts resolved.
def settled() -> bool:
    over = [r for r in graded() if r["run_id"] not in shown and r["injected_at"] is not None]
    return bool(over) and not firing("accuracy-floor", "accuracy-change")


wait("accuracy-floor to resolve and the fix to hold", settled)
print("accuracy-floor resolved")
