"""Reference solution of lab 08, run by `lab solve lab-08` in your workspace with your sandbox's settings.

It takes each build along the path and reads the evidence each stage gives, never the lab's files: a build whose
shadow run says no-go (too slow, wrong, or failing on production requests) is stopped there; the other goes on to
the canary and, once the canary's figures earn it, to production.
"""

from __future__ import annotations

import json
from typing import Any

from lab_runtime.labs.scripting import lab, observe, wait


def build(letter: str) -> str:
    """The version whose description names build `letter`."""
    versions = json.loads(lab("model", "list", "--json").stdout)
    return str(next(v["version"] for v in versions if f"build {letter}" in v["description"]))


def compared(step: str) -> bool:
    """Whether `lab check` counts enough mirrored records for `step` ("... saw N request(s), 100 needed" until then)."""
    report = json.loads(observe("check", "--json", check=False).stdout)
    return "needed" not in next(s["detail"] for s in report["steps"] if s["id"] == step)


def shadowed(version: str, step: str) -> dict[str, Any]:
    """Stage, evaluate and shadow `version` until `step` has its records; stop it: the verdict of the whole run."""
    lab("model", "stage", version)
    evaluated = json.loads(lab("eval", "run", version, "--json").stdout)
    print(f"version {version} evaluated against the champion: {evaluated['verdict']}")
    lab("shadow", "start", version, "--share", "0.5")
    wait(f"the shadow of version {version} to see 100 requests", lambda: compared(step))
    window = json.loads(lab("shadow", "status", "--window", "5m", "--windows", "1", "--json").stdout)["total"]
    print(f"shadow p99 {window['shadow']['latency_p99_ms']:.0f} ms, the champion's "
          f"{window['champion']['latency_p99_ms']:.0f} ms on the same requests")  # fmt: skip
    stopped = dict(json.loads(lab("shadow", "stop", "--json").stdout))
    print(f"the shadow of version {version}: {stopped['verdict']} {stopped['reasons']}")
    return stopped


# 1-3. Build A: staged, evaluated (a go: its answers are the champion's), shadowed: too slow. It stops here.
a = build("A")
assert shadowed(a, "shadow-a")["verdict"] == "no-go", "build A was expected to fail its shadow run"
print(f"build A (version {a}) stays out of production: its shadow run says no-go")

# 4. Build B along the same path.
b = build("B")
assert shadowed(b, "shadow-b")["verdict"] == "go", "build B was expected to pass its shadow run"

# 5. The canary, through the evaluation gate; production once the canary's own figures earn it.
lab("canary", "start", b, "--weight", "0.5")


said: list[str] = []


def promoted() -> bool:
    """Refused, in one line that names what is missing, until the canary's own figures earn production."""
    tried = lab("canary", "promote", check=False)
    line = (tried.stdout or tried.stderr).strip().split(": ", 1)[-1].split(" (")[0]
    if not said or line != said[-1]:
        said.append(line)
        print(line)
    return tried.returncode == 0


wait("the canary's figures to pass the production gate", promoted)
print(lab("model", "history", "--version", b).stdout)
