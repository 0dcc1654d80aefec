"""Benchmark: what one sandbox costs, how fast it starts and answers, and how many fit on this machine.

- footprint: `lab up`, `lab start lab-02` (the pipeline at its default rate, the monitor evaluating), `--warmup`
  seconds of traffic, then every process of every service (children included) accounted over `--window` seconds:
  CPU as a share of one core, resident memory (RSS, and PSS, which splits shared pages fairly) at the end;
- CLI: CPU (user + system of the `lab` process) and wall time of the commands a learner types most, against
  that running sandbox;
- start: `lab up` until every service is healthy, on a fresh state directory and on the same one again (warm);
- density (`--density N`): sandboxes started one after another, each with lab 02 running; after each, every
  sandbox must answer `lab check` within 2 s and serve a probe of 100 sequential predictions with p99 within
  100 ms. The largest N that passes is reported.
Results: bench-results/footprint.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import psutil

from lab_runtime.backends.services import SERVICES
from lab_runtime.modeling.columns import FEATURES
from lab_runtime.modeling.data import DataGenerator
from tests.bench.bench_startup import sandbox_env

RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "footprint.json"
GOAL_RSS_MB, GOAL_CPU = 700.0, 0.15
GOAL_WARM_S, GOAL_FRESH_S = 8.0, 10.0
GOAL_CLI_CPU_S = {"status": 0.3, "declare --list": 0.3, "hint": 0.3, "check": 1.0}
CLI_COMMANDS = ("status", "declare --list", "hint", "check", "drill list")
DENSITY_CHECK_S, DENSITY_P99_MS = 2.0, 100.0


@dataclass(frozen=True)
class Command:
    args: str
    wall_s: float
    cpu_s: float
    returncode: int


def lab(env: dict[str, str], args: str, check: bool = True) -> Command:
    """Run `lab ARGS`; its wall time and the CPU its process (and any child) used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "lab_runtime.cli", *args.split()], env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if check and result.returncode != 0:
        raise SystemExit(f"lab {args} failed ({result.returncode}): {result.stderr.strip()[-600:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Command(args, wall, cpu, result.returncode)


def service_processes(state: Path) -> dict[str, list[psutil.Process]]:
    """Each service's process and its children, from the supervisor's pid files."""
    found: dict[str, list[psutil.Process]] = {}
    for name in SERVICES:
        record = json.loads((state / "run" / f"{name}.json").read_text())
        parent = psutil.Process(int(record["pid"]))
        found[name] = [parent, *parent.children(recursive=True)]
    return found


def _cpu(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return float(times.user + times.system)


def account(state: Path, window: float) -> dict[str, dict[str, float]]:
    """Per service: share of a core over `window` seconds, and RSS and PSS (MB) at its end."""
    processes = service_processes(state)
    first = {name: sum(_cpu(p) for p in procs) for name, procs in processes.items()}
    started = time.monotonic()
    time.sleep(window)
    elapsed = time.monotonic() - started
    rows: dict[str, dict[str, float]] = {}
    for name, procs in processes.items():
        rss = pss = 0.0
        for process in procs:
            try:
                memory = process.memory_full_info()
            except psutil.NoSuchProcess:
                continue
            rss += memory.rss / 2**20
            pss += memory.pss / 2**20
        cpu = (sum(_cpu(p) for p in procs) - first[name]) / elapsed
        rows[name] = {"cpu": cpu, "rss_mb": rss, "pss_mb": pss, "processes": len(procs)}
    return rows


def probe_p99(env: dict[str, str], requests: int = 100) -> float:
    """p99 (ms) of `requests` sequential predictions, timed by the caller."""
    url = f"http://127.0.0.1:{env['LAB_SERVICE_PORT']}/predict"
    rows = DataGenerator(11).production(0, requests)[list(FEATURES)]
    records = json.loads(rows.to_json(orient="records"))
    latencies = []
    with httpx.Client(timeout=10) as client:
        for record in records:
            started = time.perf_counter()
            response = client.post(url, json={"features": record})
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"probe: {response.status_code} {response.text[:200]}")
    return statistics.quantiles(latencies, n=100)[98]


def start_sandbox(state: Path) -> tuple[dict[str, str], float]:
    env = sandbox_env(state)
    up = lab(env, "up").wall_s
    lab(env, "start lab-02")
    return env, up


def footprint(warmup: float, window: float) -> dict[str, object]:
    state = Path(tempfile.mkdtemp(prefix="lab-footprint-"))
    env, _ = start_sandbox(state)
    try:
        time.sleep(warmup)
        services = account(state, window)
        cli = {}
        for args in CLI_COMMANDS:
            runs = [lab(env, args, check=False) for _ in range(3)]
            cli[args] = {
                "cpu_s": statistics.median(r.cpu_s for r in runs),
                "wall_s": statistics.median(r.wall_s for r in runs),
                "returncodes": [r.returncode for r in runs],
            }
    finally:
        lab(env, "down")
        shutil.rmtree(state, ignore_errors=True)
    total = {k: sum(row[k] for row in services.values()) for k in ("cpu", "rss_mb", "pss_mb")}
    return {"services": services, "total": total, "cli": cli}


def startup(runs: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"fresh": [], "warm": []}
    for _ in range(runs):
        state = Path(tempfile.mkdtemp(prefix="lab-footprint-"))
        env = sandbox_env(state)
        for kind in ("fresh", "warm"):  # warm: the same state directory, databases already migrated
            try:
                results[kind].append(lab(env, "up").wall_s)
            finally:
                lab(env, "down")
        shutil.rmtree(state, ignore_errors=True)
    return results


def density(most: int, settle: float, first: int = 1) -> dict[str, object]:
    """Add sandboxes until one misses `lab check` within 2 s or a p99 within 100 ms (or `most` run); the first
    `first - 1` are started one after another without a check (a run that knows they pass)."""
    sandboxes: list[tuple[Path, dict[str, str]]] = []
    steps = []
    passed = first - 1
    try:
        for n in range(1, most + 1):
            state = Path(tempfile.mkdtemp(prefix=f"lab-density-{n}-"))
            env, up = start_sandbox(state)
            sandboxes.append((state, env))
            if n < first:
                continue
            time.sleep(settle)
            checks = [lab(e, "check", check=False).wall_s for _, e in sandboxes]
            p99s = [probe_p99(e) for _, e in sandboxes]
            load = os.getloadavg()[0]
            ok = max(checks) <= DENSITY_CHECK_S and max(p99s) <= DENSITY_P99_MS
            steps.append({"n": n, "up_s": up, "check_s": checks, "p99_ms": p99s, "load1": load, "ok": ok})
            print(
                f"  N={n}: lab up {up:.1f} s, lab check max {max(checks):.2f} s, p99 max {max(p99s):.1f} ms, "
                f"load {load:.1f}  [{'ok' if ok else 'MISSED'}]",
                flush=True,
            )
            if not ok:
                break
            passed = n
    finally:
        for state, env in sandboxes:
            lab(env, "down", check=False)
            shutil.rmtree(state, ignore_errors=True)
    return {"largest_n": passed, "steps": steps}


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warmup", type=float, default=90.0, help="seconds of traffic before accounting")
    parser.add_argument("--window", type=float, default=60.0, help="seconds of CPU accounting")
    parser.add_argument("--runs", type=int, default=3, help="fresh and warm starts each")
    parser.add_argument("--density", type=int, default=0, help="try up to N sandboxes (0: skip)")
    parser.add_argument("--settle", type=float, default=45.0, help="seconds after each added sandbox")
    parser.add_argument("--from", dest="first", type=int, default=1, help="check from the Nth sandbox on")
    parser.add_argument("--only", choices=("footprint", "startup", "density"), action="append")
    args = parser.parse_args()
    only = set(args.only or ("footprint", "startup", "density"))
    results: dict[str, object] = {"cores": os.cpu_count()}
    if "footprint" in only:
        found = footprint(args.warmup, args.window)
        results["footprint"] = found
        total = found["total"]
        assert isinstance(total, dict)
        print(f"sandbox in steady state (lab 02, {args.warmup:.0f} s of traffic, then {args.window:.0f} s):")
        services = found["services"]
        assert isinstance(services, dict)
        for name, row in services.items():
            print(
                f"  {name:<17} cpu {row['cpu']:.3f}  rss {row['rss_mb']:6.0f} MB  pss {row['pss_mb']:6.0f} MB  "
                f"({row['processes']:.0f} processes)"
            )
        print(
            f"  {'total':<17} cpu {total['cpu']:.3f}  rss {total['rss_mb']:6.0f} MB  pss {total['pss_mb']:6.0f} MB"
            f"  [cpu <= {GOAL_CPU}: {verdict(total['cpu'] <= GOAL_CPU)}; "
            f"rss <= {GOAL_RSS_MB:.0f} MB: {verdict(total['rss_mb'] <= GOAL_RSS_MB)}]"
        )
        print("lab commands against it (median of 3: CPU, wall):")
        cli = found["cli"]
        assert isinstance(cli, dict)
        for command, row in cli.items():
            goal = GOAL_CLI_CPU_S.get(command)
            mark = f"  [cpu <= {goal} s: {verdict(row['cpu_s'] <= goal)}]" if goal else ""
            print(f"  lab {command:<15} cpu {row['cpu_s']:.2f} s  wall {row['wall_s']:.2f} s{mark}")
    if "startup" in only:
        starts = startup(args.runs)
        results["startup"] = starts
        print("lab up until every service is healthy:")
        for kind, goal in (("fresh", GOAL_FRESH_S), ("warm", GOAL_WARM_S)):
            runs = starts[kind]
            print(
                f"  {kind:<6} median {statistics.median(runs):.2f} s  max {max(runs):.2f} s  "
                f"runs {', '.join(f'{r:.2f}' for r in runs)}  [<= {goal:.0f} s: {verdict(max(runs) <= goal)}]"
            )
    if "density" in only and args.density:
        print(f"density: sandboxes with lab 02 running, each checked after {args.settle:.0f} s")
        found_density = density(args.density, args.settle, args.first)
        results["density"] = found_density
        print(f"  largest N: {found_density['largest_n']}  [goal 8: {verdict(found_density['largest_n'] >= 8)}]")
    RESULTS.parent.mkdir(exist_ok=True)
    earlier = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}  # `--only` keeps the other parts' figures
    RESULTS.write_text(json.dumps({**earlier, **results}, indent=2, default=lambda o: asdict(o)))


if __name__ == "__main__":
    main()
