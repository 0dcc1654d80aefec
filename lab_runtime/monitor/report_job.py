"""Evidently reports rendered in a short-lived process, so the monitor itself never loads Evidently.

Evidently costs the process that imports it about 100 MB and 2.5 s of CPU, and each report 2 s more; the
monitor's verdicts need none of it (`drift` runs the same tests). The monitor keeps the window it judged last;
`render` writes it to `reports/.window.pkl.<pid>` and runs `python -m lab_runtime.monitor.report` on it, which writes
`latest.html` and `latest.json` and exits.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lab_runtime.errors import ReportFailed

if TYPE_CHECKING:
    import pandas as pd

    from lab_runtime.monitor.evaluate import Evaluation

log = logging.getLogger(__name__)

PREDICTION = "probability"  # the column of the serving version's scores, in the reference and the window
WINDOW_FILE = ".window.pkl"  # beside the reports, with the monitor's pid; removed once rendered
RENDER_TIMEOUT = 120.0


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    json: Path
    generated_at: float


@dataclass(frozen=True)
class JudgedWindow:
    """What a report is made of: the reference (with the version's scores), the window, the verdict on it."""

    reference: pd.DataFrame
    current: pd.DataFrame
    evaluation: Evaluation


def render(window: JudgedWindow, directory: Path, timeout: float = RENDER_TIMEOUT) -> ReportFiles:
    """Render `window` in a child process; ReportFailed (with the reason) whatever goes wrong."""
    source = directory / f"{WINDOW_FILE}.{os.getpid()}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        source.write_bytes(pickle.dumps(window, protocol=pickle.HIGHEST_PROTOCOL))
        command = [sys.executable, "-m", "lab_runtime.monitor.report", str(source), str(directory)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ReportFailed(f"the report took longer than {timeout:g}s; try again when the machine is quieter") from None
    except (OSError, pickle.PicklingError) as exc:
        raise ReportFailed(f"the report's window could not be handed over: {exc}") from None
    finally:
        source.unlink(missing_ok=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise ReportFailed(f"the report could not be rendered: {lines[-1] if lines else f'exit {done.returncode}'}")
    try:
        written = json.loads(done.stdout.strip().splitlines()[-1])
        return ReportFiles(Path(written["html"]), Path(written["json"]), float(written["generated_at"]))
    except (IndexError, ValueError, KeyError, TypeError):
        raise ReportFailed(f"the report process said no files: {done.stdout.strip()[-200:]!r}") from None


def load(source: Path) -> JudgedWindow:
    """The window `render` wrote (read by the report process)."""
    window = pickle.loads(source.read_bytes())
    if not isinstance(window, JudgedWindow):
        raise ReportFailed(f"{source} holds no judged window")
    return window


class ReportWriter:
    """Keeps the window the monitor judged last, and renders it on request (`lab monitor report`), or every
    `interval` seconds when that is above 0. One render at a time; a request during one waits for it."""

    def __init__(self, directory: Path, interval: float) -> None:
        self.directory = directory
        self.interval = interval
        self.latest: ReportFiles | None = None
        self.last_error: str | None = None
        self._window: JudgedWindow | None = None
        self._rendered: JudgedWindow | None = None
        self._lock = threading.Lock()
        if interval > 0:
            threading.Thread(target=self._every_interval, name="reports", daemon=True).start()

    def submit(self, window: JudgedWindow) -> None:
        """The newest judged window; the report opens with its verdict, the one the alerts saw."""
        self._window = window

    def render(self) -> ReportFiles:
        """The report of the newest judged window, rendered now unless it already has been."""
        with self._lock:
            window = self._window
            if window is None:
                raise ReportFailed(
                    "no window judged yet: the monitor judges one once it holds enough predictions; "
                    "see `lab monitor status`"
                )
            if window is self._rendered and self.latest is not None:
                return self.latest
            try:
                self.latest = render(window, self.directory)
            except ReportFailed as exc:
                self.last_error = str(exc)
                raise
            self.last_error, self._rendered = None, window
            return self.latest

    def _every_interval(self) -> None:
        while True:
            started = time.monotonic()
            if self._window is not None:
                try:
                    self.render()
                except ReportFailed:
                    pass  # kept in last_error, which /status shows
                except Exception as exc:  # a report must never stop the reports thread
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.exception("drift report failed")
            time.sleep(max(self.interval - (time.monotonic() - started), 1.0))
