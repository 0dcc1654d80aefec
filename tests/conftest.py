"""Shared fixtures: free ports and an isolated state directory for every sandbox a test starts."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab_runtime.settings import HOST

# pytest-xdist's workers set COLUMNS=80 and LINES=24; the CLI, in-process or in a `lab` process, must see its output
# as a pipe gives it, however the tests are run.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def lab_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """LAB_* variables for a private sandbox (own state dir, free ports), also set in os.environ."""
    env = {
        "LAB_STATE_DIR": str(tmp_path / "state"),
        "LAB_MLFLOW_PORT": str(free_port()),
        "LAB_SERVICE_PORT": str(free_port()),
        "LAB_MONITOR_PORT": str(free_port()),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    yield env
