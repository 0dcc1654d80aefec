"""Runtime backends: one interface to run the sandbox as local processes or as a Docker Compose stack.

The package imports nothing at load time, so `python -m lab_runtime.backends.healthcheck` (a container's health
check, run every few seconds) starts on the standard library alone."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lab_runtime.backends.base import Backend
    from lab_runtime.settings import Settings


def get_backend(settings: Settings) -> Backend:
    """The backend the settings name."""
    if settings.runtime == "local":
        from lab_runtime.backends.local import LocalBackend

        return LocalBackend(settings)
    if settings.runtime == "compose":
        from lab_runtime.backends.compose import ComposeBackend

        return ComposeBackend(settings)
    from lab_runtime.errors import ConfigError

    raise ConfigError(f"unknown runtime {settings.runtime!r}; use local or compose (LAB_RUNTIME or --runtime)")


__all__ = ["get_backend"]
