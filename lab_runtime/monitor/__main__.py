"""Run the monitor: `python -m lab_runtime.monitor` (uvicorn, one worker, loopback only)."""

import logging

import uvicorn

from lab_runtime.monitor.app import create_app
from lab_runtime.settings import load_settings

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
settings = load_settings()
settings.ensure_dirs()
uvicorn.run(create_app(settings), host=settings.bind_host, port=settings.monitor_port, log_level="warning")
