"""The sandbox's service specs, built from the settings, and the health probes both runtimes judge them by."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab_runtime.backends.services import (
    AGENT,
    PORT_SETTINGS,
    SERVICES,
    ServiceSpec,
    answers,
    port_free,
    sandbox_specs,
    settings_env,
)
from lab_runtime.settings import Settings
from tests.conftest import http_server


def settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        state_dir=tmp_path / "state",
        mlflow_port=15000,
        service_port=18000,
        monitor_port=18100,
        admin_token=None,
        pipeline_rate=7.5,
    )


def test_the_specs_run_every_service_on_the_ports_and_paths_the_settings_give(tmp_path: Path) -> None:
    current = settings(tmp_path)
    root = current.root
    specs = {s.name: s for s in sandbox_specs(current)}
    assert list(specs) == list(SERVICES)
    mlflow = specs["mlflow"]
    assert mlflow.argv[:3] == [sys.executable, "-m", "lab_runtime.registry.server"]
    assert mlflow.argv[mlflow.argv.index("--port") + 1] == "15000"
    assert mlflow.argv[mlflow.argv.index("--backend-store-uri") + 1] == f"sqlite:///{root}/mlflow.db"
    assert mlflow.argv[mlflow.argv.index("--artifacts-destination") + 1] == str(root / "artifacts")
    assert {n: s.argv for n, s in specs.items() if n != "mlflow"} == {
        "model-service": [sys.executable, "-m", "lab_runtime.service"],
        "registry-watcher": [sys.executable, "-m", "lab_runtime.registry.watcher"],
        "pipeline": [sys.executable, "-m", "lab_runtime.pipeline"],
        "monitor": [sys.executable, "-m", "lab_runtime.monitor"],
    }
    assert {n: (s.port, s.port_setting, s.health_url, s.heartbeat) for n, s in specs.items()} == {
        "mlflow": (15000, "LAB_MLFLOW_PORT", "http://127.0.0.1:15000/health", None),
        "model-service": (18000, "LAB_SERVICE_PORT", "http://127.0.0.1:18000/health", None),
        "registry-watcher": (None, None, None, root / "run" / "registry-watcher.heartbeat"),
        "pipeline": (None, None, None, root / "run" / "pipeline.status.json"),
        "monitor": (18100, "LAB_MONITOR_PORT", "http://127.0.0.1:18100/health", None),
    }
    assert all(not s.depends_on for s in specs.values())  # all tolerate each other being late: one level


def test_every_service_sees_the_settings_and_the_registry_only_mlflow_runs_lean(tmp_path: Path) -> None:
    specs = {s.name: s for s in sandbox_specs(settings(tmp_path))}
    for spec in specs.values():
        assert spec.env["LAB_STATE_DIR"] == str(tmp_path / "state")
        assert spec.env["LAB_PIPELINE_RATE"] == "7.5"
        assert spec.env["MLFLOW_TRACKING_URI"] == spec.env["MLFLOW_REGISTRY_URI"] == "http://127.0.0.1:15000"
    assert [n for n, s in specs.items() if s.env.get("MLFLOW_SERVER_ENABLE_JOB_EXECUTION") == "false"] == ["mlflow"]


def test_the_settings_environment_has_every_setting_but_the_unset_ones_and_the_resolved_state_dir(
    tmp_path: Path,
) -> None:
    env = settings_env(settings(tmp_path))
    assert env["LAB_STATE_DIR"] == str((tmp_path / "state").resolve())
    assert env["LAB_MONITOR_PORT"] == "18100"
    assert "LAB_ADMIN_TOKEN" not in env  # None: the child finds its own default, as the host does
    assert set(env) == {f"LAB_{k.upper()}" for k, v in settings(tmp_path).model_dump().items() if v is not None}


def test_every_published_port_names_the_setting_that_moves_it() -> None:
    assert all(name.removeprefix("LAB_").lower() in Settings.model_fields for name in PORT_SETTINGS.values())
    named = {s.name: s.port_setting for s in sandbox_specs(Settings()) if s.port is not None}
    assert named == {"mlflow": "LAB_MLFLOW_PORT", "model-service": "LAB_SERVICE_PORT", "monitor": "LAB_MONITOR_PORT"}


@pytest.fixture
def http_ok() -> Iterator[str]:
    """A real HTTP server on a free loopback port that answers 200."""
    with http_server(http.server.SimpleHTTPRequestHandler) as url:
        yield f"{url}/"


def test_a_service_answers_by_its_health_url(http_ok: str) -> None:
    assert answers(ServiceSpec("web", [], health_url=http_ok))
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert not answers(ServiceSpec("web", [], health_url=f"http://127.0.0.1:{port}/health"))


def test_a_service_answers_by_a_fresh_heartbeat_file(tmp_path: Path) -> None:
    beat = tmp_path / "svc.heartbeat"
    spec = ServiceSpec("svc", [], heartbeat=beat)
    assert not answers(spec)  # none written yet
    beat.write_text("")
    assert answers(spec)
    stale = time.time() - 6
    os.utime(beat, (stale, stale))
    assert not answers(spec)


def test_a_port_is_free_until_something_listens_on_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert not port_free(port)
    assert port_free(port)


def test_the_containers_health_check_runs_on_the_standard_library_alone(http_ok: str, tmp_path: Path) -> None:
    """Compose runs it every few seconds in every container, with a short timeout: it must start in a blink."""
    probe = (
        "import runpy, sys\n"
        "sys.argv = ['healthcheck', sys.argv[1]]\n"
        "try:\n    runpy.run_module('lab_runtime.backends.healthcheck', run_name='__main__', alter_sys=True)\n"
        "except SystemExit as done:\n    code = done.code\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'httpx', 'pydantic', 'mlflow', 'pandas'})\n"
        "print(code, heavy)\n"
    )
    up = subprocess.run([sys.executable, "-c", probe, http_ok], capture_output=True, text=True, timeout=30)
    down = subprocess.run(
        [sys.executable, "-m", "lab_runtime.backends.healthcheck", str(tmp_path / "none.heartbeat")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (up.stdout, up.stderr) == ("0 []\n", "")
    assert (down.returncode, down.stderr) == (1, "")  # no runpy warning either


def test_the_console_agent_is_a_service_only_while_a_console_and_a_token_are_set(tmp_path: Path) -> None:
    plain = settings(tmp_path)
    assert [s.name for s in sandbox_specs(plain)] == list(SERVICES)
    half = plain.model_copy(update={"console_url": "http://127.0.0.1:8800"})
    assert [s.name for s in sandbox_specs(half)] == list(SERVICES)
    joined = half.model_copy(update={"console_token": "labc_x"})
    *_, agent = sandbox_specs(joined)
    assert (agent.name, agent.argv[1:], agent.heartbeat) == (
        AGENT,
        ["-m", "lab_runtime.console"],
        joined.console_agent_heartbeat,
    )
    assert (agent.env["LAB_CONSOLE_URL"], agent.env["LAB_CONSOLE_TOKEN"]) == ("http://127.0.0.1:8800", "labc_x")
