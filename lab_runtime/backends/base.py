"""The interface every runtime backend implements, and the optional capabilities one may declare; drills and the CLI
use only these."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from lab_runtime.backends.services import ServiceStatus
from lab_runtime.errors import RuntimeNotReady


class ContainerControl(Protocol):
    """What a runtime that runs each service in a container can do to one: resource limits and a slow network."""

    def container_id(self, service: str) -> str:
        """The id of the service's container now (a re-created one has a new id)."""

    def limits(self, service: str) -> dict[str, int]:
        """The container's memory limit (bytes) and CPU quota (µs per 100 ms); 0 means none."""

    def limit(self, service: str, memory_mb: int | None = None, cpus: float | None = None) -> None:
        """Cut the memory limit and CPU quota of the running container."""

    def unlimit(self, service: str, previous: dict[str, int], memory: bool = True, cpu: bool = True) -> None:
        """Put back the limits `limits` returned, those named."""

    def delay(self, service: str, delay_ms: int, jitter_ms: int = 0) -> None:
        """Delay every packet the container sends by `delay_ms`."""

    def undelay(self, service: str) -> bool:
        """Remove the delay; False when there was none."""


class Backend(Protocol):
    @property
    def container_control(self) -> ContainerControl | None:
        """The backend's container controls; None when it does not run services in containers."""

    def up(self, profiles: Sequence[str] = ()) -> list[str]:
        """Start every service not running and wait until all are healthy; names the ones started.
        `profiles` (compose only) adds optional services: observability, load, scale."""

    def down(self, volumes: bool = False) -> list[str]:
        """Stop every service and leave no process behind; names the ones stopped.
        `volumes` (compose only) also removes the stack's named volumes (MLflow's store, Prometheus, Grafana)."""

    def status(self) -> list[ServiceStatus]: ...

    def logs(self, service: str, lines: int = 40) -> str:
        """The last `lines` lines of the service's log ("" when it has logged nothing)."""

    def log_location(self, service: str) -> str:
        """Where the service's log is, as `lab logs` names it: a file, or the command that shows it."""

    def clear_unreadable(self) -> list[str]:
        """Forget runtime state that cannot be used (for `lab down --force`); says what, one line each."""

    def require(self, *services: str) -> None:
        """Raise RuntimeNotReady unless the named services are running and healthy."""

    def kill(self, service: str) -> None: ...

    def pause(self, service: str) -> None: ...

    def resume(self, service: str) -> None: ...

    def restart(self, service: str) -> None:
        """Stop the service whatever its state (paused, hung, dead) and start it again; waits until healthy."""

    def ensure_running(self, service: str) -> bool:
        """Start the service if it is not running (a paused one is resumed); True if anything was done."""


def require_healthy(rows: Sequence[ServiceStatus], services: Sequence[str]) -> None:
    """`Backend.require` for every backend: RuntimeNotReady naming the services down (`lab up` starts the sandbox
    on the runtime it was started with)."""
    down = [s.name for s in rows if s.name in services and not s.healthy]
    if down:
        raise RuntimeNotReady(f"the sandbox is not running ({', '.join(down)} down); start it with `lab up`")
