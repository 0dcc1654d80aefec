"""The `lab` command in tests: `lab` runs it in this process (Typer's CliRunner), `lab_process` in its own, as a
learner's shell does. Both give a `subprocess.CompletedProcess` (returncode, stdout, stderr).

Use `lab` unless the test needs what only a process gives: signals, a process tree's exit, services or runners that
must outlive the command (`lab up`, `lab restart`, a detached start), a command's start timed from the caller's
side, another current folder or environment seen from a fresh interpreter, or the console script itself.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping

import psutil
import pytest

from lab_runtime.cli.common import PIPE_WIDTH, err, out
from lab_runtime.labs.scripting import LAB as LAB
from lab_runtime.labs.scripting import observe

Ran = subprocess.CompletedProcess[str]


def lab(*args: str, env: Mapping[str, str] | None = None) -> Ran:
    """`lab ARGS` in this process, with `env` set for the call only. Its consoles are as wide as a `lab` process's
    writing to a pipe (COLUMNS, else PIPE_WIDTH), however pytest was started; an exception other than the
    command's own exit propagates with its traceback."""
    call_env = dict(env or {})
    columns = call_env.get("COLUMNS", os.environ.get("COLUMNS", ""))
    with pytest.MonkeyPatch.context() as mp:
        for console in (out, err):
            mp.setattr(console, "width", int(columns) if columns.isdigit() else PIPE_WIDTH)
        return observe(*args, check=False, env=call_env)


def lab_process(*args: str, env: Mapping[str, str] | None = None, timeout: float = 180) -> Ran:
    """`lab ARGS` in its own process, with this process's environment and `env` on top."""
    return subprocess.run(
        [*LAB, *args], env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )


def one_line_error(result: Ran, message: str) -> None:
    """Exit code 1 and one line on stderr that says `message`; never a traceback."""
    assert result.returncode == 1, result
    assert "Traceback" not in result.stdout + result.stderr, result
    assert message in result.stderr, result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr


def ok(result: Ran) -> str:
    """The stdout of a command that must have exited 0; else the test fails with what it said."""
    assert result.returncode == 0, result
    return result.stdout


def sandbox_processes(env: Mapping[str, str]) -> list[psutil.Process]:
    """Every process of the running sandbox `lab status` names, with their children: what `lab down` must end."""
    family = [psutil.Process(row["pid"]) for row in json.loads(lab("status", "--json", env=env).stdout)]
    return family + [c for p in family for c in p.children(recursive=True)]
