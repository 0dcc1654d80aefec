"""The admin token that guards the model service's fault endpoints (only drills and `lab reset` hold it)."""

from __future__ import annotations

import contextlib
import os
import secrets

from lab_runtime.errors import ConfigError
from lab_runtime.settings import Settings


def admin_token(settings: Settings) -> str:
    """`LAB_ADMIN_TOKEN`, or the token in `<state>/admin.token`, made (mode 0600) by whoever needs it first."""
    if settings.admin_token:
        return settings.admin_token
    path = settings.admin_token_path
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".admin.token.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(24))
        with contextlib.suppress(FileExistsError):  # another process made it first: theirs wins
            os.link(tmp, path)
        tmp.unlink()
    token = path.read_text().strip()
    if not token:
        raise ConfigError(f"{path} is empty; delete it and restart the sandbox (`lab down && lab up`)")
    return token
