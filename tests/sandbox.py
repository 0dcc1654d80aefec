"""A real sandbox on free ports for integration tests: start it, train two versions, always stop it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab_runtime.backends.local import LocalBackend
from lab_runtime.modeling.model import Registered, train_and_register
from lab_runtime.settings import Settings, load_settings
from tests.conftest import free_port

# Every clock at a tenth (windows of 6 s, an evaluation a second, labels after 1 s, rules' `for` and drills'
# holds a tenth), and traffic to fill a window (300 rows; a verdict from 150, so a busy machine's slower pipeline
# still gets one): a test sees traffic, labels, alerts and drills in seconds. Drift reports only when asked, as
# by default.
FAST = {
    "LAB_TIME_SCALE": "0.1",
    "LAB_PIPELINE_RATE": "50",
    "LAB_MONITOR_MIN_ROWS": "150",
    "LAB_MONITOR_INTERVAL": "10",
}
# Real time (rules' `for`, drills' holds and limits as written) with short windows: the benchmarks' clock (their
# figures are on it) and the compose tests' (re-creating a container takes real seconds, whatever the scale).
REAL_CLOCK = {
    "LAB_TIME_SCALE": "1",
    "LAB_PIPELINE_RATE": "40",
    "LAB_MONITOR_MIN_ROWS": "200",
    "LAB_LABEL_DELAY": "1",
    "LAB_MONITOR_INTERVAL": "1",
    "LAB_MONITOR_WINDOW": "10",
    "LAB_QUALITY_WINDOW": "20",
}


@dataclass(frozen=True)
class Sandbox:
    settings: Settings
    backend: LocalBackend
    versions: list[Registered]


@contextlib.contextmanager
def running_sandbox(state_dir: Path, env: dict[str, str] | None = None, versions: int = 2) -> Iterator[Sandbox]:
    """Start every service with `env` on top of FAST, register `versions` versions (v1 is @champion), stop all."""
    with pytest.MonkeyPatch.context() as mp:
        ports = {
            "LAB_MLFLOW_PORT": str(free_port()),
            "LAB_SERVICE_PORT": str(free_port()),
            "LAB_MONITOR_PORT": str(free_port()),
        }
        for key, value in {**FAST, **ports, "LAB_STATE_DIR": str(state_dir), **(env or {})}.items():
            mp.setenv(key, value)
        settings = load_settings()
        backend = LocalBackend(settings)
        backend.up()
        try:
            registered = [
                train_and_register(
                    settings.mlflow_url,
                    settings.model_name,
                    C=1.0 if i == 0 else 0.001 * i,
                    alias="champion" if i == 0 else None,
                )
                for i in range(versions)
            ]
            yield Sandbox(settings, backend, registered)
        finally:
            pids = [r.pid for r in backend.status() if r.pid]
            backend.down()
            assert all(not Path(f"/proc/{pid}").exists() for pid in pids), "a sandbox process outlived `down`"


def wait_for(predicate: Callable[[], bool], timeout: float, what: str = "condition") -> float:
    """Seconds until `predicate` held; fails the test after `timeout`."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, f"{what} not met within {timeout:.0f}s"
        time.sleep(0.05)
    return time.monotonic() - started
