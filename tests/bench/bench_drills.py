"""Drill benchmarks on a real sandbox (free ports, default rates except a 5 s monitor window):

- visibility: for each fault type that changes the service's behaviour, the time from `inject()` returning to
  the first request that shows it, counted from when that request was sent (a slow answer, a 5xx, the new
  version, a refused connection, a 422 from a broken release, the registry not answering). Target: 500 ms.
- overhead: `lab drill run` (a new process, the steady-state gate on a healthy sandbox, the plan) until the
  fault is in place, measured from the command's start to the `fault.injected` event. Target: at most 2 s.
Results: bench-results/drills.json.
"""

from __future__ import annotations

import argparse
import json
import random
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

from drills.faults import FAULTS, FaultContext
from lab_runtime import events as kinds
from lab_runtime.journal import Journal
from lab_runtime.modeling.columns import FEATURES
from lab_runtime.modeling.data import DataGenerator
from lab_runtime.predlog import PredictionLog
from tests.sandbox import REAL_CLOCK, Sandbox, running_sandbox

RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "drills.json"
VISIBLE_TARGET_S, OVERHEAD_TARGET_S = 0.5, 2.0
ENV = {**REAL_CLOCK, "LAB_PIPELINE_RATE": "20", "LAB_LABEL_DELAY": "10", "LAB_MONITOR_WINDOW": "5"}
ROW = {
    k: (v.item() if hasattr(v, "item") else v)
    for k, v in DataGenerator(3).production(0, 1)[list(FEATURES)].iloc[0].items()
}


def predict(box: Sandbox) -> tuple[int | None, float, str | None]:
    """Status (None: refused), seconds, and the version that answered, of one /predict."""
    started = time.perf_counter()
    try:
        answer = httpx.post(f"{box.settings.service_url}/predict", json={"features": ROW}, timeout=10)
    except httpx.HTTPError:
        return None, time.perf_counter() - started, None
    version = answer.json().get("model_version") if answer.status_code == 200 else None
    return answer.status_code, time.perf_counter() - started, version


def until(check: Callable[[], bool], timeout: float = 10.0) -> float:
    """Seconds from now to the start of the first `check()` that is true: a slow request that shows the fault
    counts from when it was sent, not from when its (deliberately slow) answer came back."""
    started = time.perf_counter()
    while True:
        sent = time.perf_counter()
        if check():
            return sent - started
        if sent - started > timeout:
            return float("inf")
        time.sleep(0.005)


def requests_since(box: Sandbox, since: float, status: int) -> bool:
    frame = PredictionLog(box.settings.prediction_log_path).requests(since)
    return bool((frame["status"] == status).any())


def mlflow_down(box: Sandbox) -> bool:
    try:
        return httpx.get(f"{box.settings.mlflow_url}/health", timeout=0.2).status_code != 200
    except httpx.HTTPError:
        return True


VISIBLE: dict[str, tuple[dict[str, Any], Callable[[Sandbox, dict[str, Any]], bool]]] = {
    "latency": ({"latency_ms": 300}, lambda box, d: predict(box)[1] >= 0.3),
    "errors": ({"status": 500}, lambda box, d: predict(box)[0] == 500),
    "bad_model": ({"alias": "champion"}, lambda box, d: predict(box)[2] == d["version"]),
    "schema_skew": ({"change": "rename", "feature": "age"}, lambda box, d: requests_since(box, d["t"], 422)),
    "dependency_outage": ({"mode": "pause"}, lambda box, d: mlflow_down(box)),
    "service_crash": ({"service": "model-service"}, lambda box, d: predict(box)[0] is None),
}


def visibility(box: Sandbox, fault_type: str, runs: int) -> list[float]:
    args, visible = VISIBLE[fault_type]
    fault = FAULTS[fault_type](FAULTS[fault_type].params.model_validate(args))
    journal = Journal(box.settings.journal_path, source="bench")
    out = []
    for i in range(runs):
        ctx = FaultContext(
            box.settings, box.backend, journal, random.Random(i), "bench", f"bench-{fault_type}-{i}", time.time() + 600
        )
        plan = fault.plan(ctx)
        details = fault.inject(ctx, plan)
        seen = {**details, "t": time.time() - 0.001}
        seconds = until(lambda seen=seen: visible(box, seen))  # type: ignore[misc]
        out.append(seconds)
        fault.revert(ctx, plan)
        until(lambda: predict(box)[0] == 200 and predict(box)[1] < 0.25, 60)
    journal.close()
    return out


def overhead(box: Sandbox, runs: int) -> list[float]:
    """`lab drill run incident-error-burst` from the command's start to its fault.injected event."""
    out = []
    journal = Journal(box.settings.journal_path, source="bench")
    for _ in range(runs):
        last = journal.events()[-1].id
        started = time.time()
        proc = subprocess.Popen(
            [sys.executable, "-m", "lab_runtime.cli", "drill", "run", "incident-error-burst", "--seed", "1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        until(lambda last=last: bool(journal.events([kinds.FAULT_INJECTED], after_id=last)), 60)  # type: ignore[misc]
        out.append(journal.events([kinds.FAULT_INJECTED], after_id=last)[0].ts - started)
        subprocess.run([sys.executable, "-m", "lab_runtime.cli", "drill", "abort"], capture_output=True, check=True)
        proc.wait(120)
    journal.close()
    return out


def summary(times: list[float]) -> dict[str, Any]:
    return {"runs_s": times, "median_s": statistics.median(times), "max_s": max(times)}


def line(row: dict[str, Any], target: float, unit_scale: float, unit: str) -> str:
    verdict = "met" if row["max_s"] <= target else "MISSED"
    runs = ", ".join(f"{r * unit_scale:.2f}" for r in row["runs_s"])
    median, most = row["median_s"] * unit_scale, row["max_s"] * unit_scale
    return f"median {median:.2f} {unit}  max {most:.2f} {unit}  runs {runs}  [{verdict}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    results: dict[str, Any] = {"visibility": {}, "overhead": {}}
    with running_sandbox(Path(tempfile.mkdtemp(prefix="lab-bench-drills-")) / "state", ENV, versions=1) as box:
        until(lambda: predict(box)[0] == 200, 60)
        for fault_type in VISIBLE:
            times = visibility(box, fault_type, runs)
            results["visibility"][fault_type] = {
                "runs_s": times,
                "median_s": statistics.median(times),
                "max_s": max(times),
            }
        times = overhead(box, runs)
        results["overhead"] = {"runs_s": times, "median_s": statistics.median(times), "max_s": max(times)}
    print(f"fault visible in the service after inject() returns (target <= {VISIBLE_TARGET_S * 1000:.0f} ms)")
    for fault_type, row in results["visibility"].items():
        print(f"  {fault_type:<18} {line(row, VISIBLE_TARGET_S, 1000, 'ms')}")
    print(f"lab drill run until the fault is in place (target <= {OVERHEAD_TARGET_S:.0f} s)")
    print(f"  {line(results['overhead'], OVERHEAD_TARGET_S, 1, 's')}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
