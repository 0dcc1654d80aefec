"""Some of the sandbox's services, started as `lab up` starts them (same commands, a private state dir, free
ports), for integration tests that need only those; always stopped, and no process left behind."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lab_runtime.backends.services import sandbox_specs
from lab_runtime.backends.supervisor import Supervisor
from lab_runtime.modeling.model import train_and_register
from lab_runtime.settings import Settings, load_settings
from tests.conftest import free_port
from tests.sandbox import wait_for


@contextlib.contextmanager
def running_services(state_dir: Path, *names: str) -> Iterator[Settings]:
    """Start the services `names` (in parallel, each waited for until healthy); the settings they run with are
    also in os.environ while the block runs, so `lab` commands in the test address the same sandbox."""
    with pytest.MonkeyPatch.context() as mp:
        env = {
            "LAB_STATE_DIR": str(state_dir),
            "LAB_MLFLOW_PORT": str(free_port()),
            "LAB_SERVICE_PORT": str(free_port()),
            "LAB_MONITOR_PORT": str(free_port()),
        }
        for key, value in env.items():
            mp.setenv(key, value)
        settings = load_settings()
        settings.ensure_dirs()
        specs = [s for s in sandbox_specs(settings) if s.name in names]
        assert {s.name for s in specs} == set(names), f"unknown services in {names}"
        supervisor = Supervisor(settings.run_dir, settings.logs_dir)
        supervisor.start(specs, settings.start_timeout)
        try:
            yield settings
        finally:
            pids = [r.pid for r in supervisor.status(specs) if r.pid]
            supervisor.stop(list(names))
            assert all(not Path(f"/proc/{pid}").exists() for pid in pids), "a service outlived its stop"


@contextlib.contextmanager
def serving_champion(state_dir: Path, *others: str) -> Iterator[Settings]:
    """MLflow and the model service (and `others`), with a trained version as @champion that the service serves."""
    with running_services(state_dir, "mlflow", "model-service", *others) as settings:
        train_and_register(settings.mlflow_url, settings.model_name, alias="champion")
        wait_for(lambda: _ready(settings), 60, "the service's /ready")
        yield settings


def _ready(settings: Settings) -> bool:
    try:
        return httpx.get(f"{settings.service_url}/ready", timeout=2).status_code == 200
    except httpx.TransportError:
        return False
