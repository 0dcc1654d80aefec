"""Benchmark: the instructor console with ten sandboxes' traffic.

- ten sandboxes, each a journal written at `--rate` events a second (a drill's life on a loop: drill.started,
  fault.injected, probe results, learner.declared, learner.action, drill.remediated, drill.ended, so the console
  grades as it would), each shipped by its real console agent (`python -m lab_runtime.console`); the console
  (`lab console serve`) with `--pages` instructor pages following `/live` (server-sent events, as the browser does);
- delay: for every event written, from its write in the sandbox (its journal `ts`) until a page first receives a
  fragment whose row for that sandbox holds it (`data-cursor` at or past its id): median, p95, max;
- the console's CPU (a share of one core) and resident memory (the most sampled) over `--seconds`; the agents' CPU.
Results: bench-results/console.json.
"""

from __future__ import annotations

import argparse
import bisect
import json
import re
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from grader.console.store import SqliteStore
from lab_runtime import events as kinds
from lab_runtime.journal import Journal
from tests.grader.console.running import agent, agent_env, console
from tests.sandbox import wait_for

RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "console.json"
DRILL = "incident-service-crash"
ROW = re.compile(r"data-learner='([^']+)' data-cursor='(\d+)'")


def drill_life(journal: Journal, learner: str, n: int) -> None:
    """The `n`th event of a drill run on a loop of 20: a start, an injection, probes, a declaration and a move, a
    remediation and an end."""
    run, step, now = f"{learner}-run-{n // 20}", n % 20, time.time()
    if step == 0:
        journal.append(kinds.DRILL_STARTED, {"drill": DRILL, "title": "t", "kind": "incident",
                       "diagnosis": "service-down", "seed": 1, "blind": False, "delay": 0.0, "time_limit": 600.0,
                       "hold": 2.0, "faults": ["service_crash"], "steady_state": [], "remediation": [], "tag": None},
                       run_id=run)  # fmt: skip
    elif step == 1:
        journal.append(kinds.FAULT_INJECTED, {"fault": 0, "type": "service_crash", "details": {}}, run_id=run)
    elif step == 8:
        journal.append(kinds.LEARNER_DECLARED, {"diagnosis": "service-down", "note": ""}, began=now)
    elif step == 10:
        journal.append(kinds.LEARNER_ACTION, {"action": "up"}, began=now)
    elif step == 18:
        held = {"span_start": now - 2, "seen_at": now - 2, "fixed_by": now - 3, "held": 2.0}
        journal.append(kinds.DRILL_REMEDIATED, held, run_id=run)
    elif step == 19:
        journal.append(kinds.DRILL_ENDED, {"drill": DRILL, "outcome": "remediated", "detail": None}, run_id=run)
    else:
        probe = {"steady": True, "remediated": False, "impact": True, "failing": ["up.model-service == 1"],
                 "values": {"up.model-service": 0.0}, "in_force": [True]}  # fmt: skip
        journal.append(kinds.PROBE_RESULT, probe, run_id=run)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sandboxes", type=int, default=10)
    parser.add_argument("--rate", type=float, default=2.0, help="events a second each sandbox writes")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--pages", type=int, default=1)
    args = parser.parse_args()
    learners = [f"learner{i:02d}" for i in range(args.sandboxes)]
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        root = Path(tmp)
        store_path = root / "console" / "console.db"
        issued = SqliteStore(store_path)
        tokens = {name: issued.issue("learner", name)[1] for name in learners}
        _, teacher = issued.issue("instructor", None)
        issued.close()
        written: dict[str, list[tuple[int, float]]] = {name: [] for name in learners}
        seen: dict[str, list[tuple[int, float]]] = {name: [] for name in learners}
        stop, unfollow, lock = threading.Event(), threading.Event(), threading.Lock()
        with console(store_path) as c, ExitStack() as stack:
            agents = [
                stack.enter_context(agent(agent_env(root / name, c.url, tokens[name], name))) for name in learners
            ]

            def follow() -> None:
                headers = {"Authorization": f"Bearer {teacher}"}
                with httpx.stream("GET", c.url + "/live", headers=headers, timeout=None, trust_env=False) as r:
                    data: list[str] = []
                    for line in r.iter_lines():
                        if unfollow.is_set():
                            return
                        if line.startswith("data: "):
                            data.append(line[6:])
                        elif not line and data:
                            now = time.time()
                            with lock:
                                for name, cursor in ROW.findall("\n".join(data)):
                                    if not seen[name] or int(cursor) > seen[name][-1][0]:
                                        seen[name].append((int(cursor), now))
                            data = []

            pages = [threading.Thread(target=follow, daemon=True) for _ in range(args.pages)]
            for p in pages:
                p.start()

            def write(name: str) -> None:
                journal = Journal(root / name / "journal.db", source="bench", learner=name)
                n, next_at = 0, time.monotonic()
                while not stop.is_set():
                    drill_life(journal, name, n)
                    last = journal.events(after_id=written[name][-1][0] if written[name] else 0)[-1]
                    written[name].append((last.id, last.ts))
                    n += 1
                    next_at += 1.0 / args.rate
                    stop.wait(max(next_at - time.monotonic(), 0))
                journal.close()

            joined = SqliteStore(store_path)
            wait_for(lambda: len(joined.sandboxes()) == len(learners), 120, "every sandbox's agent at the console")
            joined.close()
            wait_for(lambda: all(seen[n] for n in learners), 60, "every sandbox on the page")
            proc = psutil.Process(c.proc.pid)
            agent_procs = [psutil.Process(a.proc.pid) for a in agents]
            cpu0 = sum(proc.cpu_times()[:2])
            agents0 = sum(sum(p.cpu_times()[:2]) for p in agent_procs)
            started = time.monotonic()
            writers = [threading.Thread(target=write, args=(n,)) for n in learners]
            for w in writers:
                w.start()
            rss = 0
            while time.monotonic() - started < args.seconds:
                rss = max(rss, proc.memory_info().rss)
                time.sleep(0.5)
            elapsed = time.monotonic() - started
            cpu = (sum(proc.cpu_times()[:2]) - cpu0) / elapsed
            agents_cpu = (sum(sum(p.cpu_times()[:2]) for p in agent_procs) - agents0) / elapsed
            stop.set()
            for w in writers:
                w.join()
            time.sleep(3)  # the last events reach the page
            unfollow.set()
        delays, missing = [], 0
        for name in learners:
            cursors = [cursor for cursor, _ in seen[name]]
            for event_id, ts in written[name]:
                i = bisect.bisect_left(cursors, event_id)
                if i == len(cursors):
                    missing += 1
                else:
                    delays.append(seen[name][i][1] - ts)
    delays.sort()
    result: dict[str, Any] = {
        "sandboxes": args.sandboxes,
        "rate_per_sandbox": args.rate,
        "seconds": round(elapsed, 1),
        "pages": args.pages,
        "events": len(delays) + missing,
        "not_on_page": missing,
        "delay_s": {
            "median": round(statistics.median(delays), 3),
            "p95": round(delays[int(0.95 * (len(delays) - 1))], 3),
            "max": round(delays[-1], 3),
        },
        "console": {"cpu_share_of_a_core": round(cpu, 3), "rss_mb": round(rss / 2**20, 1)},
        "agents": {"cpu_share_of_a_core_each": round(agents_cpu / args.sandboxes, 3)},
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
