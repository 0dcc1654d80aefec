"""Ralph, a real Learning Record Store (FastAPI, filesystem backend: `ralph_server.py`), started for a test on a
free port.

`make test` installs it in `.venv-lrs` (its FastAPI pin is older than the lab's, so it has a venv of its own)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from lab_runtime.settings import HOST
from tests.conftest import free_port
from tests.sandbox import wait_for

PYTHON = Path(__file__).resolve().parents[2] / ".venv-lrs" / "bin" / "python"
SERVER = Path(__file__).with_name("ralph_server.py")
USER, PASSWORD = "lab-tests", "lab-lrs-secret"
PASSWORD_HASH = "$2b$04$BrmMsgY/OGhhzuduuxOohujw6hKNslg4kax3rm/INeSE2jPUw/pD2"  # bcrypt of PASSWORD
HEADERS = {"X-Experience-API-Version": "1.0.3"}


@dataclass
class Ralph:
    url: str  # its xAPI endpoint
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "RALPH_APP_DIR": str(self.directory / "app"),
            "RALPH_AUTH_FILE": str(self.directory / "auth.json"),
            "RALPH_RUNSERVER_BACKEND": "fs",
            "RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH": str(self.directory / "data"),
        }
        with (self.directory / "ralph.log").open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [str(PYTHON), str(SERVER), HOST, str(self.port)],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        wait_for(self.up, 60, "Ralph to answer")

    def up(self) -> bool:
        assert self.process is not None and self.process.poll() is None, (self.directory / "ralph.log").read_text()
        try:
            return httpx.get(f"http://{HOST}:{self.port}/__lbheartbeat__", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(10)
        self.process = None

    def held(self) -> int:
        """How many statements the LRS holds now; -1 while it cannot say (a read racing a write)."""
        try:
            return len(self.statements())
        except httpx.HTTPError:
            return -1

    def statements(self) -> list[dict[str, Any]]:
        """Every statement the LRS holds, read back through its xAPI API (following `more`)."""
        found: list[dict[str, Any]] = []
        url: str | None = f"{self.url}statements?limit=100"
        while url:
            page = httpx.get(url, auth=(USER, PASSWORD), headers=HEADERS, timeout=10).raise_for_status().json()
            found += page["statements"]
            url = f"http://{HOST}:{self.port}{page['more']}" if page.get("more") else None
        return found


@contextmanager
def running_ralph(directory: Path, start: bool = True) -> Iterator[Ralph]:
    """Ralph with one basic-auth user (USER, PASSWORD) allowed everything; stopped on exit."""
    if not (PYTHON.parent / "ralph").exists():
        if os.environ.get("LAB_REQUIRE_TOOLS"):
            pytest.fail(
                f"LAB_REQUIRE_TOOLS is set but Ralph is not installed ({PYTHON.parent}); `make test` installs it"
            )
        pytest.skip(f"Ralph is not installed ({PYTHON.parent}); `make test` installs it")
    directory.mkdir(parents=True, exist_ok=True)
    agent = {"mbox": "mailto:lab-tests@example.org", "objectType": "Agent"}
    users = [{"agent": agent, "scopes": ["all"], "hash": PASSWORD_HASH, "username": USER}]
    (directory / "auth.json").write_text(json.dumps(users))
    port = free_port()
    ralph = Ralph(f"http://{HOST}:{port}/xAPI/", port, directory)
    try:
        if start:
            ralph.start()
        yield ralph
    finally:
        ralph.stop()
