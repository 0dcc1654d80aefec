"""Detection benchmark: delay to the first alert on seeded drifts, and false alarms per hour on clean traffic.

Simulated time, real statistics, at 5, 20 and 100 rows/s, with the reference at 1,000 and 5,000 rows: an evaluation
every 5 s over the last 60 s (the monitor's defaults, at most its 5,000 newest rows), the first changed row at
t=120 s. Every detector sees the same rows:
- ours: the monitor itself (`evaluate` with its sequential change charts fed every row, the window tests) and its
  built-in data rules with their `for` (feature-change, feature-drift, missing-values, new-category);
- evidently: Evidently's default per-column drift tests (what DataDriftPreset picks for the reference's size:
  K-S and chi-square up to 1,000 rows, Wasserstein and Jensen-Shannon distances beyond), an alarm when any column
  drifts.
Concept drift (the same inputs, more defaults: accuracy down about 0.08) is measured on the quality rules alone,
with a model trained as the sandbox's and labels for half the rows arriving 10 s late (the defaults): no window
test sees it, so there is no Evidently column; the goal is an alert within 120 s.
Results: bench-results/detect.json and Markdown tables on stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from evidently.legacy.calculations.stattests.registry import get_stattest
from evidently.legacy.core import ColumnType

from lab_runtime.events import ALERT_FIRING
from lab_runtime.modeling.columns import CATEGORICAL_FEATURES, FEATURES, LABEL
from lab_runtime.modeling.data import DataGenerator
from lab_runtime.modeling.model import fit
from lab_runtime.modeling.population import LabelFunction, Population
from lab_runtime.monitor.alerts import AlertEngine
from lab_runtime.monitor.evaluate import Baseline, Limits, Window, evaluate
from lab_runtime.monitor.rules import BUILTIN_RULES, load_rules
from lab_runtime.monitor.sequential import ChangeDetector, QualityChart, Reading
from lab_runtime.settings import Settings

RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "detect.json"
DEFAULTS = Settings()
INTERVAL, WINDOW, MAX_ROWS = DEFAULTS.monitor_interval, DEFAULTS.monitor_window, DEFAULTS.monitor_max_rows
RATES = (5.0, 20.0, 100.0)
REFERENCES = (1000, 5000)
SHIFT_AT, HORIZON = 120.0, 420.0  # first changed row; end of a scenario's timeline
DATA_RULES = ("feature-change", "feature-drift", "missing-values", "new-category")
QUALITY_RULES = ("accuracy-change", "accuracy-floor", "accuracy-drop", "estimated-accuracy-drop")
CONCEPT = LabelFunction(intercept=LabelFunction().intercept + 0.9)  # more defaults for the same inputs
CONCEPT_GOAL = 120.0
GOAL_RATIO = 1.2

Change = Callable[[pd.DataFrame, int], pd.DataFrame]  # (rows with their time `t`, seed) -> rows as served


@dataclass(frozen=True)
class Scenario:
    name: str
    change: Change
    horizon: float = HORIZON


def world(population: Population) -> Change:
    """Every row from `t >= SHIFT_AT` drawn from `population` (the same random draws, so only the change differs)."""

    def change(rows: pd.DataFrame, seed: int) -> pd.DataFrame:
        changed = DataGenerator(seed, population=population).production(0, len(rows))
        return _after(rows, changed, rows["t"].to_numpy() >= SHIFT_AT)

    return change


def _after(rows: pd.DataFrame, changed: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    out = rows.copy()
    for name in FEATURES:
        out[name] = out[name].astype(object) if name in CATEGORICAL_FEATURES else out[name].astype(float)
        out.loc[mask, name] = changed.loc[mask, name].to_numpy()
    return out


def moved(feature: str, shift: Callable[[np.ndarray], np.ndarray]) -> Change:
    """`feature` moved by `shift(t)` reference standard deviations."""

    def change(rows: pd.DataFrame, seed: int) -> pd.DataFrame:
        std = DataGenerator(seed).stats[feature][1]
        out = rows.copy()
        out[feature] = out[feature].astype(float) + shift(rows["t"].to_numpy()) * std
        return out

    return change


def gradual(per_minute: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda t: np.clip((t - SHIFT_AT) / 60.0, 0, None) * per_minute


def bursts(size: float, on: float, every: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda t: np.where((t >= SHIFT_AT) & ((t - SHIFT_AT) % every < on), size, 0.0)


def replaced(feature: str, share: float, value: object) -> Change:
    """A `share` of the rows from SHIFT_AT with `feature` set to `value` (a new category, or None for a null)."""

    def change(rows: pd.DataFrame, seed: int) -> pd.DataFrame:
        out = rows.copy()
        out[feature] = out[feature].astype(object)
        hit = (np.random.default_rng(seed).random(len(rows)) < share) & (rows["t"].to_numpy() >= SHIFT_AT)
        out.loc[hit, feature] = value
        return out

    return change


SCENARIOS = [
    Scenario("mean shift 0.25 sd (credit_score)", world(Population().with_shift("credit_score", 0.25))),
    Scenario("mean shift 0.5 sd (credit_score)", world(Population().with_shift("credit_score", 0.5))),
    Scenario("mean shift 1 sd (credit_score)", world(Population().with_shift("credit_score", 1.0))),
    Scenario("gradual drift +0.1 sd/min (credit_score)", moved("credit_score", gradual(0.1)), 900.0),
    Scenario("spread x1.5 (debt_to_income)", world(Population().with_shift("debt_to_income", 0.0, 1.5))),
    Scenario("correlated pair (income, loan_amount) +0.1 log", world(Population(income_log_mean=4.1))),
    Scenario(
        "category shares (region)",
        world(Population(region={"north": 0.36, "south": 0.3, "east": 0.18, "west": 0.16})),
    ),
    Scenario(
        "category share doubled (purpose=business)",
        world(
            Population(
                purpose={
                    "debt_consolidation": 0.3,
                    "car": 0.17,
                    "home_improvement": 0.15,
                    "education": 0.12,
                    "business": 0.26,
                }
            )
        ),
    ),
    Scenario(
        "bursts: 0.5 sd for 20 s every 2 min (credit_score)", moved("credit_score", bursts(0.5, 20.0, 120.0)), 600.0
    ),
    Scenario("new category (20% purpose=crypto)", replaced("purpose", 0.2, "crypto")),
    Scenario("new category (3% purpose=crypto)", replaced("purpose", 0.03, "crypto")),
    Scenario("nulls (30% of income)", replaced("income", 0.3, None)),
    Scenario("null column (income)", replaced("income", 1.0, None)),
]


def timeline(seed: int, rate: float, seconds: float, scenario: Scenario | None) -> pd.DataFrame:
    rows = DataGenerator(seed).production(0, int(seconds * rate))
    rows["t"] = np.arange(len(rows)) / rate
    return rows if scenario is None else scenario.change(rows, seed)


class Ours:
    name = "ours"

    def __init__(self, reference: pd.DataFrame) -> None:
        self.reference, self.engine = reference, AlertEngine()
        self.incidents: set[tuple[str, float]] = set()  # (rule, first firing) of every incident
        self.changes = ChangeDetector(reference, DEFAULTS.change_threshold)
        self.rules = [r for r in load_rules(BUILTIN_RULES) if r.name in DATA_RULES]
        self.limits = Limits(DEFAULTS.drift_alpha, DEFAULTS.monitor_min_rows, DEFAULTS.min_labels)

    def alarm(self, window: pd.DataFrame, new: pd.DataFrame, now: float) -> bool:
        self.changes.update(new)
        predictions = window.assign(model_version="1", variant="champion", probability=0.5, prediction=0)
        empty = pd.DataFrame({"status": [], "latency_ms": []})
        frame = Window(predictions, empty, predictions.iloc[:0].assign(label=0), WINDOW)
        ev = evaluate(frame, self.reference, None, self.limits, now, Reading(self.changes.changes()))
        fired = [t.payload for t in self.engine.step(self.rules, ev.signals, ev.details, now) if t.kind == ALERT_FIRING]
        self.incidents |= {(p["rule"], p["incident"]) for p in fired}
        return bool(fired)


class Evidently:
    """Evidently's default per-column tests, as DataDriftPreset chooses them for this reference set; stateless,
    so an alarm is a window that drifts after one that did not."""

    name = "evidently"

    def __init__(self, reference: pd.DataFrame) -> None:
        self.reference, self.raised = reference, False

    def drifted(self, rows: pd.DataFrame) -> bool:
        for name in FEATURES:
            kind = ColumnType.Categorical if name in CATEGORICAL_FEATURES else ColumnType.Numerical
            current = rows[name].dropna()
            if current.empty:  # the preset raises "An empty column ... was provided": no verdict at all
                continue
            test = get_stattest(self.reference[name], current, kind, None)
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                if test(self.reference[name], current, kind, None).drifted:
                    return True
        return False

    def alarm(self, window: pd.DataFrame, new: pd.DataFrame, now: float) -> bool:
        on = self.drifted(window)
        fired, self.raised = on and not self.raised, on
        return fired


@dataclass(frozen=True)
class Job:
    seed: int
    rate: float
    reference_rows: int
    seconds: float
    scenario: int | None  # index into SCENARIOS; None: clean traffic


def run(job: Job) -> dict[str, list[float]]:
    """Alarm times (s) of each detector over one timeline, and `incidents`: how many incidents ours opened."""
    scenario = None if job.scenario is None else SCENARIOS[job.scenario]
    reference = DataGenerator(job.seed).reference(job.reference_rows)
    rows = timeline(job.seed, job.rate, job.seconds, scenario)
    t = rows["t"].to_numpy()
    ours = Ours(reference)
    detectors: list[Ours | Evidently] = [ours, Evidently(reference)]
    alarms: dict[str, list[float]] = {d.name: [] for d in detectors}
    now, fed = WINDOW, 0
    while now <= job.seconds:
        upto = int(np.searchsorted(t, now, side="right"))
        window = rows.iloc[int(np.searchsorted(t, now - WINDOW, side="right")) : upto].tail(MAX_ROWS)
        new, fed = rows.iloc[fed:upto], upto
        for d in detectors:
            if d.alarm(window, new, now):
                alarms[d.name].append(now)
        now += INTERVAL
    alarms["incidents"] = [float(len(ours.incidents))]
    return alarms


@dataclass(frozen=True)
class QualityJob:
    seed: int
    rate: float
    seconds: float
    concept: bool  # the label function changes at SHIFT_AT


def run_quality(job: QualityJob) -> dict[str, object]:
    """Times the quality rules fired over one timeline with a real model and delayed labels, and the accuracy on
    the labelled rows before and after SHIFT_AT."""
    generator = DataGenerator(job.seed)
    training = generator.training()
    model = fit(training[list(FEATURES)], training[LABEL], seed=job.seed)
    reference = generator.reference(DEFAULTS.reference_rows)
    reference_p = model.predict_proba(reference[list(FEATURES)])[:, 1]
    accuracy = float(((reference_p >= 0.5).astype(int) == reference[LABEL]).mean())
    baseline = Baseline("1", reference_p, accuracy, 0.0)
    rows = timeline(job.seed, job.rate, job.seconds, None)
    t = rows["t"].to_numpy()
    probability = model.predict_proba(rows[list(FEATURES)])[:, 1]
    rows = rows.assign(model_version="1", variant="champion", probability=probability)
    rows["prediction"] = (probability >= 0.5).astype(int)
    if job.concept:
        changed = DataGenerator(job.seed, labels=CONCEPT).production(0, len(rows))[LABEL].to_numpy()
        rows[LABEL] = np.where(t >= SHIFT_AT, changed, rows[LABEL].to_numpy())
    rng = np.random.default_rng([job.seed, 99])
    labelled = rows[rng.random(len(rows)) < DEFAULTS.label_share].assign(
        arrives=lambda f: f["t"] + DEFAULTS.label_delay
    )
    labelled = labelled.sort_values("arrives", kind="stable").rename(columns={LABEL: "label"})
    arrives = labelled["arrives"].to_numpy()
    rules = [r for r in load_rules(BUILTIN_RULES) if r.name in QUALITY_RULES]
    engine, chart = AlertEngine(), QualityChart(DEFAULTS.quality_threshold, DEFAULTS.reference_rows)
    limits = Limits(DEFAULTS.drift_alpha, DEFAULTS.monitor_min_rows, DEFAULTS.min_labels)
    calls = pd.DataFrame({"status": [], "latency_ms": []})
    fired: dict[str, list[float]] = {r.name: [] for r in rules}
    now, fed = WINDOW, 0
    quality = DEFAULTS.quality_window
    while now <= job.seconds:
        upto = int(np.searchsorted(arrives, now, side="right"))
        chart.update("1", accuracy, labelled.iloc[fed:upto])
        fed = upto
        known = labelled.iloc[:upto]
        window = Window(
            rows[(t > now - WINDOW) & (t <= now)].tail(MAX_ROWS),
            calls,
            known[(known["t"] > now - quality) & (known["t"] <= now)],
            WINDOW,
        )
        ev = evaluate(window, reference, baseline, limits, now, Reading([], chart.score))
        for tr in engine.step(rules, ev.signals, ev.details, now):
            if tr.kind == ALERT_FIRING:
                fired[tr.payload["rule"]].append(now)
        now += INTERVAL
    right = rows["prediction"] == rows[LABEL]
    return {
        "fired": fired,
        "accuracy_before": float(right[t < SHIFT_AT].mean()),
        "accuracy_after": float(right[t >= SHIFT_AT].mean()) if job.seconds > SHIFT_AT else None,
    }


def first_delay(alarms: list[float]) -> float | None:
    return next((a - SHIFT_AT for a in alarms if a >= SHIFT_AT), None)


def _cell(delays: list[float | None], early: int) -> str:
    found = [d for d in delays if d is not None]
    cell = f"{statistics.median(found):.0f}s (max {max(found):.0f}s)" if found else "missed"
    if found and len(found) < len(delays):
        cell += f", missed {len(delays) - len(found)}/{len(delays)}"
    return cell + (f", {early} false alarm(s) before" if early else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3, help="timelines per scenario and rate")
    parser.add_argument("--clean-minutes", type=float, default=60.0, help="clean traffic per seed and setting")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    seeds = list(range(1, args.seeds + 1))
    started = time.perf_counter()
    clean_jobs = [Job(s, r, n, args.clean_minutes * 60, None) for r in RATES for n in REFERENCES for s in seeds]
    shift_jobs = [
        Job(s, r, DEFAULTS.reference_rows, sc.horizon, i)
        for i, sc in enumerate(SCENARIOS)
        for r in RATES
        for s in seeds
    ]
    quality_jobs = [QualityJob(s, r, args.clean_minutes * 60, False) for r in RATES for s in seeds]
    quality_jobs += [QualityJob(s, r, HORIZON, True) for r in RATES for s in seeds]
    with ProcessPoolExecutor(args.workers) as pool:
        quality = dict(zip(quality_jobs, pool.map(run_quality, quality_jobs), strict=True))
        results = dict(zip(clean_jobs + shift_jobs, pool.map(run, clean_jobs + shift_jobs), strict=True))
    names = ["ours", "evidently"]
    clean_rows, raw_clean = [], []
    for r in RATES:
        for n in REFERENCES:
            runs = [results[Job(s, r, n, args.clean_minutes * 60, None)] for s in seeds]
            hours = len(seeds) * (args.clean_minutes * 60 - WINDOW) / 3600
            rates = {k: sum(len(x[k]) for x in runs) / hours for k in names}
            clean_rows.append(f"| {r:g} | {n} | {hours:.1f} | {rates['ours']:.2f} | {rates['evidently']:.2f} |")
            raw_clean.append({"rate": r, "reference_rows": n, "hours": hours, "alarms": runs})
    shift_rows, raw_shift, misses = [], [], []
    for i, sc in enumerate(SCENARIOS):
        for r in RATES:
            runs = [results[Job(s, r, DEFAULTS.reference_rows, sc.horizon, i)] for s in seeds]
            cells, medians = {}, {}
            for k in names:
                delays = [first_delay(x[k]) for x in runs]
                early = sum(any(a < SHIFT_AT for a in x[k]) for x in runs)
                cells[k] = _cell(delays, early)
                found = [d for d in delays if d is not None]
                medians[k] = statistics.median(found) if len(found) == len(delays) else None
            ours, theirs = medians["ours"], medians["evidently"]
            if ours is None:
                ratio = "missed"
            elif theirs is None:
                ratio = "they miss"
            else:
                ratio = f"{ours / theirs:.2f}"
            met = ours is not None and (theirs is None or ours <= GOAL_RATIO * theirs)
            if not met:
                misses.append(f"{sc.name} at {r:g}/s")
            occurrences = [len(x["ours"]) for x in runs]
            incidents = [int(x["incidents"][0]) for x in runs]
            extra = f" (ours: {occurrences} alerts in {incidents} incidents)" if "bursts" in sc.name else ""
            shift_rows.append(f"| {sc.name} | {r:g} | {cells['ours']} | {cells['evidently']} | {ratio}{extra} |")
            raw_shift.append({"scenario": sc.name, "rate": r, "runs": runs})
    print(f"\nseeds {seeds}; an evaluation every {INTERVAL:g}s over {WINDOW:g}s; change at t={SHIFT_AT:g}s\n")
    print("## Clean traffic: false alarms per hour\n")
    print("| rows/s | reference rows | hours | ours | evidently |\n|---|---|---|---|---|")
    print("\n".join(clean_rows))
    print(f"\n## Delay to the first alert (median over seeds; reference {DEFAULTS.reference_rows} rows)\n")
    print("| scenario | rows/s | ours | evidently | ours / evidently |\n|---|---|---|---|---|")
    print("\n".join(shift_rows))
    print(f"\ngoal: ours within {GOAL_RATIO}x evidently's delay; missed on: {', '.join(misses) or 'none'}")
    print("\n## Quality rules: clean false alarms per hour, and concept drift (delay to the first alert)\n")
    print(
        "| rows/s | clean: false alarms/h | accuracy before -> after | first alert (rule) per seed |\n|---|---|---|---|"
    )
    raw_quality = []
    for r in RATES:
        clean = [quality[QualityJob(s, r, args.clean_minutes * 60, False)] for s in seeds]
        hours = len(seeds) * (args.clean_minutes * 60 - WINDOW) / 3600
        false = sum(len(times) for c in clean for times in c["fired"].values()) / hours  # type: ignore[attr-defined]
        drifted = [quality[QualityJob(s, r, HORIZON, True)] for s in seeds]
        firsts = []
        for d in drifted:
            after = [(a - SHIFT_AT, rule) for rule, times in d["fired"].items() for a in times if a >= SHIFT_AT]  # type: ignore[attr-defined]
            firsts.append(f"{min(after)[0]:.0f}s ({min(after)[1]})" if after else "missed")
            if not after or min(after)[0] > CONCEPT_GOAL:
                misses.append(f"concept drift at {r:g}/s (seed {drifted.index(d) + 1})")
        before = statistics.mean(d["accuracy_before"] for d in drifted)  # type: ignore[misc]
        after_acc = statistics.mean(d["accuracy_after"] for d in drifted)  # type: ignore[misc]
        print(f"| {r:g} | {false:.2f} | {before:.3f} -> {after_acc:.3f} | {', '.join(firsts)} |")
        raw_quality.append({"rate": r, "clean": clean, "concept": drifted})
    print(f"\ngoals missed: {', '.join(misses) or 'none'}")
    print(f"\n({time.perf_counter() - started:.0f}s)")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps({"clean": raw_clean, "shifts": raw_shift, "quality": raw_quality, "missed": misses}, indent=1)
    )


if __name__ == "__main__":
    main()
