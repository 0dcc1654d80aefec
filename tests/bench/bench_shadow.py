"""Shadow traffic benchmark: what mirroring to @staging costs the champion's callers, on a real sandbox.

The client sends /predict at a fixed rate (open loop: each request leaves on its tick, whatever the earlier ones do)
beside the pipeline's production traffic at its default rate, and measures each answer's latency. Three conditions,
interleaved in rounds (so a busy moment of the machine falls on all of them): shadowing off; on at share 1.0 with a
normal staging version; on at share 1.0 with a slow one (every call sleeps `--slow-ms`: the shadow's queue fills and
the rest is dropped). Target: the champion's p99 with shadowing on within 10 % of off. Results:
bench-results/shadow.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lab_runtime.canary.judge import percentile
from lab_runtime.journal import Journal
from lab_runtime.modeling.columns import FEATURES
from lab_runtime.modeling.data import DataGenerator
from lab_runtime.modeling.model import Regression, train_and_register
from lab_runtime.predlog import PredictionLog
from lab_runtime.registry import model_ops
from lab_runtime.registry.rest import STAGING
from lab_runtime.settings import Settings
from tests.sandbox import REAL_CLOCK, running_sandbox

RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "shadow.json"
TARGET_RATIO = 1.10
PIPELINE_RATE = "20"  # the pipeline's default: production traffic beside the measured requests (mirrored too)
CONDITIONS = ("off", "on", "on-slow")
SETTLE_S = 2.0  # after the service reports a condition, before measuring: the staging version loaded and warm


def served_shadow(settings: Settings) -> dict[str, Any]:
    return dict(httpx.get(f"{settings.service_url}/model", timeout=5).json()["shadow"])


def apply(settings: Settings, journal: Journal, condition: str, versions: dict[str, str]) -> None:
    """Put `condition` in force (through `model_ops`, as `lab shadow start|stop` does); wait until the service has."""
    if condition == "off":
        if served_shadow(settings)["share"] > 0:
            model_ops.stop_shadow(settings, journal)
        want = None
    else:
        want = versions[condition]
        model_ops.set_alias(settings, STAGING, want)
        model_ops.start_shadow(settings, journal, want, 1.0)
    deadline = time.monotonic() + 60
    while served_shadow(settings)["staging"] != want:
        if time.monotonic() > deadline:
            raise SystemExit(f"the service did not take up condition {condition} within 60 s")
        time.sleep(0.1)
    time.sleep(SETTLE_S)


async def measure(url: str, rows: list[dict[str, Any]], rate: float, seconds: float, tag: str) -> dict[str, Any]:
    """`rate` requests a second for `seconds`, each sent on its tick; the latency of each answer, in ms."""
    latencies: list[float] = []
    errors = 0

    async def one(client: httpx.AsyncClient, i: int) -> None:
        nonlocal errors
        body = {"request_id": f"{tag}-{i}", "features": rows[i % len(rows)]}
        started = time.perf_counter()
        try:
            answer = await client.post("/predict", json=body)
            ok = answer.status_code == 200
        except httpx.HTTPError:
            ok = False
        if ok:
            latencies.append((time.perf_counter() - started) * 1000)
        else:
            errors += 1

    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits, trust_env=False) as client:
        began, tasks = time.perf_counter(), []
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, began + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(client, i)))
        await asyncio.gather(*tasks)
    return {"latencies": latencies, "errors": errors}


def shadow_outcomes(settings: Settings, since: float, until: float) -> dict[str, int]:
    """What became of the records mirrored while a condition was measured, as logged by its end (the pipeline's
    records too; a slow version's answers still under way are not there yet)."""
    log = PredictionLog(settings.prediction_log_path)
    try:
        rows = log.shadow(since, until)
    finally:
        log.close()
    return {str(k): int(v) for k, v in rows["outcome"].value_counts().items()}


def summary(latencies: list[float]) -> dict[str, float | None]:
    values = np.asarray(latencies)
    return {f"p{q}_ms": percentile(values, q) for q in (50, 90, 99)} | {"max_ms": float(values.max())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="measured requests a second (default 20)")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds per condition and round (default 30)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of the three conditions (default 4)")
    parser.add_argument("--slow-ms", type=float, default=10_000.0, help="the slow version's sleep per call")
    args = parser.parse_args()

    rows: list[dict[str, Any]] = json.loads(
        DataGenerator(5).production(0, 2000)[list(FEATURES)].to_json(orient="records")
    )
    env = {**REAL_CLOCK, "LAB_PIPELINE_RATE": PIPELINE_RATE}
    measured: dict[str, dict[str, Any]] = {
        c: {"latencies": [], "errors": 0, "outcomes": {}, "rounds_p99_ms": []} for c in CONDITIONS
    }
    with tempfile.TemporaryDirectory() as scratch, running_sandbox(Path(scratch) / "state", env, 1) as box:
        settings = box.settings
        print(f"training a normal and a slow ({args.slow_ms:g} ms a call) staging version ...")
        versions = {
            "on": train_and_register(settings.mlflow_url, settings.model_name, C=0.5).version,
            "on-slow": train_and_register(
                settings.mlflow_url, settings.model_name, regression=Regression(slow_predict_ms=args.slow_ms)
            ).version,
        }
        journal = Journal(settings.journal_path, source="bench")
        asyncio.run(measure(settings.service_url, rows, args.rate, 3.0, "warmup"))
        for r in range(args.rounds):
            for condition in CONDITIONS[r % 3 :] + CONDITIONS[: r % 3]:  # each round in another order
                apply(settings, journal, condition, versions)
                since = time.time()
                got = asyncio.run(measure(settings.service_url, rows, args.rate, args.seconds, f"{condition}-{r}"))
                outcomes = shadow_outcomes(settings, since, time.time())
                m = measured[condition]
                m["latencies"] += got["latencies"]
                m["errors"] += got["errors"]
                for k, v in outcomes.items():
                    m["outcomes"][k] = m["outcomes"].get(k, 0) + v
                p50, p99 = (percentile(np.asarray(got["latencies"]), q) for q in (50, 99))
                m["rounds_p99_ms"].append(p99)
                print(f"  round {r + 1} {condition:<8} p50 {p50:.1f} ms, p99 {p99:.1f} ms, shadow {outcomes}")
        final = served_shadow(settings)
    results = {
        c: {
            "requests": len(m["latencies"]) + m["errors"],
            "errors": m["errors"],
            **summary(m["latencies"]),
            "shadow_outcomes": m["outcomes"],
            "rounds_p99_ms": m["rounds_p99_ms"],
        }
        for c, m in measured.items()
    }
    off = results["off"]["p99_ms"]
    assert off is not None
    ratios = {c: round((results[c]["p99_ms"] or 0.0) / off, 3) for c in ("on", "on-slow")}
    met = all(r <= TARGET_RATIO for r in ratios.values())
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpu_count": os.cpu_count(),
        "rate_per_s": args.rate,
        "pipeline_rate_per_s": float(PIPELINE_RATE),
        "seconds_per_condition_and_round": args.seconds,
        "rounds": args.rounds,
        "share": 1.0,
        "slow_ms": args.slow_ms,
        "results": results,
        "service_shadow_at_end": final,
        "p99_ratio_on_off": ratios["on"],
        "p99_ratio_on_slow_off": ratios["on-slow"],
        "target": {"p99_ratio": TARGET_RATIO, "met": met},
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{'condition':<10}{'requests':>10}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}  shadow outcomes")
    for c, res in results.items():
        print(f"{c:<10}{res['requests']:>10}{res['p50_ms']:>9.1f}{res['p90_ms']:>9.1f}{res['p99_ms']:>9.1f}"
              f"{res['max_ms']:>9.1f}  {res['shadow_outcomes']}")  # fmt: skip
    print(f"p99(on)/p99(off) = {ratios['on']:.3f}; p99(on, slow staging)/p99(off) = {ratios['on-slow']:.3f}; "
          f"goal <= {TARGET_RATIO}: {'MET' if met else 'MISSED'}")  # fmt: skip
    print(f"results written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
