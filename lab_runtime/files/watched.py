"""A data file that a long-running process follows: re-read when it changes, the last good content kept."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Generic, TypeVar

from lab_runtime.errors import LabError

log = logging.getLogger(__name__)
T = TypeVar("T")
Stamp = tuple[int, int, int]  # inode, size, modification time in ns


@dataclass(frozen=True)
class Reading(Generic[T]):
    """What is in force, replaced whole at each change: a reader never pairs one file's source with another's value."""

    value: T
    source: Path
    problem: str | None = None


def _stamp(path: Path) -> Stamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class WatchedFile(Generic[T]):
    """The content of `path` as `parse` reads it; while `path` does not exist, that of `fallback` (or, with
    `keep_when_missing`, once `path` has existed, its last good content, and `problem` says it is gone).

    `refresh()` re-reads it when its inode, size or modification time changed. A file `parse` refuses (with a
    LabError) leaves the last good content in force, and `problem` says why until a good one comes.
    """

    def __init__(self, path: Path, parse: Callable[[Path], T], fallback: Path, keep_when_missing: bool = False) -> None:
        self.path, self.parse, self.fallback, self.keep_when_missing = path, parse, fallback, keep_when_missing
        self.reading: Reading[T] = Reading(parse(fallback), fallback)
        self._stamp: Stamp | None = None
        self.refresh()

    @property
    def value(self) -> T:
        return self.reading.value

    @property
    def source(self) -> Path:
        return self.reading.source

    @property
    def problem(self) -> str | None:
        return self.reading.problem

    def _refused(self, problem: str) -> bool:
        self.reading = replace(self.reading, problem=problem)
        return False

    def refresh(self) -> bool:
        """Re-read the file if it changed; True when the content in force changed."""
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        if stamp is None and self.keep_when_missing and self.source == self.path:
            return self._refused(f"{self.path} is gone; the last state stays in force")
        source = self.path if stamp is not None else self.fallback
        try:
            value = self.parse(source)
        except LabError as exc:
            return self._refused(f"{exc}; the last good one stays in force")
        except Exception as exc:  # a file must never stop its follower: say so, keep the last good one
            return self._refused(
                f"{self.path}: cannot be read ({type(exc).__name__}); the last good one stays in force"
            )
        changed = value != self.value or source != self.source
        self.reading = Reading(value, source)
        return changed

    def follow(self, interval: float, on_change: Callable[[WatchedFile[T]], None]) -> Callable[[], None]:
        """Refresh every `interval` seconds in a daemon thread; `on_change` after each change of the content or of
        the problem. Returns the function that stops it."""
        stop = threading.Event()

        def run() -> None:
            while not stop.wait(interval):
                problem = self.problem
                try:
                    if self.refresh() or self.problem != problem:
                        on_change(self)
                except Exception:  # the follower outlives any one pass
                    log.exception("following %s", self.path)

        threading.Thread(target=run, name=f"watch {self.path.name}", daemon=True).start()
        return stop.set
