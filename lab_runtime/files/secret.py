"""A secret kept in a file of the sandbox's state dir: made once (mode 0600) by whoever needs it first."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from lab_runtime.errors import ConfigError


def secret_file(path: Path, make: Callable[[], str]) -> str:
    """The secret in `path`, written by `make()` first if there is none; two processes racing keep one."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(make())
        with contextlib.suppress(FileExistsError):  # another process made it first: theirs wins
            os.link(tmp, path)
        tmp.unlink()
    secret = path.read_text().strip()
    if not secret:
        raise ConfigError(f"{path} is empty; delete it and restart the sandbox (`lab down && lab up`)")
    return secret
