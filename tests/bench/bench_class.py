"""Benchmark: a class on the hub (`lab hub`), on this machine's Docker engine.

For each class size N of `--sizes` (a fresh hub each time, learners' volumes removed between):
- ready: seconds from asking the hub for every learner's server ("start all", as before a class) until every
  server runs with a healthy sandbox (its own /lab-sandbox/status through the hub's proxy);
- then every learner starts lab 02 together (`lab start lab-02` in their server: a first @champion trained, so
  their pipeline's production traffic is served), timed; then `--seconds` of steady state with that traffic
  flowing: per learner server, memory (the container's cgroup usage less its page cache) and CPU as a share of one
  core; the hub's container split into JupyterHub, its proxy and the console (their processes' CPU and RSS);
- responsiveness: the seconds `lab status` takes in one learner's server, at the end of the steady state;
- the largest class this machine holds: the largest N whose servers were all ready within `--timeout` and healthy
  through the steady state; the sizes stop at the first that is not.
Results: bench-results/class.json. The images are built first (their time is reported, not counted in `ready`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from grader.console.store import SqliteStore
from lab_runtime.hub.control import Hub
from lab_runtime.hub.plan import HUB, HubPlan, numbered
from lab_runtime.hub.status import LearnerState

RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "class.json"


def cpu_shares(containers: list[Any], seconds: float) -> list[float]:
    """Each container's CPU over the same `seconds`, as a share of one core (cgroup usage between two readings)."""

    def usage(container: Any) -> int:
        return int(container.stats(stream=False)["cpu_stats"]["cpu_usage"]["total_usage"])

    with ThreadPoolExecutor(len(containers)) as pool:
        first = list(pool.map(usage, containers))
        started = time.monotonic()
        time.sleep(seconds)
        second = list(pool.map(usage, containers))
        took = time.monotonic() - started
    return [round((b - a) / 1e9 / took, 3) for a, b in zip(first, second, strict=True)]


def memory_mb(container: Any) -> float:
    stats = container.stats(stream=False)["memory_stats"]
    return float(stats.get("usage", 0) - stats.get("stats", {}).get("cache", 0)) / 2**20


def hub_parts(container: Any, seconds: float) -> dict[str, dict[str, float]]:
    """The hub's container by part: JupyterHub, the proxy, the console, the idle culler (CPU share, RSS MB)."""
    procs = []
    for row in container.top(ps_args="-eo pid,args")["Processes"]:
        try:
            procs.append((row[1], psutil.Process(int(row[0]))))
        except (psutil.Error, ValueError):
            continue
    before = {p.pid: sum(p.cpu_times()[:2]) for _, p in procs}
    time.sleep(seconds)
    parts: dict[str, dict[str, float]] = {}
    for args, p in procs:
        name = (
            "console"
            if "console serve" in args
            else "proxy"
            if "configurable-http-proxy" in args
            else "idle-culler"
            if "idle_culler" in args
            else "jupyterhub"
            if "jupyterhub" in args
            else "other"
        )
        try:
            cpu = (sum(p.cpu_times()[:2]) - before[p.pid]) / seconds
            rss = p.memory_info().rss / 2**20
        except psutil.Error:
            continue
        part = parts.setdefault(name, {"cpu": 0.0, "rss_mb": 0.0})
        part["cpu"] = round(part["cpu"] + cpu, 3)
        part["rss_mb"] = round(part["rss_mb"] + rss, 1)
    return parts


def one_size(hub: Hub, store: SqliteStore, size: int, port: int, timeout: float, seconds: float) -> dict[str, Any]:
    plan = HubPlan(learners=numbered(size), port=port, cull_idle=0)
    hub.up(plan, lambda learner: store.issue("learner" if learner else "instructor", learner)[1], print)
    started = time.monotonic()
    hub.start_all()
    states: list[LearnerState] = hub.wait_ready(timeout)
    ready = time.monotonic() - started
    result: dict[str, Any] = {"learners": size, "ready_seconds": round(ready, 1)}
    if not all(s.ready for s in states):
        result["not_ready"] = {
            s.learner: s.server + "/" + s.sandbox + (f": {s.reason}" if s.reason else "") for s in states if not s.ready
        }
        return result
    servers = [hub.docker.containers.get(plan.server(n)) for n in plan.learners]
    lab_started = time.monotonic()
    with ThreadPoolExecutor(len(servers)) as pool:  # the class starts lab 02 together
        codes = list(pool.map(lambda c: c.exec_run(["lab", "start", "lab-02"]).exit_code, servers))
    result["lab_02_started_seconds"] = round(time.monotonic() - lab_started, 1)
    if any(codes):
        result["not_ready"] = {
            n: f"lab start lab-02 exited {code}" for n, code in zip(plan.learners, codes, strict=True) if code
        }
        return result
    time.sleep(min(30.0, seconds))  # the sandboxes' traffic and monitors settle after the start
    cpus = cpu_shares(servers, seconds / 2)
    with ThreadPoolExecutor(len(servers)) as pool:
        memory = [round(m, 1) for m in pool.map(memory_mb, servers)]
    result["server_cpu"] = {"median": statistics.median(cpus), "max": max(cpus)}
    result["server_memory_mb"] = {"median": statistics.median(memory), "max": max(memory)}
    result["hub"] = hub_parts(hub.docker.containers.get(HUB), seconds / 2)
    probe = time.monotonic()
    servers[0].exec_run(["lab", "status", "--json"])
    result["lab_status_seconds"] = round(time.monotonic() - probe, 2)
    pipeline = json.loads(servers[0].exec_run(["lab", "pipeline", "status", "--json"], stderr=False).output)
    counters = pipeline.get("counters", {})
    result["traffic_one_sandbox"] = {
        "state": pipeline.get("state"),
        "requests_per_second": pipeline.get("actual_rate"),
        "ok": counters.get("ok"),
        "failed_5xx": counters.get("failed_5xx"),
    }
    unhealthy = [s.learner for s in hub.status() if not s.ready]
    if unhealthy:
        result["unhealthy_after"] = unhealthy
    result["host_available_gb"] = round(psutil.virtual_memory().available / 2**30, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2,4,8,12", help="class sizes to try, in order")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of steady state measured per size")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds every server may take to be ready")
    parser.add_argument("--port", type=int, default=18765)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    with tempfile.TemporaryDirectory() as folder:
        hub = Hub(Path(folder) / "hub")
        hub.folder.mkdir(parents=True)
        store = SqliteStore(hub.folder / "console" / "console.db")
        build_started = time.monotonic()
        (hub.folder / "plan.json").write_text(HubPlan(learners=("probe",)).model_dump_json())
        hub.build(print)
        built = round(time.monotonic() - build_started, 1)
        sizes: list[dict[str, Any]] = []
        try:
            for size in (int(s) for s in args.sizes.split(",")):
                print(f"--- {size} learners")
                found = one_size(hub, store, size, args.port, args.timeout, args.seconds)
                print(json.dumps(found))
                sizes.append(found)
                hub.down(volumes=True)
                if "not_ready" in found or "unhealthy_after" in found:
                    break
        finally:
            hub.down(volumes=True)
        holds = max((s["learners"] for s in sizes if "not_ready" not in s and "unhealthy_after" not in s), default=0)
        summary = {
            "build_seconds": built,
            "cores": psutil.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "sizes": sizes,
            "largest_class_held": holds,
        }
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(summary, indent=1))  # before the hub's folder goes
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
