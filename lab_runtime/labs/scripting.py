"""What the labs' reference solutions and scripted scenarios share: run a `lab` command as a learner does, read
the sandbox through one in this process, and wait for a condition."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

LAB = [sys.executable, "-m", "lab_runtime.cli"]
T = TypeVar("T")


def lab(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`lab ARGS...` in its own process, as a learner's shell runs it (a move is dated from the process's start);
    with `check`, a failure ends the script naming the command and its error."""
    result = subprocess.run([*LAB, *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise SystemExit(f"`lab {' '.join(args)}` failed: {result.stderr or result.stdout}")
    return result


def observe(*args: str, check: bool = True, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`lab ARGS...` in this process (Typer's CliRunner), with `env` set for the call only: what a command that reads
    says (returncode, stdout, stderr) without an interpreter started per call, for conditions polled each second.
    With `check`, a failure ends the script as `lab` does; Ctrl-C stays Ctrl-C. An exception other than the
    command's own exit propagates with its traceback."""
    from typer.testing import CliRunner  # the CLI imports the labs: loaded when first called

    from lab_runtime.cli import app

    result = CliRunner().invoke(app, list(args), env=dict(env or {}), catch_exceptions=False)
    if result.exit_code == 130:  # the command turned Ctrl-C into its exit code: the script stops too
        raise KeyboardInterrupt
    if check and result.exit_code != 0:
        raise SystemExit(f"`lab {' '.join(args)}` failed: {result.stderr or result.stdout}")
    return subprocess.CompletedProcess(["lab", *args], result.exit_code, result.stdout, result.stderr)


def wait(what: str, condition: Callable[[], T | None], timeout: float = 300.0) -> T:
    """The first truthy value of `condition()` (None or another falsy value: not yet), polled every second; ends
    the script after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(1.0)
    raise SystemExit(f"gave up waiting for {what} after {timeout:.0f}s")
