"""The local runtime (the embedded default): the sandbox's service specs run as supervised subprocesses."""

from __future__ import annotations

import signal
from collections.abc import Sequence
from pathlib import Path

import psutil

from lab_runtime.backends.base import ContainerControl, require_healthy
from lab_runtime.backends.services import AGENT, ServiceSpec, ServiceStatus, sandbox_specs
from lab_runtime.backends.supervisor import Supervisor
from lab_runtime.errors import ConfigError, RuntimeNotReady
from lab_runtime.settings import Settings


class LocalBackend:
    container_control: ContainerControl | None = None  # processes, not containers

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.specs = sandbox_specs(settings)
        self.supervisor = Supervisor(settings.run_dir, settings.logs_dir)

    def up(self, profiles: Sequence[str] = ()) -> list[str]:
        if profiles:
            raise ConfigError(f"profiles ({', '.join(profiles)}) need the compose runtime: lab up --runtime compose")
        self.settings.ensure_dirs()
        return self.supervisor.start(self.specs, self.settings.start_timeout)

    def down(self, volumes: bool = False) -> list[str]:
        if volumes:
            raise ConfigError("--volumes is for the compose runtime; the local runtime's data is in the state dir")
        # the console agent too, whether or not the settings still name a console
        return self.supervisor.stop([*(s.name for s in self.specs if s.name != AGENT), AGENT])

    def clear_unreadable(self) -> list[str]:
        return [f"the unreadable pid file of {name}" for name in self.supervisor.clear_unreadable()]

    def status(self) -> list[ServiceStatus]:
        return self.supervisor.status(self.specs)

    def logs(self, service: str, lines: int = 40) -> str:
        path = self._log_path(service)
        try:
            with open(path, errors="replace") as fh:
                return "".join(fh.readlines()[-lines:])
        except FileNotFoundError:
            raise RuntimeNotReady(
                f"{service} has no log yet ({path}): it has never been started in this sandbox; start it with `lab up`"
            ) from None

    def log_location(self, service: str) -> str:
        return str(self._log_path(service))

    def _log_path(self, service: str) -> Path:
        return self.settings.logs_dir / f"{self._spec(service).name}.log"

    def require(self, *services: str) -> None:
        require_healthy(self.status(), services)

    def _spec(self, service: str) -> ServiceSpec:
        for spec in self.specs:
            if spec.name == service:
                return spec
        raise RuntimeNotReady(f"unknown service {service!r}; services are {[s.name for s in self.specs]}")

    def _signal(self, service: str, sig: signal.Signals) -> None:
        if not self.supervisor.signal(self._spec(service).name, sig):
            raise RuntimeNotReady(f"{service} is not running; start the sandbox with `lab up`")

    def kill(self, service: str) -> None:
        self._signal(service, signal.SIGKILL)

    def pause(self, service: str) -> None:
        self._signal(service, signal.SIGSTOP)

    def resume(self, service: str) -> None:
        self._signal(service, signal.SIGCONT)

    def restart(self, service: str) -> None:
        spec = self._spec(service)
        self.supervisor.stop([spec.name])
        self.settings.ensure_dirs()
        self.supervisor.start([spec], self.settings.start_timeout)

    def ensure_running(self, service: str) -> bool:
        spec = self._spec(service)
        proc = self.supervisor.process(spec.name)
        if proc is not None:
            if proc.status() != psutil.STATUS_STOPPED:
                return False
            self.resume(service)
            return True
        self.settings.ensure_dirs()
        self.supervisor.start([spec], self.settings.start_timeout)
        return True
