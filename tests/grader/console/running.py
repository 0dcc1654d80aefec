"""A real console (`lab console serve`) and real console agents (`python -m lab_runtime.console`) as processes on
free loopback ports, for integration tests; each is killed and reaped when its block ends."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from lab_runtime.settings import HOST
from tests.cli import LAB
from tests.conftest import free_port
from tests.sandbox import wait_for


@dataclass
class Running:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def said(self) -> str:
        return self.log.read_text(errors="replace")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)


@contextlib.contextmanager
def console(store: Path, port: int | None = None, wait: bool = True) -> Iterator[Running]:
    """`lab console serve` with `store` on `port` (default: a free one), up once its sign-in page answers."""
    port = port or free_port()
    url = f"http://{HOST}:{port}"
    log = store.parent / f"console-{port}.log"
    store.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [*LAB, "console", "serve", "--port", str(port), "--store", str(store)],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "LAB_STATE_DIR": str(store.parent)},
        )  # fmt: skip
    try:
        if wait:
            wait_for(lambda: _answers(url + "/login") or proc.poll() is not None, 60, "the console's sign-in page")
            assert proc.poll() is None, log.read_text()
        yield Running(url, proc, log)
    finally:
        _stop(proc)


def agent_env(state_dir: Path, url: str, token: str, learner: str) -> dict[str, str]:
    return {
        "LAB_STATE_DIR": str(state_dir),
        "LAB_LEARNER": learner,
        "LAB_CONSOLE_URL": url,
        "LAB_CONSOLE_TOKEN": token,
    }


@contextlib.contextmanager
def agent(env: Mapping[str, str]) -> Iterator[Running]:
    """The console agent of the sandbox whose state dir `env` names (its services need not run)."""
    state = Path(env["LAB_STATE_DIR"])
    log = state / "agent-test.log"
    state.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lab_runtime.console"], stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )  # fmt: skip
    try:
        yield Running(env["LAB_CONSOLE_URL"], proc, log)
    finally:
        _stop(proc)
