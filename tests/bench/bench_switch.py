"""Model switch benchmark: from a flag change (`lab feature disable|enable`, the flag file written whole) to the
first /predict answer that follows it, on a real sandbox, `--changes` times alternately. Target: within 1 s.
Results: bench-results/switch.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lab_runtime.modeling.columns import FEATURES
from lab_runtime.modeling.data import DataGenerator
from lab_runtime.service.switch import throttled, write_switch
from tests.sandbox import REAL_CLOCK, running_sandbox

RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "switch.json"
TARGET_S = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=30)
    args = parser.parse_args()
    record = json.loads(DataGenerator(7).production(0, 1)[list(FEATURES)].to_json(orient="records"))[0]
    delays: list[float] = []
    rng = random.Random(11)
    with tempfile.TemporaryDirectory() as scratch, running_sandbox(Path(scratch) / "state", REAL_CLOCK, 1) as box:
        settings = box.settings
        with httpx.Client(base_url=settings.service_url, timeout=5.0) as client:

            def decided_by(n: int) -> str:
                body = {"request_id": f"bench-{n}", "features": record}
                return str(client.post("/predict", json=body).json().get("decided_by", ""))  # "": not ready

            n = 0
            while decided_by(n) != "model":  # the champion loaded
                time.sleep(0.2)
            for change in range(args.changes):
                want = "fallback" if change % 2 == 0 else "model"
                time.sleep(rng.uniform(0.3, 0.8))  # at a random phase of the service's and flagd's polls
                written = time.perf_counter()
                write_switch(settings.flags_path, throttled(0.0 if want == "fallback" else 1.0))
                while decided_by(n := n + 1) != want:
                    if time.perf_counter() - written > 10:
                        raise SystemExit(f"change {change}: no {want} answer within 10 s")
                delays.append(time.perf_counter() - written)
    ordered = sorted(delays)
    result = {
        "changes": len(delays),
        "median_s": round(statistics.median(delays), 3),
        "p95_s": round(ordered[max(0, round(0.95 * len(ordered)) - 1)], 3),
        "max_s": round(max(delays), 3),
        "target_s": TARGET_S,
        "met": ordered[max(0, round(0.95 * len(ordered)) - 1)] <= TARGET_S,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
