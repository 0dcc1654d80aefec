"""Benchmark: `lab up` until every service is healthy, on a fresh state directory and on a warm one."""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sandbox_env(state: Path) -> dict[str, str]:
    """The environment of a private sandbox: its own state dir and free ports."""
    return {
        **os.environ,
        "LAB_STATE_DIR": str(state),
        "LAB_MLFLOW_PORT": str(free_port()),
        "LAB_SERVICE_PORT": str(free_port()),
        "LAB_MONITOR_PORT": str(free_port()),
    }


def lab(env: dict[str, str], *args: str) -> float:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "lab_runtime.cli", *args], env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"lab {' '.join(args)} failed: {result.stderr.strip()}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    results: dict[str, list[float]] = {"fresh": [], "warm": []}
    for _ in range(runs):
        env = sandbox_env(Path(tempfile.mkdtemp(prefix="lab-bench-")))
        for kind in ("fresh", "warm"):  # warm: the same state directory, databases already migrated
            try:
                results[kind].append(lab(env, "up"))
            finally:
                lab(env, "down")
    summary = {k: {"runs": v, "median_s": statistics.median(v), "max_s": max(v)} for k, v in results.items()}
    print(f"lab up to every service healthy ({os.cpu_count()} cores), target <= {TARGET_S:.0f} s")
    for kind, row in summary.items():
        verdict = "met" if row["max_s"] <= TARGET_S else "MISSED"
        print(
            f"  {kind:<6} median {row['median_s']:.2f} s  max {row['max_s']:.2f} s  "
            f"runs {', '.join(f'{r:.2f}' for r in row['runs'])}  [{verdict}]"
        )
    Path("bench-results").mkdir(exist_ok=True)
    Path("bench-results/startup.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
