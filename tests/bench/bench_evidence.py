"""Evidence benchmarks for 1,000 learners' signed bundles (3 to 8 drill runs each, a lab), the real `lab` command:

- `lab results xapi DIR --out FILE`: every bundle verified, its statements written;
- `lab results xapi DIR --lrs URL`: the same statements queued in a fresh outbox and sent to Ralph (a real LRS,
  filesystem backend, fresh each run), 50 per POST;
- `lab results gradebook DIR --out FILE` and `lab cohort report DIR --json --html --csv`;
- `lab skills --bundle FILE --role sre` for one learner.
Results: bench-results/evidence.json (no target: the issue asks for the figures).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.bench.bench_grader import KEY, LAB, timed, write_bundles
from tests.grader.lrs import PASSWORD, USER, running_ralph

RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "evidence.json"


def summary(values: list[float]) -> dict[str, Any]:
    return {"runs": len(values), "median_s": round(sorted(values)[len(values) // 2], 3), "max_s": round(max(values), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--bundles", type=int, default=1000)
    args = parser.parse_args()
    results: dict[str, Any] = {"bundles": args.bundles}
    with tempfile.TemporaryDirectory(prefix="lab-bench-evidence-") as tmp:
        root = Path(tmp)
        cohort = root / "cohort"
        cohort.mkdir()
        write_bundles(cohort, args.bundles)
        env = {**os.environ, "LAB_INSTRUCTOR_KEY": KEY, "LAB_LRS_USER": USER, "LAB_LRS_PASSWORD": PASSWORD}

        def lab(*argv: str, state: Path = root / "state") -> str:
            ran = subprocess.run([*LAB, *argv], env={**env, "LAB_STATE_DIR": str(state)}, capture_output=True,
                                 text=True, check=False)  # fmt: skip
            assert ran.returncode == 0, ran.stderr
            return ran.stdout

        out = root / "statements.json"
        results["xapi_out"] = summary(timed(lambda: lab("results", "xapi", str(cohort), "--out", str(out)), args.runs))
        results["xapi_out"]["statements"] = len(json.loads(out.read_text()))
        print("lab results xapi --out:", results["xapi_out"])

        sends = []
        for n in range(args.runs):
            with running_ralph(root / f"ralph-{n}") as ralph:
                started = time.perf_counter()
                said = lab("results", "xapi", str(cohort), "--lrs", ralph.url, state=root / f"state-{n}")
                sends.append(time.perf_counter() - started)
                held = len(ralph.statements())
            assert (
                f"sent {results['xapi_out']['statements']} statement(s)" in said
                and held == results["xapi_out"]["statements"]
            ), (said, held)
        results["xapi_lrs"] = summary(sends) | {"statements_per_s": round(held / min(sends))}
        print("lab results xapi --lrs (Ralph):", results["xapi_lrs"])

        grades = root / "grades.csv"
        results["gradebook"] = summary(
            timed(lambda: lab("results", "gradebook", str(cohort), "--out", str(grades)), args.runs)
        )
        print("lab results gradebook:", results["gradebook"])
        report = [
            "cohort",
            "report",
            str(cohort),
            "--json",
            "--html",
            str(root / "r.html"),
            "--csv",
            str(root / "r.csv"),
        ]
        results["cohort_report"] = summary(timed(lambda: lab(*report), args.runs))
        print("lab cohort report:", results["cohort_report"])
        one = sorted(cohort.glob("*.json"))[0]
        results["skills_one_bundle"] = summary(
            timed(lambda: lab("skills", "--bundle", str(one), "--role", "sre", "--json"), args.runs)
        )
        print("lab skills --bundle:", results["skills_one_bundle"])
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
