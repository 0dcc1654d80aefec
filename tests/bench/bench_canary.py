"""Canary and alias benchmarks on a real sandbox (free ports, default pipeline rate; MLflow's webhooks push alias
moves to the service and the watcher, as by default: `LAB_REGISTRY_WEBHOOKS=false` measures the 0.5 s poll instead):

- weight: a canary weight change of a running canary (`model_ops.set_canary_weight`, what `lab canary set` calls),
  from the call's start until the service's GET /model reports the new share. Target: within 1 s.
- alias: @champion moved with a plain `MlflowClient`, from the call's start until a /predict is answered by the
  new version (the service loads it on the way). Target: within 2 s.
- history: the same moves, from the call's start until the registry watcher's `registry.alias_changed` event is
  in the journal (the alias history). Target: within 2 s.
Results: bench-results/canary.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mlflow import MlflowClient

from lab_runtime.events import ALIAS_CHANGED
from lab_runtime.journal import Journal
from lab_runtime.modeling.columns import FEATURES
from lab_runtime.modeling.data import DataGenerator
from lab_runtime.registry import model_ops
from lab_runtime.registry.rest import CHALLENGER, CHAMPION
from tests.sandbox import REAL_CLOCK, Sandbox, running_sandbox

RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "canary.json"
TARGETS = {"weight": 1.0, "alias": 2.0, "history": 2.0}
ENV = {**REAL_CLOCK, "LAB_PIPELINE_RATE": "20", "LAB_LABEL_DELAY": "10", "LAB_POLL_INTERVAL": "0.5"}
ROW = {
    k: (v.item() if hasattr(v, "item") else v)
    for k, v in DataGenerator(3).production(0, 1)[list(FEATURES)].iloc[0].items()
}


def until(checks: list[Callable[[], bool]], started: float, timeout: float = 30.0) -> list[float]:
    """Seconds from `started` (perf_counter) until each check first holds, all polled in the same loop."""
    times: list[float | None] = [None] * len(checks)
    while None in times:
        for i, check in enumerate(checks):
            if times[i] is None and check():
                times[i] = time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"not met within {timeout:.0f}s")
        time.sleep(0.01)
    return [t for t in times if t is not None]


def served(box: Sandbox) -> dict[str, Any]:
    return dict(httpx.get(f"{box.settings.service_url}/model", timeout=5).json())


def answered_by(box: Sandbox, version: str) -> bool:
    answer = httpx.post(f"{box.settings.service_url}/predict", json={"features": ROW}, timeout=5)
    return answer.status_code == 200 and answer.json()["model_version"] == version


def weight_changes(box: Sandbox, runs: int) -> list[float]:
    """Share changes of a running canary: the challenger is loaded first (a share applies to a served version)."""
    challenger = box.versions[1].version
    model_ops.set_alias(box.settings, CHALLENGER, challenger)
    until([lambda: served(box)["challenger"] == challenger], time.perf_counter())
    times = []
    for i in range(runs):
        weight = 0.6 if i % 2 == 0 else 0.1
        started = time.perf_counter()
        model_ops.set_canary_weight(box.settings, weight)
        times += until([lambda w=weight: served(box)["canary_weight"] == w], started)
    model_ops.set_canary_weight(box.settings, 0.0)
    model_ops.delete_alias(box.settings, CHALLENGER)
    return times


def alias_moves(box: Sandbox, runs: int) -> tuple[list[float], list[float]]:
    settings = box.settings
    client = MlflowClient(settings.mlflow_url, registry_uri=settings.mlflow_url)
    journal = Journal(settings.journal_path, source="bench")
    served_times, history_times = [], []
    for i in range(runs):
        version = box.versions[2 if i % 2 == 0 else 0].version
        seen = journal.events([ALIAS_CHANGED])[-1].id if journal.events([ALIAS_CHANGED]) else 0
        started = time.perf_counter()
        client.set_registered_model_alias(settings.model_name, CHAMPION, version)

        def journaled(v: str = version, after: int = seen) -> bool:
            return any(e.payload["after"] == v for e in journal.events([ALIAS_CHANGED], after_id=after))

        served_at, journaled_at = until([lambda v=version: answered_by(box, v), journaled], started)
        served_times.append(served_at)
        history_times.append(journaled_at)
    return served_times, history_times


def summary(times: list[float], target: float) -> dict[str, Any]:
    ordered = sorted(times)
    return {
        "runs": len(times),
        "median_s": round(statistics.median(times), 3),
        "p90_s": round(ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)], 3),  # nearest rank
        "max_s": round(max(times), 3),
        "target_s": target,
        "met": max(times) <= target,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with running_sandbox(Path(tempfile.mkdtemp(prefix="lab-bench-canary-")) / "state", ENV, versions=3) as box:
        weights = weight_changes(box, args.runs)
        aliases, history = alias_moves(box, args.runs)
    results = {
        "poll_interval_s": float(ENV["LAB_POLL_INTERVAL"]),
        "webhooks": os.environ.get("LAB_REGISTRY_WEBHOOKS", "true"),
        "weight": summary(weights, TARGETS["weight"]),
        "alias": summary(aliases, TARGETS["alias"]),
        "history": summary(history, TARGETS["history"]),
    }
    for name, row in results.items():
        if isinstance(row, dict):
            verdict = "met" if row["met"] else "MISSED"
            print(f"{name:8} median {row['median_s']:.3f}s  p90 {row['p90_s']:.3f}s  max {row['max_s']:.3f}s  "
                  f"(target {row['target_s']:g}s: {verdict}, {row['runs']} runs)")  # fmt: skip
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
