"""Load tests with Locust, always in a process of its own (Locust monkey-patches the standard library on import).

Pure helpers shared by `lab load` and `tests/bench/bench_serving.py`: the duration syntax, the Locust
command line, and the summary of the CSV files Locust writes. Nothing here imports Locust.
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path

from lab_runtime.durations import parse_duration
from lab_runtime.errors import LabError

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


@dataclass(frozen=True)
class LoadSummary:
    """The `Aggregated` row of a Locust run: requests, failures, throughput and latency percentiles."""

    requests: int
    failures: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


def load_seconds(text: str) -> int:
    """Whole seconds of a load run's duration, written like "30s", "2m" or "1h30m"; at least one second."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise LabError(f"--duration: {exc}") from None
    if seconds < 1 or seconds != int(seconds):
        raise LabError(f"--duration {text!r}: a load run lasts a whole number of seconds, at least 1s")
    return int(seconds)


def locust_command(
    locustfile: Path, host: str, users: int, spawn_rate: float, seconds: int, csv_prefix: Path
) -> list[str]:
    """Headless Locust for `seconds`, writing `<csv_prefix>_stats.csv`; failures do not change its exit code."""
    return [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless",
            "-u", str(users), "-r", str(spawn_rate), "-t", f"{seconds}s", "--host", host,
            "--csv", str(csv_prefix), "--only-summary", "--exit-code-on-error", "0"]  # fmt: skip


def read_summary(csv_prefix: Path) -> LoadSummary | None:
    """The Aggregated row of `<csv_prefix>_stats.csv`; None if there is no such file or no request completed."""
    try:
        with Path(f"{csv_prefix}_stats.csv").open(newline="") as f:
            row = next((r for r in csv.DictReader(f) if r.get("Name") == "Aggregated"), None)
    except FileNotFoundError:
        return None
    if row is None or int(row["Request Count"]) == 0:
        return None
    return LoadSummary(
        requests=int(row["Request Count"]),
        failures=int(row["Failure Count"]),
        rps=float(row["Requests/s"]),
        p50_ms=float(row["50%"]),
        p95_ms=float(row["95%"]),
        p99_ms=float(row["99%"]),
    )
