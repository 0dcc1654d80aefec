"""Grading accuracy on a real sandbox under load: the accuracy scenario (`tests/grader/accuracy.py`: an automated
learner acting through the `lab` CLI at known times on four drills, a wrong guess first on one, no fix on the last)
played `--rounds` times with a process burning each core. For every drill and mark (TTD, TTM, TTR): the graded
figure minus when the learner's command started. Target: within 100 ms. Also recorded: `time_to_recovery` (the
verified span's start, what TTR meant before) beside TTR.
Results: bench-results/grading.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.grader.accuracy import ACCURACY, ENV, accuracy_table, burning_cores, errors_ms, play_accuracy_scenario
from tests.sandbox import running_sandbox

RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "grading.json"


def summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 1), "max_abs": round(max(map(abs, values)), 1), "n": len(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    errors: dict[str, list[float]] = {}
    recovery: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch, running_sandbox(Path(scratch) / "state", ENV, versions=1) as box:
        for n in range(args.rounds):
            with burning_cores():
                plays = play_accuracy_scenario(box.settings, Path(scratch))
            print(f"round {n + 1}\n{accuracy_table(plays)}\n", flush=True)
            for p in plays:
                for mark, error in errors_ms(p).items():
                    if error is not None:
                        errors.setdefault(f"{p.grade.drill} {mark}", []).append(error)
                if p.grade.time_to_recovery is not None and p.grade.ttr is not None:
                    recovery.setdefault(p.grade.drill, []).append(p.grade.time_to_recovery - p.grade.ttr)
    worst = max(abs(e) for values in errors.values() for e in values)
    result: dict[str, Any] = {
        "rounds": args.rounds,
        "target_ms": ACCURACY * 1000,
        "max_abs_error_ms": round(worst, 1),
        "met": worst <= ACCURACY * 1000,
        "error_ms": {k: summary(v) for k, v in sorted(errors.items())},
        "recovery_after_fix_s": {k: round(statistics.median(v), 2) for k, v in sorted(recovery.items())},
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
