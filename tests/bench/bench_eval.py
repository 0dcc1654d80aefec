"""Benchmark: `lab eval run VERSION` on the default test set (credit-v1, 2,000 rows) against @champion, as a learner
runs it: a `lab` process of its own (imports included), timed from outside, on a running sandbox (REAL_CLOCK: the
pipeline's traffic, the monitor and the watcher share the cores). The candidate has a slice regression, so the
run flags a slice, builds a review queue and writes the report, as in lab 07.
Results: bench-results/eval.json.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lab_runtime.modeling.model import train_and_register
from lab_runtime.modeling.regression import Regression
from tests.cli import lab_process
from tests.sandbox import REAL_CLOCK, running_sandbox

RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "eval.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    times: list[float] = []
    with running_sandbox(Path(tempfile.mkdtemp(prefix="lab-bench-eval-")) / "state", REAL_CLOCK, versions=1) as box:
        settings = box.settings
        candidate = train_and_register(
            settings.mlflow_url, settings.model_name, regression=Regression(repaid_in={"purpose": ["education"]})
        )
        for _ in range(args.runs):
            started = time.perf_counter()
            result = lab_process("eval", "run", candidate.version, "--json")
            times.append(time.perf_counter() - started)
            if result.returncode != 0:
                raise SystemExit(f"lab eval run failed: {result.stderr.strip()}")
        body = json.loads(result.stdout)
    ordered = sorted(times)
    results = {
        "command": f"lab eval run {candidate.version} --json",
        "test_set": body["test_set"],
        "rows": body["rows"],
        "slices": len(body["slices"]),
        "verdict": body["verdict"],
        "runs": len(times),
        "median_s": round(statistics.median(times), 3),
        "p90_s": round(ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)], 3),  # nearest rank
        "max_s": round(max(times), 3),
        "min_s": round(min(times), 3),
    }
    print(
        f"lab eval run on {results['test_set']} ({results['rows']} rows, {results['slices']} slices): median "
        f"{results['median_s']:.2f}s  p90 {results['p90_s']:.2f}s  max {results['max_s']:.2f}s ({len(times)} runs)"
    )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
