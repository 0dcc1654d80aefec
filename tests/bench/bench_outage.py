"""Outage benchmarks on a real sandbox with the monitor's defaults (an evaluation every 5 s over 60 s, 20 req/s):

- service-down: kill -9 of the model service until the monitor's `service-down` alert fires (its `alert.firing`
  event), and from the restarted service answering `/health` until it resolves. Target: its `for` (10 s) plus
  one evaluation interval.
  Each kill comes at a seeded offset from the monitor's evaluations.
- reset: after kill -9 of a drill runner mid-drill (`incident-latency-spike`, its fault in place), how long
  `lab reset` takes from its start until it returns, and whether it found the steady state.
Results: bench-results/outage.json and a line per figure on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from drills.control import status as drill_status
from lab_runtime import events as kinds
from lab_runtime.events import ALERT_FIRING, ALERT_RESOLVED
from lab_runtime.journal import Journal
from lab_runtime.monitor.rules import BUILTIN_RULES, load_rules
from tests.sandbox import REAL_CLOCK, Sandbox, running_sandbox

RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "outage.json"
ENV = {
    **REAL_CLOCK,
    "LAB_PIPELINE_RATE": "20",
    "LAB_MONITOR_INTERVAL": "5",
    "LAB_MONITOR_WINDOW": "60",
    "LAB_LABEL_DELAY": "10",
}
RULE = next(r for r in load_rules(BUILTIN_RULES) if r.name == "service-down")
LAB = [sys.executable, "-m", "lab_runtime.cli"]


def poll(check: Callable[..., Any], timeout: float, what: str, *args: Any) -> Any:
    """The first true `check(*args)`, polled every 0.1 s; exits naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check(*args):
            return found
        time.sleep(0.1)
    raise SystemExit(f"{what}: not within {timeout:.0f}s")


def first_event(box: Sandbox, kind: str, since: float, rule: str | None = None) -> float | None:
    """The time of the first `kind` event (of alert `rule`, if given) at or after `since`."""
    journal = Journal(box.settings.journal_path, source="bench")
    try:
        events = journal.events([kind])
    finally:
        journal.close()
    return min((e.ts for e in events if e.ts >= since and rule in (None, e.payload.get("rule"))), default=None)


def healthy(box: Sandbox) -> bool:
    try:
        return httpx.get(f"{box.settings.service_url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def service_down(box: Sandbox, rounds: int, seed: int) -> dict[str, list[float]]:
    fired, resolved = [], []
    offsets = random.Random(seed)
    for _ in range(rounds):
        time.sleep(offsets.uniform(0, box.settings.monitor_interval))  # not always just after an evaluation
        killed = time.time()
        box.backend.kill("model-service")
        at = poll(first_event, 120, "service-down firing", box, ALERT_FIRING, killed, RULE.name)
        fired.append(at - killed)
        box.backend.ensure_running("model-service")
        poll(healthy, 60, "the model service back", box)
        back = time.time()
        at = poll(first_event, 120, "service-down resolved", box, ALERT_RESOLVED, killed, RULE.name)
        resolved.append(at - back)  # may be a little below 0: the monitor can see it back before this poll
    return {"fired_s": fired, "resolved_s": resolved}


def reset_after_runner_kill(box: Sandbox, rounds: int) -> list[dict[str, Any]]:
    runs = []
    for _ in range(rounds):
        started = time.time()
        subprocess.run([*LAB, "drill", "run", "incident-latency-spike", "--detach"], check=True, capture_output=True)
        poll(first_event, 120, "the fault injected", box, kinds.FAULT_INJECTED, started)
        found = drill_status(box.settings)
        assert found is not None and found.run.pid is not None
        os.kill(found.run.pid, signal.SIGKILL)
        began = time.monotonic()
        done = subprocess.run([*LAB, "reset"], capture_output=True, text=True, check=False)
        took = time.monotonic() - began
        runs.append({"reset_s": took, "exit": done.returncode, "steady": "steady state holds" in done.stdout})
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rounds = args.rounds
    with running_sandbox(Path(tempfile.mkdtemp(prefix="lab-bench-outage-")) / "state", ENV, versions=1) as box:
        poll(lambda: httpx.get(f"{box.settings.monitor_url}/status").json().get("state") == "ok", 240, "a verdict")
        down = service_down(box, rounds, args.seed)
        resets = reset_after_runner_kill(box, 3)
    target = RULE.for_ + box.settings.monitor_interval
    results = {"service_down": down, "target_s": target, "reset": resets}
    fired = down["fired_s"]
    verdict = "met" if max(fired) <= target else "MISSED"
    print(f"kill -9 of the model service -> service-down firing (target <= {target:g} s)")
    print(f"  median {statistics.median(fired):.1f} s  max {max(fired):.1f} s  runs {fired}  [{verdict}]")
    print(f"service back -> service-down resolved: runs {[round(r, 1) for r in down['resolved_s']]} s")
    print("kill -9 of a drill runner -> `lab reset` returns")
    for run in resets:
        print(f"  {run['reset_s']:.1f} s, exit {run['exit']}, steady state {'held' if run['steady'] else 'NOT held'}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
