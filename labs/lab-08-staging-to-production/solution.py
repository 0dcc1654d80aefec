"""Reference solution of lab 08, run by `lab solve lab-08` in your workspace with your sandbox's settings.

It takes each build along the path and reads the evidence each stage gives, never the lab's files: a build whose
shadow answers far slower than the champion on the same requests is stopped there; the other goes on to the canary
and, once the canary's figures earn it, to production.
"""

from __future__ import annotations

import json
from typing import Any

from lab_runtime.labs.scripting import lab, wait

SLOW = 2.0  # a shadow p99 this many times the champion's (and over 50 ms) is too slow to serve


def build(letter: str) -> str:
    """The version whose description names build `letter`."""
    versions = json.loads(lab("model", "list", "--json").stdout)
    return str(next(v["version"] for v in versions if f"build {letter}" in v["description"]))


def passed(step: str) -> bool:
    report = json.loads(lab("check", "--json", check=False).stdout)
    return any(s["id"] == step and s["passed"] for s in report["steps"])


def shadow() -> dict[str, Any]:
    return dict(json.loads(lab("shadow", "status", "--window", "5m", "--windows", "1", "--json").stdout))


def shadowed(version: str, step: str) -> dict[str, Any]:
    """Stage, evaluate and shadow `version` until `step` has its rows; then the shadow's figures, and stop it."""
    lab("model", "stage", version)
    evaluated = json.loads(lab("eval", "run", version, "--json").stdout)
    print(f"version {version} evaluated against the champion: {evaluated['verdict']}")
    lab("shadow", "start", version, "--share", "0.5")
    wait(f"the shadow of version {version} to see 100 requests", lambda: passed_rows(step))
    figures = shadow()
    lab("shadow", "stop")
    return figures


def passed_rows(step: str) -> bool:
    report = json.loads(lab("check", "--json", check=False).stdout)
    detail = next(s["detail"] for s in report["steps"] if s["id"] == step)
    return "needed" not in detail  # "... saw N request(s), 100 needed" until there are enough


def too_slow(figures: dict[str, Any]) -> bool:
    window = figures["windows"][0]
    shadow_p99, champion_p99 = window["shadow"]["latency_p99_ms"], window["champion"]["latency_p99_ms"]
    print(f"shadow p99 {shadow_p99:.0f} ms against the champion's {champion_p99:.0f} ms on the same requests")
    return bool(shadow_p99 > 50 and shadow_p99 > SLOW * champion_p99)


# 1-3. Build A: staged, evaluated (a go: its answers are the champion's), shadowed: far slower. It stops here.
a = build("A")
assert too_slow(shadowed(a, "shadow-a")), "build A was expected to be slow in the shadow"
print(f"build A (version {a}) stays out of production: its shadow is too slow for the latency objective")

# 4. Build B along the same path: as fast as the champion.
b = build("B")
assert not too_slow(shadowed(b, "shadow-b")), "build B was expected to keep up"

# 5. The canary, through the evaluation gate; production once the canary's own figures earn it.
lab("canary", "start", b, "--weight", "0.5")


def promoted() -> bool:
    return lab("canary", "promote", check=False).returncode == 0  # refused (one line) until the gate's evidence is in


wait("the canary analysis to pass the production gate", promoted)
print(lab("model", "history", "--version", b).stdout)
