"""Monitor benchmark: time of one evaluation of a 5,000-row window, and memory over an hour of traffic.

No services: a prediction log is filled with an hour of seeded traffic (features, outcomes, labels),
and the real `Monitor` evaluates it in simulated time with a model trained here as the served version.
- evaluation: `Monitor.evaluate_once` on the newest 5,000 rows (Evidently's import excluded; the report,
  rendered in its own thread in the service, is timed apart);
- memory: an evaluation every 5 s of simulated time across the hour, a report every 10th evaluation,
  resident memory sampled every 5 simulated minutes.
Results: bench-results/monitor.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
from sklearn.metrics import accuracy_score, f1_score

from lab_runtime.modeling.columns import FEATURES, LABEL
from lab_runtime.modeling.data import DataGenerator, split_features
from lab_runtime.modeling.model import build_pipeline
from lab_runtime.monitor import report
from lab_runtime.monitor.evaluate import Baseline
from lab_runtime.monitor.runner import Monitor
from lab_runtime.predlog import FeedbackRow, PredictionLogger, PredictionRow, RequestRow
from lab_runtime.settings import Settings

RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "monitor.json"
TARGET_SECONDS = 1.0


def fill(settings: Settings, start: float, seconds: float, rate: float) -> None:
    """`seconds` of traffic at `rate` rows/s from `start`, half of it labelled."""
    model = build_pipeline().fit(*split_features(DataGenerator(7).training()))
    logger = PredictionLogger(settings.prediction_log_path, maxsize=1_000_000, retention=10 * seconds)
    rows = int(seconds * rate)
    for first in range(0, rows, 5000):
        frame = DataGenerator(settings.seed).production(first, min(5000, rows - first))
        proba = model.predict_proba(frame[list(FEATURES)])[:, 1]
        ts = start + (first + np.arange(len(frame))) / rate
        records = json.loads(frame[list(FEATURES)].to_json(orient="records"))
        logger.log(
            [
                PredictionRow(t, rid, "1", "champion", int(p >= 0.5), float(p), 12.0, rec)
                for t, rid, p, rec in zip(ts, frame["request_id"], proba, records, strict=True)
            ]
            + [RequestRow(t, 200, "champion", 1, 12.0) for t in ts]
            + [
                FeedbackRow(t + 10, rid, int(y))
                for t, rid, y in zip(ts[::2], frame["request_id"][::2], frame[LABEL][::2], strict=True)
            ]
        )
        while logger.depth():
            time.sleep(0.05)
    logger.close(timeout=60)


def served_baseline(monitor: Monitor) -> None:
    model = build_pipeline().fit(*split_features(DataGenerator(7).training()))
    reference = monitor.reference
    proba = model.predict_proba(reference[list(FEATURES)])[:, 1]
    predictions = (proba >= 0.5).astype(int)
    monitor.baselines.cache["1"] = Baseline(
        "1", proba, float(accuracy_score(reference[LABEL], predictions)), float(f1_score(reference[LABEL], predictions))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=60.0, help="simulated traffic for the memory run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        now = time.time()
        hour = args.minutes * 60
        # 5,000-row windows: 100 rows/s over a 60 s window holds 6,000 rows; the monitor reads the newest 5,000.
        settings = Settings(state_dir=Path(tmp), monitor_window=60, monitor_max_rows=5000, pipeline_rate=100)
        settings.ensure_dirs()
        fill(settings, now - hour, hour, rate=100)
        monitor = Monitor(settings)
        served_baseline(monitor)
        monitor.reports.submit = lambda *a, **k: None  # type: ignore[method-assign]  # timed apart below
        times = []
        for i in range(20):
            at = now - hour + 120 + i * 5
            started = time.perf_counter()
            evaluation, _ = monitor.evaluate_once(at)  # the last one's verdict heads the reports timed below
            times.append(time.perf_counter() - started)
            assert evaluation.rows == 5000, evaluation.rows
        window = monitor.window(now - hour + 120).predictions
        reference = monitor.reference.assign(probability=monitor.baselines.cache["1"].probabilities)
        report_times = []
        for _ in range(3):
            started = time.perf_counter()
            report.write(reference, window, evaluation, settings.reports_dir)
            report_times.append(time.perf_counter() - started)
        evaluation_result = {
            "rows": 5000,
            "median_s": statistics.median(times),
            "p95_s": float(np.percentile(times, 95)),
            "max_s": max(times),
            "target_s": TARGET_SECONDS,
            "report_median_s": statistics.median(report_times),
        }
        print(json.dumps(evaluation_result, indent=1), flush=True)

        process = psutil.Process()
        samples: list[tuple[float, float]] = []
        at, step, n = now - hour + 60, 5.0, 0
        while at <= now:
            evaluation, _ = monitor.evaluate_once(at)
            if n % 10 == 0:
                report.write(reference, monitor.window(at).predictions, evaluation, settings.reports_dir)
            if n % 60 == 0:
                samples.append(((at - (now - hour)) / 60, process.memory_info().rss / 2**20))
                print(f"  t={samples[-1][0]:4.0f} min  rss {samples[-1][1]:.0f} MiB", flush=True)
            at, n = at + step, n + 1
        first_half = [m for t, m in samples if t <= args.minutes / 2]
        memory_result = {
            "evaluations": n,
            "reports": (n + 9) // 10,
            "rss_mib": samples,
            "rss_start_mib": samples[1][1] if len(samples) > 1 else samples[0][1],
            "rss_end_mib": samples[-1][1],
            "rss_max_first_half_mib": max(first_half),
        }
        print(json.dumps({k: v for k, v in memory_result.items() if k != "rss_mib"}, indent=1))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"evaluation": evaluation_result, "memory": memory_result}, indent=1))


if __name__ == "__main__":
    main()
