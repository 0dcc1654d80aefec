"""Grader benchmarks (no sandbox: generated data, real files, the real `lab` command):

- grade: a one-hour journal of 100,000 events (drill runs with their probes every 0.5 s, learners' declarations
  and actions, alias changes, lab checks, alerts), graded by `grader.grading.grade` in this process. Target: 1 s.
  Also timed: the same journal read from SQLite and graded (what `lab grade --json` does, CLI start-up included).
- cohort: 10,000 signed result bundles in a directory (3 to 8 drill runs each), `lab cohort report DIR --json
  --html --csv` end to end: every file read and its signature verified, the figures, the three renderings.
  Target: 5 s.
Results: bench-results/grader.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from grader.grading import grade
from grader.results import build_bundle, sign
from lab_runtime import events as kinds
from lab_runtime.journal import Event, Journal

RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "grader.json"
TARGETS = {"grade_100k_events": 1.0, "cohort_10k_bundles": 5.0}
KEY = "bench-instructor-key-0123456789abcdef"
DRILLS = [("drift-x", "data-drift"), ("latency-x", "latency"), ("errors-x", "errors"), ("bad-x", "bad-model"),
          ("schema-x", "schema-skew"), ("crash-x", "service-down"), ("feed-x", "feedback-outage")]  # fmt: skip
LAB = [sys.executable, "-m", "lab_runtime.cli"]


def one_hour_journal(total: int, seed: int = 1) -> list[Event]:
    """`total` events over about an hour: 16 learners, each running drills back to back, probed every 0.5 s."""
    rng = random.Random(seed)
    events: list[Event] = []
    t0 = 1_800_000_000.0

    def add(ts: float, kind: str, payload: dict[str, Any], learner: str, run: str | None = None) -> None:
        events.append(Event(len(events) + 1, ts, "drill" if run else "cli", kind, payload, learner, run))

    learners = [f"learner-{i:02d}" for i in range(16)]
    clock = {learner: t0 + rng.uniform(0, 60) for learner in learners}
    n = 0
    while len(events) < total:
        learner = min(clock, key=lambda k: clock[k])
        start = clock[learner]
        drill, diagnosis = rng.choice(DRILLS)
        run = f"run-{n}"
        n += 1
        add(start, kinds.DRILL_STARTED, {"drill": drill, "diagnosis": diagnosis, "time_limit": 600.0}, learner, run)
        injected = start + rng.uniform(2, 20)
        add(injected, kinds.FAULT_INJECTED, {"fault": 0, "type": "x", "details": {}}, learner, run)
        detect, fix = injected + rng.uniform(20, 200), injected + rng.uniform(60, 280)
        if rng.random() < 0.3:
            add(detect - 10, kinds.LEARNER_DECLARED, {"diagnosis": "latency"}, learner)
        add(detect, kinds.LEARNER_DECLARED, {"diagnosis": diagnosis}, learner)
        add(fix, kinds.LEARNER_ACTION, {"action": "model.rollback", "from": "2", "to": "1"}, learner)
        add(fix + 1, kinds.ALIAS_CHANGED, {"alias": "champion", "before": "2", "after": "1"}, learner)
        add(fix + 2, kinds.LAB_CHECK, {"lab": "lab-05", "passed": 2, "steps": [{}] * 4}, learner)
        end = fix + 35
        t = injected
        while t < end:
            add(t, kinds.PROBE_RESULT, {"steady": t > fix, "remediated": t > fix, "failing": [], "values": {}},
                learner, run)  # fmt: skip
            t += 0.5
        add(end, kinds.DRILL_REMEDIATED, {"span_start": fix + 2, "held": 30.0}, learner, run)
        add(end + 1, kinds.DRILL_ENDED, {"drill": drill, "outcome": "remediated"}, learner, run)
        clock[learner] = end + rng.uniform(5, 30)
    events = events[:total]
    events.sort(key=lambda e: e.ts)  # many writers: the journal holds them in commit order
    return [Event(i + 1, e.ts, e.source, e.kind, e.payload, e.learner, e.run_id) for i, e in enumerate(events)]


def write_journal(path: Path, events: list[Event]) -> None:
    Journal(path, source="bench").close()  # the schema
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO events (id, ts, learner, run_id, source, kind, payload) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(e.id, e.ts, e.learner, e.run_id, e.source, e.kind, json.dumps(e.payload)) for e in events],
        )


def write_bundles(directory: Path, count: int, seed: int = 2) -> None:
    rng = random.Random(seed)
    template = one_hour_journal(3000, seed)  # a few runs' events to grade into bundles, renamed per learner
    graded = [asdict(g) for g in grade(template)]
    base = build_bundle([], "x", 0.0)
    for i in range(count):
        runs = [
            {**rng.choice(graded), "learner": f"l{i:05d}", "run_id": f"l{i:05d}-{j}"} for j in range(rng.randint(3, 8))
        ]
        for r in runs:
            if r["ttd"] is not None:
                r["ttd"] = r["ttd"] * rng.uniform(0.5, 1.5)
        body = {**base, "learner": f"l{i:05d}", "exported_at": 1_800_000_000.0 + i, "runs": runs,
                "labs": [{"lab": "lab-01", "passed": 5, "total": 5, "completed": True}]}  # fmt: skip
        (directory / f"l{i:05d}.json").write_text(json.dumps(sign(body, KEY.encode())))


def timed(fn: Any, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def summary(values: list[float], target: float) -> dict[str, Any]:
    return {"runs": len(values), "median_s": round(statistics.median(values), 3), "max_s": round(max(values), 3),
            "target_s": target, "met": max(values) <= target}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--bundles", type=int, default=10_000)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="lab-bench-grader-") as tmp:
        root = Path(tmp)
        events = one_hour_journal(args.events)
        span = (events[-1].ts - events[0].ts) / 60
        graded = grade(events)
        print(f"journal: {len(events)} events over {span:.0f} min, {len(graded)} drill runs")
        results["grade_100k_events"] = summary(timed(lambda: grade(events), args.runs), TARGETS["grade_100k_events"])
        results["grade_100k_events"] |= {"events": len(events), "minutes": round(span), "drill_runs": len(graded)}
        state = root / "state"
        state.mkdir()
        write_journal(state / "journal.db", events)
        env = {**os.environ, "LAB_STATE_DIR": str(state), "LAB_INSTRUCTOR_KEY": KEY}

        def lab_grade() -> None:
            subprocess.run([*LAB, "grade", "--json"], env=env, check=True, capture_output=True)

        results["lab_grade_cli"] = summary(timed(lab_grade, args.runs), TARGETS["grade_100k_events"])
        print("grade:", results["grade_100k_events"], "\nlab grade --json:", results["lab_grade_cli"])

        bundles = root / "cohort"
        bundles.mkdir()
        started = time.perf_counter()
        write_bundles(bundles, args.bundles)
        print(f"{args.bundles} bundles written in {time.perf_counter() - started:.1f}s")

        def report() -> None:
            argv = [*LAB, "cohort", "report", str(bundles), "--json", "--html", str(root / "r.html"), "--csv",
                    str(root / "r.csv")]  # fmt: skip
            subprocess.run(argv, env=env, check=True, capture_output=True)

        results["cohort_10k_bundles"] = summary(timed(report, args.runs), TARGETS["cohort_10k_bundles"])
        results["cohort_10k_bundles"] |= {
            "bundles": args.bundles,
            "html_bytes": (root / "r.html").stat().st_size,
            "csv_rows": len((root / "r.csv").read_text().splitlines()) - 1,
        }
        print("cohort report:", results["cohort_10k_bundles"])
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
