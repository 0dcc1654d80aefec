"""What the labs' reference solutions and scripted scenarios share: run a `lab` command as a learner does, and
wait for a condition."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import TypeVar

LAB = [sys.executable, "-m", "lab_runtime.cli"]
T = TypeVar("T")


def lab(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`lab ARGS...` in its own process; with `check`, a failure ends the script naming the command and its error."""
    result = subprocess.run([*LAB, *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise SystemExit(f"`lab {' '.join(args)}` failed: {result.stderr or result.stdout}")
    return result


def wait(what: str, condition: Callable[[], T], timeout: float = 300.0) -> T:
    """The first truthy value of `condition()`, polled every second; ends the script after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(1.0)
    raise SystemExit(f"gave up waiting for {what} after {timeout:.0f}s")
