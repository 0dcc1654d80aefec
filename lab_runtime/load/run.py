"""A `lab load` run: the model service must be ready, then Locust runs headless in a subprocess of its own, its
files under `.lab/load/<timestamp>` (`_*.csv`, `.log`)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from lab_runtime import loopback
from lab_runtime.backends.services import settings_env
from lab_runtime.errors import LabError, RuntimeNotReady
from lab_runtime.load import LOCUSTFILE, LoadSummary, locust_command, read_summary
from lab_runtime.settings import Settings

GRACE = 60  # seconds Locust may take beyond the run's duration before it counts as hung


@dataclass(frozen=True)
class LoadRun:
    summary: LoadSummary
    elapsed: float  # seconds the run took, to a tenth
    prefix: Path  # Locust's files: `<prefix>_stats.csv` and the others, `<prefix>.log`


def require_ready(url: str) -> None:
    """Refuse (RuntimeNotReady, saying why) unless the model service at `url` answers `/ready` with 200."""
    try:
        answer = loopback.get(f"{url}/ready", timeout=3.0)
    except loopback.LoopbackError as exc:
        raise RuntimeNotReady(
            f"the model service does not answer at {url} ({type(exc).__name__}); start the sandbox with `lab up`"
        ) from exc
    if answer.status_code != 200:
        try:
            reason = answer.json().get("reason", answer.text)
        except ValueError:
            reason = answer.text
        raise RuntimeNotReady(f"the model service is not ready ({reason}); load needs a served @champion")


def run_load(
    settings: Settings, users: int, spawn_rate: float, seconds: int, say: Callable[[str], None] = lambda line: None
) -> LoadRun:
    """Load the ready model service with Locust for `seconds` (`say` is told when it starts); its summary. A run
    that hangs, fails or completes no request is a LabError naming its log."""
    require_ready(settings.service_url)
    settings.ensure_dirs()
    prefix = settings.load_dir / datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    argv = locust_command(LOCUSTFILE, settings.service_url, users, spawn_rate, seconds, prefix)
    say(f"loading {settings.service_url} with {users} users for {seconds}s ...")
    started = time.monotonic()
    with open(f"{prefix}.log", "wb") as log:
        env = {**os.environ, **settings_env(settings)}
        try:
            rc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=seconds + GRACE).returncode
        except subprocess.TimeoutExpired as exc:
            raise LabError(f"Locust did not finish within {seconds + GRACE}s; read {prefix}.log") from exc
    summary = read_summary(prefix)
    if rc != 0 or summary is None:
        raise LabError(f"the load run failed (Locust exit code {rc}, no completed request); read {prefix}.log")
    return LoadRun(summary, round(time.monotonic() - started, 1), prefix)
