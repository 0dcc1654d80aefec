"""Run the console agent: `python -m lab_runtime.console` (started by `lab up` while LAB_CONSOLE_URL and
LAB_CONSOLE_TOKEN are set)."""

import json
import logging
import signal
import subprocess
import threading
from typing import Any

from lab_runtime.backends import get_backend
from lab_runtime.backends.services import SERVICES
from lab_runtime.console.agent import Agent
from lab_runtime.console.wire import SandboxState
from lab_runtime.errors import ConfigError
from lab_runtime.labs.scripting import LAB
from lab_runtime.settings import load_settings

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
logging.getLogger("httpx").setLevel(logging.WARNING)
settings = load_settings()
if not (settings.console_url and settings.console_token):
    raise SystemExit(str(ConfigError("the console agent needs LAB_CONSOLE_URL and LAB_CONSOLE_TOKEN")))
settings.ensure_dirs()


def drills() -> list[dict[str, Any]]:
    """The drills this sandbox's catalog has (`lab drill list --json`), for the console's order form."""
    done = subprocess.run([*LAB, "drill", "list", "--json"], capture_output=True, text=True, timeout=60)
    try:
        return [{k: d.get(k) for k in ("id", "title", "kind", "runtimes")} for d in json.loads(done.stdout)]
    except (ValueError, AttributeError):
        logging.warning("`lab drill list --json` failed: %s", done.stderr.strip()[-300:])
        return []


catalog = drills()
backend = get_backend(settings)


def state() -> SandboxState:
    healthy = {s.name: s.healthy for s in backend.status() if s.name in SERVICES}
    return SandboxState(runtime=settings.runtime, learner=settings.learner, services=healthy, drills=catalog)


stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
Agent(settings, state, stop).run()
