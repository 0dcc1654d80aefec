"""The sandbox's services as both runtimes run them: commands, ports, environment, and how to tell each is healthy.

The local runtime starts these specs with the Supervisor; the compose runtime judges its containers' health with
the same probes (the health URL on the published port, or the heartbeat file in the shared state dir).
"""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lab_runtime import loopback
from lab_runtime.backends import healthcheck
from lab_runtime.settings import HOST, Settings

SERVICES = ("mlflow", "model-service", "registry-watcher", "pipeline", "monitor")
AGENT = "console-agent"  # a service only while the sandbox has a console to report to (LAB_CONSOLE_URL, _TOKEN)
# The setting that moves each published port: one source for every message that names it.
PORT_SETTINGS = {
    "mlflow": "LAB_MLFLOW_PORT",
    "model-service": "LAB_SERVICE_PORT",
    "monitor": "LAB_MONITOR_PORT",
    "prometheus": "LAB_PROMETHEUS_PORT",
    "grafana": "LAB_GRAFANA_PORT",
}


@dataclass(frozen=True)
class ServiceSpec:
    """How to run one service and how to tell that it is healthy (an HTTP URL or a heartbeat file)."""

    name: str
    argv: list[str]
    port: int | None = None
    port_setting: str | None = None  # the setting that moves `port`, named when the port is taken
    health_url: str | None = None
    heartbeat: Path | None = None
    depends_on: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceStatus:
    """One service's state as a backend reports it."""

    name: str
    running: bool
    healthy: bool
    pid: int | None
    port: int | None
    uptime: float | None
    log: str


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as `LAB_*` variables, so every child process sees exactly these settings."""
    env = {f"LAB_{k.upper()}": str(v) for k, v in settings.model_dump().items() if v is not None}
    env["LAB_STATE_DIR"] = str(settings.root)
    return env


def sandbox_specs(settings: Settings) -> list[ServiceSpec]:
    """The services of the sandbox, in SERVICES' order. Each tolerates the others being late, so all start in
    parallel."""
    env = {
        **settings_env(settings),
        "MLFLOW_TRACKING_URI": settings.mlflow_url,
        "MLFLOW_REGISTRY_URI": settings.mlflow_url,
    }
    mlflow_env = {
        **env,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # lean: no huey job runners
    }
    return [
        ServiceSpec(
            "mlflow",
            [
                sys.executable,
                "-m",
                "lab_runtime.registry.server",  # `mlflow server`'s app in one process, not two
                "--backend-store-uri",
                f"sqlite:///{settings.mlflow_db_path}",
                "--artifacts-destination",
                str(settings.artifacts_dir),
                "--host",
                HOST,
                "--port",
                str(settings.mlflow_port),
            ],
            port=settings.mlflow_port,
            port_setting=PORT_SETTINGS["mlflow"],
            health_url=f"{settings.mlflow_url}/health",
            env=mlflow_env,
        ),
        ServiceSpec(
            "model-service",
            [sys.executable, "-m", "lab_runtime.service"],
            port=settings.service_port,
            port_setting=PORT_SETTINGS["model-service"],
            health_url=f"{settings.service_url}/health",
            env=env,
        ),
        ServiceSpec(
            "registry-watcher",
            [sys.executable, "-m", "lab_runtime.registry.watcher"],
            heartbeat=settings.run_dir / "registry-watcher.heartbeat",
            env=env,
        ),
        ServiceSpec(
            "pipeline",
            [sys.executable, "-m", "lab_runtime.pipeline"],
            heartbeat=settings.pipeline_status_path,
            env=env,
        ),
        ServiceSpec(
            "monitor",
            [sys.executable, "-m", "lab_runtime.monitor"],
            port=settings.monitor_port,
            port_setting=PORT_SETTINGS["monitor"],
            health_url=f"{settings.monitor_url}/health",
            env=env,
        ),
        *([agent_spec(settings, env)] if settings.console_url and settings.console_token else []),
    ]


def agent_spec(settings: Settings, env: dict[str, str]) -> ServiceSpec:
    """The console agent (`lab_runtime.console`): a service of the sandbox while it has a console to report to."""
    return ServiceSpec(
        AGENT,
        [sys.executable, "-m", "lab_runtime.console"],
        heartbeat=settings.console_agent_heartbeat,
        env=env,
    )


def answers(spec: ServiceSpec) -> bool:
    """The service's own health signal: its HTTP health URL answers 200, or its heartbeat file is fresh."""
    if spec.health_url:
        try:
            return loopback.get(spec.health_url, timeout=1.0).status_code == 200
        except loopback.LoopbackError:
            return False
    if spec.heartbeat:
        return healthcheck.healthy(str(spec.heartbeat))
    return True


def port_free(port: int) -> bool:
    """Whether a server could listen on `port` of the loopback address now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is free
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True
