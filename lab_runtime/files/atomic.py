"""Files other processes read while they change: written whole and swapped in, so a reader sees old or new."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """Replace `path` with `data` in one step (a temporary file beside it, then `os.replace`); with `mode`, the
    file has that mode (e.g. 0o600) from before its first byte is written."""
    tmp = path.with_name(f".{path.name}.tmp")
    if mode is None:
        tmp.write_bytes(data)
    else:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        os.fchmod(fd, mode)  # a temporary file left from before keeps its own mode otherwise
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    os.replace(tmp, path)


def write_json_atomic(path: Path, body: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(body).encode())


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, or None if there is none (yet) or it cannot be read."""
    try:
        body = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return body if isinstance(body, dict) else None
