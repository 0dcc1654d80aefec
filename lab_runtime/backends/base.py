"""The interface every runtime backend implements; drills and the CLI use only this."""

from __future__ import annotations

from typing import Protocol

from lab_runtime.supervisor import ServiceStatus

SERVICES = ("mlflow", "model-service", "registry-watcher", "pipeline", "monitor")


class Backend(Protocol):
    def up(self) -> list[str]:
        """Start every service not running and wait until all are healthy; names the ones started."""

    def down(self) -> list[str]:
        """Stop every service and leave no process behind; names the ones stopped."""

    def status(self) -> list[ServiceStatus]: ...

    def logs(self, service: str) -> str:
        """Path of the service's log."""

    def clear_unreadable(self) -> list[str]:
        """Forget runtime state files that cannot be read (for `lab down --force`); names the services."""

    def require(self, *services: str) -> None:
        """Raise RuntimeNotReady unless the named services are running and healthy."""

    def kill(self, service: str) -> None: ...

    def pause(self, service: str) -> None: ...

    def resume(self, service: str) -> None: ...

    def restart(self, service: str) -> None:
        """Stop the service whatever its state (paused, hung, dead) and start it again; waits until healthy."""

    def ensure_running(self, service: str) -> bool:
        """Start the service if it is not running (a paused one is resumed); True if anything was done."""
