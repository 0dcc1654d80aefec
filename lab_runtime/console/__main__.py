"""Run the console agent: `python -m lab_runtime.console` (started by `lab up` while LAB_CONSOLE_URL and
LAB_CONSOLE_TOKEN are set)."""

import json
import logging
import signal
import subprocess
import threading

from lab_runtime.backends import get_backend
from lab_runtime.backends.services import SERVICES
from lab_runtime.console.agent import Agent
from lab_runtime.console.wire import DrillChoice, SandboxState
from lab_runtime.errors import ConfigError
from lab_runtime.labs.scripting import LAB
from lab_runtime.settings import load_settings

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
logging.getLogger("httpx").setLevel(logging.WARNING)
settings = load_settings()
if not (settings.console_url and settings.console_token):
    raise SystemExit(str(ConfigError("the console agent needs LAB_CONSOLE_URL and LAB_CONSOLE_TOKEN")))
settings.ensure_dirs()


def drills() -> list[DrillChoice]:
    """The drills this sandbox's catalog has (`lab drill list --json`), for the console's order form."""
    try:
        done = subprocess.run([*LAB, "drill", "list", "--json"], capture_output=True, text=True, timeout=120)
        return [DrillChoice.model_validate(d) for d in json.loads(done.stdout)]
    except (OSError, subprocess.TimeoutExpired, ValueError, TypeError) as exc:  # ValidationError is a ValueError
        logging.warning("`lab drill list --json` failed (%r): the console offers no drill for this sandbox", exc)
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
