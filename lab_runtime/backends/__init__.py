"""Runtime backends: one interface to run the sandbox as local processes or as a Docker Compose stack."""

from __future__ import annotations

from lab_runtime.backends.base import Backend
from lab_runtime.errors import ConfigError
from lab_runtime.settings import Settings


def get_backend(settings: Settings) -> Backend:
    """The backend the settings name."""
    if settings.runtime == "local":
        from lab_runtime.backends.local import LocalBackend

        return LocalBackend(settings)
    if settings.runtime == "compose":
        from lab_runtime.backends.compose import ComposeBackend

        return ComposeBackend(settings)
    raise ConfigError(f"unknown runtime {settings.runtime!r}; use local or compose (LAB_RUNTIME or --runtime)")


__all__ = ["Backend", "get_backend"]
