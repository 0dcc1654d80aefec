"""Reference solution of lab 02, run by `lab solve lab-02` in your workspace with your sandbox's settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from lab_runtime.labs.scripting import lab, observe, wait
from lab_runtime.settings import load_settings

settings = load_settings()


def status() -> dict[str, Any]:
    return dict(httpx.get(f"{settings.monitor_url}/status", timeout=5.0).json())


def firing(*rules: str) -> bool:
    """Whether any of `rules` is firing."""
    return any(a["rule"] in rules for a in json.loads(observe("alerts", "--json").stdout))


# 1-2. Read the report: the test per feature and the corrected threshold are in the monitor's status.
drift = wait("a drift verdict", lambda: status().get("drift"))
test = {f["name"]: f["test"] for f in drift["features"]}["credit_score"]
Path("answers.yaml").write_text(f"credit_score_test: {test}\nfeature_threshold: {drift['threshold']}\n")
print(f"credit_score is tested with {test}; a feature drifts below p={drift['threshold']:.3g}")

# 3. A prediction-drift rule that must hold for 15 s before it fires.
rule = Path("prediction-drift.yaml")
text = rule.read_text()
for field, value in {"signal": "prediction_drifted", "comparison": '">="', "threshold": "1", "for": "15s"}.items():
    text = text.replace(f"    {field}: TODO", f"    {field}: {value}")
rule.write_text(text)
lab("monitor", "add-rules", str(rule))
wait("the rule to load", lambda: any(r["name"] == "prediction-drift" for r in status()["rules"]), 30)

# 4. `lab check` moves the lab on: the incident starts once the steps before it pass.
print(lab("check", check=False).stdout.splitlines()[-1])
wait("the feature-drift alert", lambda: firing("feature-drift"))
print("feature-drift fired:", status()["details"].get("drifted_features"))
wait("your prediction-drift alert (it holds 15 s before it fires)", lambda: firing("prediction-drift"))
print("prediction-drift fired: the model's output moved with its input")

# 5-6. Declare, then roll the release back.
lab("declare", "data-drift", "--note", "credit_score shifted right after pipeline release v2 shipped")
print(lab("pipeline", "rollback").stdout.strip())

# 7. The alert resolves once the window holds clean traffic again.
wait("feature-drift to resolve", lambda: not firing("feature-drift", "feature-change"))
print("feature-drift resolved")
