"""When a learner's command started: the process's start time as the kernel recorded it, in wall-clock seconds.

A `lab` command journals the learner's move after its interpreter, imports and reads have run (0.3 s on a quiet
machine, seconds on a busy one); the grader times the move from this start instead. On Linux the kernel keeps the
start in clock ticks since boot (10 ms), converted here with a boot time exact to the microsecond (psutil's comes
from `/proc/stat` in whole seconds, up to a second off); elsewhere psutil's figure is used.
"""

from __future__ import annotations

import os
import sys
import time

_began: float | None = None  # the running `lab` command's start, once `command_began` has been called


def _start_ticks(pid: int) -> int:
    """Field 22 of /proc/<pid>/stat: the process's start in clock ticks after boot (Linux)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        data = stat.read()
    return int(data[data.rindex(")") + 2 :].split()[19])  # after the command's name, which may hold spaces


def process_identity(pid: int) -> float:
    """When process `pid` started, in seconds after boot: with the pid it names the process for good, where a
    wall-clock start moves whenever the system clock is set (psutil's `create_time` does, per process). Raises
    OSError or psutil.Error when there is no such process."""
    if sys.platform.startswith("linux"):
        return _start_ticks(pid) / os.sysconf("SC_CLK_TCK")
    import psutil

    return float(psutil.Process(pid).create_time())


def same_process(pid: int, after_boot: float) -> bool:
    """Whether `pid` is still the live process that started `after_boot` (its `process_identity`); a process
    killed but not reaped yet (a zombie) is not."""
    import psutil

    try:
        return abs(process_identity(pid) - after_boot) < 0.001 and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, OSError):
        return False


def process_started(pid: int | None = None) -> float:
    """When process `pid` (default: this one) started, as wall-clock seconds (within 10 ms, centred)."""
    pid = os.getpid() if pid is None else pid
    if sys.platform.startswith("linux"):
        ticks = _start_ticks(pid)
        per_second = os.sysconf("SC_CLK_TCK")
        boot = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
        return boot + (ticks + 0.5) / per_second  # half a tick: the kernel truncates
    import psutil

    return float(psutil.Process(pid).create_time())


def start_command(began: float | None = None) -> float:
    """Mark the start of a `lab` command: `began`, else now; returns it. `main()` passes the process's start."""
    global _began
    _began = time.time() if began is None else began
    return _began


def end_command() -> None:
    """The command has returned: nothing is dated from its start any more."""
    global _began
    _began = None


def command_began() -> float | None:
    """The running command's start (`start_command`), or None outside a command (a service, a drill runner)."""
    return _began
