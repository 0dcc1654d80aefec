"""Benchmark: `lab up --runtime compose` until every service is healthy, with the images built (fresh named volumes,
and again on the same ones), how long a cold build of the app image takes (`--cold`), and the images' sizes."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.bench.bench_startup import lab, sandbox_env

TARGET_S = 60.0


def image_mb(name: str) -> float | None:
    found = subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", name], capture_output=True, text=True)
    return round(int(found.stdout) / 1e6, 1) if found.returncode == 0 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="also time a build of the app image with no cache")
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="lab-bench-compose-"))
    env = sandbox_env(state)
    build_s = None
    try:
        lab(env, "up", "--runtime", "compose")  # builds what is missing: not timed
        lab(env, "down", "--volumes")
        if args.cold:
            from lab_runtime.backends.compose import ComposeBackend
            from lab_runtime.settings import Settings

            backend = ComposeBackend(Settings(state_dir=state, runtime="compose"))
            started = time.perf_counter()
            backend.compose("build", "--no-cache", "mlflow")
            build_s = time.perf_counter() - started
        results: dict[str, list[float]] = {"fresh volumes": [], "same volumes": []}
        for _ in range(args.runs):
            results["fresh volumes"].append(lab(env, "up", "--runtime", "compose"))
            lab(env, "down")
            results["same volumes"].append(lab(env, "up", "--runtime", "compose"))
            lab(env, "down", "--volumes")
    finally:
        subprocess.run([sys.executable, "-m", "lab_runtime.cli", "down", "--volumes"], env=env, capture_output=True)
    summary: dict[str, object] = {
        k: {"runs": v, "median_s": statistics.median(v), "max_s": max(v)} for k, v in results.items()
    }
    sizes = {name: image_mb(name) for name in ("lab-app:latest", "lab-base:bookworm", "lab-prometheus:latest")}
    print(f"lab up --runtime compose to every service healthy, images built ({os.cpu_count()} cores), target <= 60 s")
    for kind, row in results.items():
        verdict = "met" if max(row) <= TARGET_S else "MISSED"
        print(f"  {kind:<14} median {statistics.median(row):.1f} s  max {max(row):.1f} s  "
              f"runs {', '.join(f'{r:.1f}' for r in row)}  [{verdict}]")  # fmt: skip
    if build_s is not None:
        print(f"  cold build of the app image (no cache, from the base): {build_s:.0f} s")
    print("  image sizes (MB): " + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    Path("bench-results").mkdir(exist_ok=True)
    body = {"target_s": TARGET_S, "up": summary, "cold_build_s": build_s, "images_mb": sizes}
    Path("bench-results/compose.json").write_text(json.dumps(body, indent=2))


if __name__ == "__main__":
    main()
