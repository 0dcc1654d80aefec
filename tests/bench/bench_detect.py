"""Detection benchmark: delay to detect seeded drifts, and false alarms per hour on clean traffic.

Simulated time, real statistics: traffic at 20 rows/s, an evaluation every 5 s over the last 60 s (the
monitor's defaults), the first shifted row at t=120 s. The same windows go to
- ours: the monitor's `evaluate` (Evidently's K-S / chi-square, Bonferroni at the default family alpha, 0.0001) and its
  built-in data rules with their `for` durations (feature-drift, missing-values, new-category);
- naive: Evidently's K-S / chi-square per column at p < 0.05, alarm when any column rejects;
- evidently-any: Evidently's default per-column tests (what DataDriftPreset picks), alarm on any column;
- evidently-dataset: DataDriftPreset's dataset drift (at least half the columns drifted).
Results: bench-results/detect.json and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from evidently.legacy.calculations.stattests.registry import get_stattest
from evidently.legacy.core import ColumnType

from lab_runtime.events import ALERT_FIRING
from lab_runtime.modeling.data import CATEGORICAL_FEATURES, FEATURES, DataGenerator, Population
from lab_runtime.monitor.alerts import AlertEngine
from lab_runtime.monitor.drift import p_value
from lab_runtime.monitor.evaluate import Limits, Window, evaluate
from lab_runtime.monitor.rules import BUILTIN_RULES, load_rules
from lab_runtime.settings import Settings

RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "detect.json"
DEFAULTS = Settings()
RATE, INTERVAL, WINDOW = DEFAULTS.pipeline_rate, DEFAULTS.monitor_interval, DEFAULTS.monitor_window
SHIFT_AT, HORIZON = 120.0, 360.0  # first shifted row; end of a shift scenario
DATA_RULES = [r for r in load_rules(BUILTIN_RULES) if r.name in ("feature-drift", "missing-values", "new-category")]


@dataclass(frozen=True)
class Scenario:
    name: str
    change: Callable[[pd.DataFrame, int], pd.DataFrame]  # (rows, seed) -> changed rows


def world(population: Population) -> Callable[[pd.DataFrame, int], pd.DataFrame]:
    def change(rows: pd.DataFrame, seed: int) -> pd.DataFrame:
        return DataGenerator(seed, population=population).production(0, len(rows))

    return change


def new_category(rows: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = rows.copy()
    rows.loc[rng.random(len(rows)) < 0.2, "purpose"] = "crypto"
    return rows


def null_column(rows: pd.DataFrame, seed: int) -> pd.DataFrame:
    return rows.assign(income=np.nan)


SCENARIOS = [
    Scenario("mean shift 0.25 sd (credit_score)", world(Population().with_shift("credit_score", 0.25))),
    Scenario("mean shift 0.5 sd (credit_score)", world(Population().with_shift("credit_score", 0.5))),
    Scenario("mean shift 1 sd (credit_score)", world(Population().with_shift("credit_score", 1.0))),
    Scenario("scale x1.5 (debt_to_income)", world(Population().with_shift("debt_to_income", 0.0, 1.5))),
    Scenario("new category (20% purpose=crypto)", new_category),
    Scenario("null column (income)", null_column),
]


def timeline(seed: int, seconds: float, scenario: Scenario | None) -> pd.DataFrame:
    rows = DataGenerator(seed).production(0, int(seconds * RATE))
    rows["t"] = np.arange(len(rows)) / RATE
    if scenario is not None:
        changed = scenario.change(rows.drop(columns="t"), seed)
        after = rows["t"].to_numpy() >= SHIFT_AT
        for name in FEATURES:
            rows[name] = rows[name].astype(object) if name in CATEGORICAL_FEATURES else rows[name].astype(float)
            rows.loc[after, name] = changed.loc[after, name].to_numpy()
    return rows


class Ours:
    name = "ours"

    def __init__(self, reference: pd.DataFrame) -> None:
        self.reference, self.engine = reference, AlertEngine()
        self.limits = Limits(DEFAULTS.drift_alpha, DEFAULTS.monitor_min_rows, DEFAULTS.min_labels)

    def alarm(self, rows: pd.DataFrame, now: float) -> bool:
        predictions = rows.assign(model_version="1", variant="champion", probability=0.5, prediction=0)
        empty = pd.DataFrame({"status": [], "latency_ms": []})
        window = Window(predictions, empty, predictions.iloc[:0].assign(label=0), WINDOW)
        ev = evaluate(window, self.reference, None, self.limits, now)
        return any(t.kind == ALERT_FIRING for t in self.engine.step(DATA_RULES, ev.signals, ev.details, now))


class Naive:
    name = "naive p<0.05"

    def __init__(self, reference: pd.DataFrame) -> None:
        self.reference = reference

    def alarm(self, rows: pd.DataFrame, now: float) -> bool:
        for name in FEATURES:
            current = rows[name].dropna()
            if len(current) and p_value(self.reference[name], current, name in CATEGORICAL_FEATURES) < 0.05:
                return True
        return False


class EvidentlyDefault:
    """Evidently's default per-column tests, as DataDriftPreset chooses them for this reference set."""

    def __init__(self, reference: pd.DataFrame, dataset: bool) -> None:
        self.reference, self.dataset = reference, dataset
        self.name = "evidently default: dataset drift" if dataset else "evidently default: any column"
        self.errors = 0

    def drifted(self, rows: pd.DataFrame) -> list[str]:
        out = []
        for name in FEATURES:
            kind = ColumnType.Categorical if name in CATEGORICAL_FEATURES else ColumnType.Numerical
            current = rows[name].dropna()
            if current.empty:  # the preset raises "An empty column ... was provided": no verdict at all
                self.errors += 1
                continue
            test = get_stattest(self.reference[name], current, kind, None)
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                if test(self.reference[name], current, kind, None).drifted:
                    out.append(name)
        return out

    def alarm(self, rows: pd.DataFrame, now: float) -> bool:
        drifted = self.drifted(rows)
        return len(drifted) >= len(FEATURES) / 2 if self.dataset else bool(drifted)


def run(seed: int, seconds: float, scenario: Scenario | None) -> dict[str, list[float]]:
    """Alarm times (s) of each detector over one timeline."""
    reference = DataGenerator(seed).reference(DEFAULTS.reference_rows)
    rows = timeline(seed, seconds, scenario)
    detectors = [
        Ours(reference),
        Naive(reference),
        EvidentlyDefault(reference, False),
        EvidentlyDefault(reference, True),
    ]
    alarms: dict[str, list[float]] = {d.name: [] for d in detectors}
    raised: dict[str, bool] = {d.name: False for d in detectors}
    now = WINDOW
    while now <= seconds:
        window = rows[(rows["t"] > now - WINDOW) & (rows["t"] <= now)].tail(DEFAULTS.monitor_max_rows)
        for d in detectors:
            on = d.alarm(window, now)
            if isinstance(d, Ours):
                if on:
                    alarms[d.name].append(now)
            else:  # a stateless detector alarms when it goes from quiet to flagged
                if on and not raised[d.name]:
                    alarms[d.name].append(now)
                raised[d.name] = on
        now += INTERVAL
    return alarms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3, help="timelines per scenario")
    parser.add_argument("--clean-minutes", type=float, default=60.0, help="clean traffic per seed")
    args = parser.parse_args()
    seeds = list(range(1, args.seeds + 1))
    started = time.perf_counter()
    table: dict[str, dict[str, str]] = {}
    raw: dict[str, object] = {}
    clean = [run(s, args.clean_minutes * 60, None) for s in seeds]
    hours = len(seeds) * (args.clean_minutes * 60 - WINDOW) / 3600
    names = list(clean[0])
    table["clean: false alarms per hour"] = {n: f"{sum(len(c[n]) for c in clean) / hours:.1f}" for n in names}
    raw["clean"] = {"hours": hours, "alarms": clean}
    for scenario in SCENARIOS:
        runs = [run(s, HORIZON, scenario) for s in seeds]
        row = {}
        for n in names:
            delays = [next((t - SHIFT_AT for t in r[n] if t >= SHIFT_AT), None) for r in runs]
            early = sum(any(t < SHIFT_AT for t in r[n]) for r in runs)
            found = [d for d in delays if d is not None]
            cell = f"{statistics.median(found):.0f}s (max {max(found):.0f}s)" if found else "missed"
            if found and len(found) < len(delays):
                cell += f", missed {len(delays) - len(found)}/{len(delays)}"
            if early:
                cell += f", {early} false alarm(s) before"
            row[n] = cell
        table[scenario.name] = row
        raw[scenario.name] = runs
        print(f"{scenario.name}: {row}", flush=True)
    header = "| scenario | " + " | ".join(names) + " |"
    lines = [header, "|" + "---|" * (len(names) + 1)]
    lines += [f"| {s} | " + " | ".join(cells[n] for n in names) + " |" for s, cells in table.items()]
    print(
        f"\nseeds {seeds}; traffic {RATE:g}/s; evaluation every {INTERVAL:g}s over {WINDOW:g}s; "
        f"shift at t={SHIFT_AT:g}s; delay = first alarm minus first shifted row\n"
    )
    print("\n".join(lines))
    print(f"\n({time.perf_counter() - started:.0f}s)")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"table": table, "raw": raw}, indent=1, default=str))


if __name__ == "__main__":
    main()
