"""Shared fixtures: free ports and an isolated state directory for every sandbox a test starts."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab_runtime.settings import HOST


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
