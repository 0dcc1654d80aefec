"""`python -m lab_runtime.service`: run the model service on uvicorn (one worker, loopback)."""

from __future__ import annotations

import copy
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from lab_runtime.settings import load_settings


def log_config() -> dict[str, Any]:
    """Uvicorn's logging, plus the service's own loggers (`lab_runtime.*`: the 5xx lines, the registry follower) on
    stderr with a timestamp: the supervisor sends stderr to the service's log file."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["lab"] = {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    config["handlers"]["lab"] = {"formatter": "lab", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    config["loggers"]["lab_runtime"] = {"handlers": ["lab"], "level": "INFO", "propagate": False}
    return config


def main() -> None:
    settings = load_settings()
    uvicorn.run(
        "lab_runtime.service.app:create_app",
        factory=True,
        host=settings.bind_host,
        port=settings.service_port,
        workers=1,
        log_level="warning",
        log_config=log_config(),
        access_log=False,
    )


if __name__ == "__main__":
    main()
