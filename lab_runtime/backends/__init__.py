"""Runtime backends: one interface to run the sandbox as local processes or (later) a Compose stack."""

from __future__ import annotations

from lab_runtime.backends.base import Backend
from lab_runtime.errors import ConfigError
from lab_runtime.settings import Settings


def get_backend(settings: Settings) -> Backend:
    """The backend the settings name."""
    if settings.runtime == "local":
        from lab_runtime.backends.local import LocalBackend

        return LocalBackend(settings)
    raise ConfigError(
        f"runtime {settings.runtime!r} is not available in this version; use the local runtime "
        "(unset LAB_RUNTIME or pass --runtime local)"
    )


__all__ = ["Backend", "get_backend"]
