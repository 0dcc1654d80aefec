"""Serving benchmark: our model service vs `mlflow models serve` of the same model, under the same Locust load; and
ours again with an output policy of no rules (each decision checked against none), for the cost of the check.

Target: at least 1.5x MLflow's throughput with a p99 no worse. Results go to bench-results/serving.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

from lab_runtime.backends import get_backend
from lab_runtime.errors import LabError
from lab_runtime.files.atomic import write_atomic
from lab_runtime.load import locust_command, read_summary
from lab_runtime.modeling.columns import FEATURES
from lab_runtime.modeling.data import DataGenerator
from lab_runtime.modeling.model import train_and_register
from lab_runtime.service.policy import load_policy
from lab_runtime.settings import HOST, Settings, load_settings

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parents[1] / "bench-results" / "serving.json"
TARGET_RATIO = 1.5
MAX_FAILURE_RATE = 0.01
WARMUP_SECONDS = 3.0
SIDES = {
    "lab": "ours (lab_runtime.service)",
    "mlflow": "mlflow models serve",
    "lab-no-policy": "ours, no policy rules",
}


class BenchError(RuntimeError):
    """Something the benchmark needs did not work (as opposed to a missed target)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for(
    url: str, ok: Callable[[httpx.Response], bool], timeout: float, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll `url` until `ok(response)`; fail early if `proc` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise BenchError(f"the server process exited with {proc.returncode} before {url} answered")
        try:
            if ok(httpx.get(url, timeout=2.0)):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise BenchError(f"{url} not ready after {timeout:.0f}s")


def start_mlflow_serve(settings: Settings, port: int, tmp: Path) -> subprocess.Popen[bytes]:
    """`mlflow models serve` of @champion, one worker, in its own process group."""
    # MLflow runs `uvicorn` from PATH via bash; a shim makes it this interpreter (the venv's console
    # scripts may carry another interpreter in their shebang, and uvicorn may not be on PATH at all).
    shim = tmp / "bin" / "uvicorn"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m uvicorn "$@"\n')
    shim.chmod(0o755)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": settings.mlflow_url,
        "MLFLOW_REGISTRY_URI": settings.mlflow_url,
        "PATH": f"{shim.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    argv = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{settings.model_name}@champion",
            "--env-manager", "local", "--host", HOST, "--port", str(port), "--workers", "1"]  # fmt: skip
    with open(tmp / "mlflow-serve.log", "wb") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)  # fmt: skip


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, give it 10 s, then SIGKILL whatever is left of it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10.0)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:  # the group outlives its leader until uvicorn has shut down
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def request_body(kind: str, record: dict[str, Any], request_id: str) -> tuple[str, dict[str, Any]]:
    if kind.startswith("lab"):
        return "/predict", {"request_id": request_id, "features": record}
    return "/invocations", {"dataframe_records": [record]}


def check_and_warm(kind: str, url: str, records: list[dict[str, Any]]) -> int:
    """One sample request must answer 200; then WARMUP_SECONDS of sequential requests. Returns their count."""
    with httpx.Client(base_url=url, timeout=10.0) as client:
        path, body = request_body(kind, records[0], f"check-{kind}")
        sample = client.post(path, json=body)
        if sample.status_code != 200:
            raise BenchError(f"{SIDES[kind]}: sample {path} answered {sample.status_code}: {sample.text[:300]}")
        print(f"  {SIDES[kind]} sample answer: {sample.text.strip()[:160]}")
        n, deadline = 0, time.monotonic() + WARMUP_SECONDS
        while time.monotonic() < deadline:
            path, body = request_body(kind, records[n % len(records)], f"warmup-{kind}-{n}")
            client.post(path, json=body).raise_for_status()
            n += 1
    return n


def run_locust(kind: str, url: str, args: argparse.Namespace, tmp: Path, records_path: Path) -> dict[str, Any]:
    """Headless Locust in its own process (it monkey-patches on import); the CSV's Aggregated row."""
    prefix = tmp / f"locust-{kind}"
    argv = locust_command(HERE / "locustfile.py", url, args.users, args.spawn_rate, args.duration, prefix)
    target = "lab" if kind.startswith("lab") else kind  # the locustfile's request shape
    env = {**os.environ, "BENCH_TARGET": target, "BENCH_RECORDS": str(records_path)}
    with open(f"{prefix}.log", "wb") as log:
        rc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp, timeout=args.duration + 120)
    summary = read_summary(prefix)
    if rc.returncode != 0 or summary is None:
        raise BenchError(f"locust against {SIDES[kind]} failed (exit {rc.returncode}); read {prefix}.log")
    return asdict(summary)


def dropped_log_rows(service_url: str) -> float:
    """Prediction-log rows our service dropped so far (its queue overflowed): logging must keep up."""
    text = httpx.get(f"{service_url}/metrics", timeout=5.0).text
    match = re.search(r"^lab_prediction_log_dropped_total (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def without_rules(settings: Settings) -> None:
    """Put a policy of the built-in thresholds and no rules in force; wait until the service applies it."""
    policy = load_policy().model_copy(update={"never": []})
    write_atomic(settings.policy_path, json.dumps(policy.model_dump()).encode())  # JSON is YAML
    wait_for(f"{settings.service_url}/policy", lambda r: r.json()["never"] == [], 10)


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace, version: str) -> dict[str, Any]:
    print(f"\n{args.users} users, spawn rate {args.spawn_rate}/s, {args.duration}s per side, {os.cpu_count()} CPUs")
    print(f"{'side':<28}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'failures':>10}{'requests':>10}")
    for kind, r in results.items():
        print(f"{SIDES[kind]:<28}{r['rps']:>9.1f}{r['p50_ms']:>9.0f}{r['p95_ms']:>9.0f}{r['p99_ms']:>9.0f}"
              f"{r['failures']:>10}{r['requests']:>10}")  # fmt: skip
    ours, theirs = results["lab"], results["mlflow"]
    ratio = ours["rps"] / theirs["rps"]
    p99_ok = ours["p99_ms"] <= theirs["p99_ms"]
    met = ratio >= TARGET_RATIO and p99_ok
    print(f"throughput ours/theirs: {ratio:.2f}x (target >= {TARGET_RATIO}x)")
    print(f"p99 ours {ours['p99_ms']:.0f} ms vs theirs {theirs['p99_ms']:.0f} ms: {'no worse' if p99_ok else 'WORSE'}")
    print(f"prediction-log rows dropped by our service: {ours['log_rows_dropped']:.0f}")
    unchecked = results["lab-no-policy"]
    policy_cost = ours["rps"] / unchecked["rps"]
    print(f"throughput with the output policy's rules checked / with none: {policy_cost:.3f}")
    print(f"target {'MET' if met else 'MISSED'}")
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model_version": version,
        "users": args.users,
        "spawn_rate": args.spawn_rate,
        "duration_s": args.duration,
        "cpu_count": os.cpu_count(),
        "results": results,
        "throughput_ratio": round(ratio, 3),
        "policy_on_off_throughput_ratio": round(policy_cost, 3),
        "p99_no_worse": p99_ok,
        "target": {"throughput_ratio": TARGET_RATIO, "p99_no_worse": True, "met": met},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=20, help="concurrent Locust users (default 20)")
    parser.add_argument("--spawn-rate", type=float, default=20, help="users started per second (default 20)")
    parser.add_argument("--duration", type=int, default=30, help="seconds of load per side (default 30)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-serving-"))  # the sandbox's state dir, and the bench's files
    os.environ.update(LAB_STATE_DIR=str(tmp), LAB_MLFLOW_PORT=str(free_port()), LAB_SERVICE_PORT=str(free_port()))
    settings = load_settings()
    backend = get_backend(settings)
    serve: subprocess.Popen[bytes] | None = None
    try:
        print(f"starting the sandbox in {tmp} ...")
        backend.up()
        version = train_and_register(settings.mlflow_url, settings.model_name, alias="champion").version
        wait_for(f"{settings.service_url}/model", lambda r: r.json().get("champion") == version, 60)
        print(f"model {settings.model_name} version {version} is @champion; starting `mlflow models serve` ...")
        port = free_port()
        mlflow_url = f"http://{HOST}:{port}"
        serve = start_mlflow_serve(settings, port, tmp)
        wait_for(f"{mlflow_url}/ping", lambda r: r.status_code == 200, 120, serve)

        frame = DataGenerator(settings.seed).production(0, 2000)[list(FEATURES)]
        records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records"))
        records_path = tmp / "records.json"
        records_path.write_text(json.dumps(records))
        urls = {"lab": settings.service_url, "mlflow": mlflow_url}
        for kind, url in urls.items():
            print(f"  {SIDES[kind]}: {check_and_warm(kind, url, records)} warm-up requests in {WARMUP_SECONDS:.0f}s")
        results = {}
        for kind, url in urls.items():  # one side at a time; both servers stay up throughout
            print(f"loading {SIDES[kind]} for {args.duration}s ...")
            results[kind] = run_locust(kind, url, args, tmp, records_path)
        results["lab"]["log_rows_dropped"] = dropped_log_rows(settings.service_url)
        print(f"loading {SIDES['lab-no-policy']} for {args.duration}s ...")
        without_rules(settings)
        results["lab-no-policy"] = run_locust("lab-no-policy", settings.service_url, args, tmp, records_path)
    except (BenchError, LabError, httpx.HTTPError) as exc:
        print(f"benchmark failed: {exc}\n(logs kept in {tmp})", file=sys.stderr)
        return 1
    finally:
        if serve is not None:
            stop_group(serve)
        backend.down()

    summary = report(results, args, version)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"results written to {RESULTS}")
    bad = [k for k, r in results.items() if r["failures"] > MAX_FAILURE_RATE * r["requests"]]
    if bad:
        print(f"too many failures (> {MAX_FAILURE_RATE:.0%}) on: {', '.join(SIDES[k] for k in bad)}", file=sys.stderr)
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
