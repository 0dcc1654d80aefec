"""A small supervisor of real subprocesses: dependency-ordered parallel start, health waits, clean stop.

Each service runs in its own process group with a pid file under `run_dir` and a log under `logs_dir`,
so `lab down` from another shell finds and stops every process a service started, children included.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from lab_runtime.backends.services import ServiceSpec, ServiceStatus, answers, port_free
from lab_runtime.clock import process_identity, same_process
from lab_runtime.errors import ConfigError, PortInUse, ServiceStartFailed
from lab_runtime.files.atomic import write_json_atomic


@dataclass(frozen=True)
class ProcessRecord:
    """The pid file of a running service."""

    name: str
    pid: int
    create_time: float
    port: int | None
    started_at: float
    log: str
    after_boot: float | None = None  # `process_identity`: unlike create_time, not moved by a clock change


def start_order(specs: Sequence[ServiceSpec]) -> list[list[ServiceSpec]]:
    """Specs in levels: each level depends only on earlier ones, so a level can start in parallel."""
    by_name = {s.name: s for s in specs}
    for spec in specs:
        for dep in spec.depends_on:
            if dep not in by_name:
                raise ConfigError(f"service {spec.name!r} depends on unknown service {dep!r}")
    levels: list[list[ServiceSpec]] = []
    placed: set[str] = set()
    while len(placed) < len(specs):
        level = [s for s in specs if s.name not in placed and set(s.depends_on) <= placed]
        if not level:
            cycle = sorted(s.name for s in specs if s.name not in placed)
            raise ConfigError(f"services {cycle} depend on each other in a cycle")
        levels.append(level)
        placed |= {s.name for s in level}
    return levels


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


class Supervisor:
    def __init__(self, run_dir: Path, logs_dir: Path, cwd: Path | None = None) -> None:
        self.run_dir = run_dir
        self.logs_dir = logs_dir
        self.cwd = cwd
        self._children: dict[str, subprocess.Popen[bytes]] = {}  # spawned by this process: reaped on stop

    def _pidfile(self, name: str) -> Path:
        return self.run_dir / f"{name}.json"

    def record(self, name: str) -> ProcessRecord | None:
        """The pid file of `name`, or None when there is none."""
        path = self._pidfile(name)
        if not path.exists():
            return None
        try:
            return ProcessRecord(**json.loads(path.read_text()))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"pid file {path} is corrupt ({exc}); run `lab down --force` to clear it") from exc

    def process(self, name: str) -> psutil.Process | None:
        """The live process of `name`, or None (pid files of dead or reused pids count as not running)."""
        return _live(self.record(name))

    def clear_unreadable(self) -> list[str]:
        """Delete pid files that cannot be read; returns their names. (For `lab down --force`.)"""
        cleared = []
        for path in sorted(self.run_dir.glob("*.json")) if self.run_dir.exists() else []:
            try:
                self.record(path.stem)
            except ConfigError:
                path.unlink()
                cleared.append(path.stem)
        return cleared

    def healthy(self, spec: ServiceSpec) -> bool:
        return self.process(spec.name) is not None and answers(spec)

    def _spawn(self, spec: ServiceSpec) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.logs_dir / f"{spec.name}.log"
        if spec.heartbeat:
            spec.heartbeat.unlink(missing_ok=True)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                spec.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.cwd,
                env={**os.environ, **spec.env},
                start_new_session=True,  # its own process group: stop() reaches its children too
            )
        previous = self._children.get(spec.name)
        if previous is not None:
            previous.poll()  # reap the one this replaces (killed or crashed), so no zombie is left
        self._children[spec.name] = proc
        rec = ProcessRecord(
            spec.name,
            proc.pid,
            psutil.Process(proc.pid).create_time(),
            spec.port,
            time.time(),
            str(log_path),
            process_identity(proc.pid),
        )
        write_json_atomic(self._pidfile(spec.name), asdict(rec))  # readers in other processes see old or new

    def start(self, specs: Sequence[ServiceSpec], timeout: float) -> list[str]:
        """Start what is not running, level by level; returns the names started. Stops them all on failure."""
        pending = [s for s in specs if self.process(s.name) is None]
        for spec in pending:
            if spec.port is not None and not port_free(spec.port):
                raise PortInUse.taken(spec.port, spec.name, spec.port_setting)
        started: list[str] = []
        try:
            for level in start_order(specs):
                todo = [s for s in level if s in pending]
                for spec in todo:
                    self._spawn(spec)
                    started.append(spec.name)
                self._wait_healthy(todo, timeout)
        except BaseException:
            self.stop(started)
            raise
        return started

    def _wait_healthy(self, specs: list[ServiceSpec], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        waiting = list(specs)
        while waiting:
            for spec in list(waiting):
                if self.process(spec.name) is None:
                    log = self.logs_dir / f"{spec.name}.log"
                    raise ServiceStartFailed(
                        f"{spec.name} exited during start-up; read {log}. Last lines:\n{_tail(log)}"
                    )
                if self.healthy(spec):
                    waiting.remove(spec)
            if waiting and time.monotonic() > deadline:
                names = ", ".join(s.name for s in waiting)
                raise ServiceStartFailed(
                    f"{names} not healthy after {timeout:.0f}s; read {self.logs_dir}/{waiting[0].name}.log"
                )
            time.sleep(0.1)

    def stop(self, names: Sequence[str], timeout: float = 10.0) -> list[str]:
        """Stop services (their whole process groups), newest first; returns the names stopped."""
        stopped = []
        for name in reversed(list(names)):
            proc = self.process(name)
            if proc is not None:
                _stop_group(proc, timeout)
                stopped.append(name)
            child = self._children.pop(name, None)
            if child is not None:
                child.wait(timeout)
            self._pidfile(name).unlink(missing_ok=True)
        return stopped

    def signal(self, name: str, sig: signal.Signals) -> bool:
        """Send `sig` to the process group of `name`; False when it is not running."""
        proc = self.process(name)
        if proc is None:
            return False
        os.killpg(proc.pid, sig)
        return True

    def status(self, specs: Sequence[ServiceSpec]) -> list[ServiceStatus]:
        """Each service's state; the health checks run at once, so a status costs the slowest check, not the sum."""

        def one(spec: ServiceSpec) -> ServiceStatus:
            rec = self.record(spec.name)
            running = rec is not None and _live(rec) is not None
            return ServiceStatus(
                spec.name,
                running,
                running and answers(spec),
                rec.pid if running and rec else None,
                spec.port,
                time.time() - rec.started_at if running and rec else None,
                str(self.logs_dir / f"{spec.name}.log"),
            )

        with ThreadPoolExecutor(max_workers=max(1, len(specs))) as pool:
            return list(pool.map(one, specs))


def _live(rec: ProcessRecord | None) -> psutil.Process | None:
    """The process a pid file names, if it is still that process (same create time) and alive."""
    if rec is None:
        return None
    try:
        proc = psutil.Process(rec.pid)
        if rec.after_boot is not None:
            return proc if same_process(rec.pid, rec.after_boot) else None
        # a pid file written before `after_boot` was recorded
        if abs(proc.create_time() - rec.create_time) > 0.01 or proc.status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.Error:
        return None
    return proc


def _stop_group(proc: psutil.Process, timeout: float) -> None:
    """SIGTERM the process group, wait, then SIGKILL whatever is left of it."""
    try:
        members = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        members = [proc]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        for member in members:  # a member stopped by SIGSTOP must wake up to die of SIGTERM
            with contextlib.suppress(psutil.Error):
                member.resume()
        _, members = psutil.wait_procs(members, timeout=timeout if sig == signal.SIGTERM else 3.0)
        if not members:
            return
