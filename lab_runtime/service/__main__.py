"""`python -m lab_runtime.service`: run the model service on uvicorn (one worker, loopback)."""

from __future__ import annotations

import uvicorn

from lab_runtime.settings import load_settings


def main() -> None:
    settings = load_settings()
    uvicorn.run(
        "lab_runtime.service.app:create_app",
        factory=True,
        host=settings.bind_host,
        port=settings.service_port,
        workers=1,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
