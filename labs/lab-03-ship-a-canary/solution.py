"""Reference solution of lab 03, run by `lab solve lab-03` in your workspace with your sandbox's settings."""

from __future__ import annotations

import json
from typing import Any

from lab_runtime.labs.scripting import lab, observe, wait


def evaluated() -> str | None:
    """A candidate trained on the labelled traffic of the last two minutes whose evaluation against the champion says
    go; None while there are too few labels, or when it says no-go (a window holding bad traffic makes a worse model:
    the next try trains on a fresher one)."""
    result = lab("model", "retrain", "--window", "2m", "--min-rows", "300", "--json", check=False)
    if result.returncode != 0:
        return None
    version = str(json.loads(result.stdout)["version"])
    evaluation = json.loads(lab("eval", "run", version, "--json").stdout)
    print(f"registered candidate version {version}; its evaluation: {evaluation['verdict']} {evaluation['reasons']}")
    return version if evaluation["verdict"] == "go" else None


def step_passes(step: str) -> bool:
    report = json.loads(observe("check", "--json", check=False).stdout)
    return any(s["id"] == step and s["passed"] for s in report["steps"])


def canary() -> dict[str, Any]:
    return dict(json.loads(observe("canary", "status", "--window", "60s", "--json").stdout))


# 1-2. A candidate trained on recent labelled traffic, evaluated against the champion (the canary's gate wants a go).
candidate = wait("a candidate whose evaluation says go", evaluated, timeout=600)

# 3. Out to 10 % of the traffic; `lab check` moves the lab on once it served enough.
lab("canary", "start", candidate, "--weight", "0.1")
wait("the canary to answer 60 requests", lambda: step_passes("traffic"))
print("the canary answers live traffic:", json.dumps(canary()["challenger"]))


# 4. The announcement says the canary slot got a new build: watch that build against the champion.
def worse() -> dict[str, Any] | None:
    report = canary()
    rebuilt = (report["challenger"] or {}).get("version") not in (None, candidate)
    drop = report["accuracy_drop"]
    return report if rebuilt and drop is not None and drop > 0.1 else None


report = wait("the canary to fall behind the champion on labelled rows", worse)
challenger, champion = report["challenger"], report["champion"]
print(f"challenger version {challenger['version']}: accuracy {challenger['accuracy']:.3f} "
      f"against the champion's {champion['accuracy']:.3f}")  # fmt: skip
lab("declare", "bad-model", "--note", f"canary version {challenger['version']} is less accurate than the champion")

# 5. Stop the canary: the champion takes all the traffic again.
print(lab("canary", "abort").stdout.strip())
