"""Reading the running monitor from other processes (the CLI, lab checks, drills)."""

from __future__ import annotations

from typing import Any

from lab_runtime import loopback
from lab_runtime.errors import ReportFailed, RuntimeNotReady
from lab_runtime.settings import Settings


def fetch_status(settings: Settings) -> dict[str, Any]:
    """The monitor's `GET /status`, or RuntimeNotReady naming how to start it."""
    try:
        answer = loopback.get(f"{settings.monitor_url}/status", timeout=5.0)
        answer.raise_for_status()
        return dict(answer.json())
    except loopback.LoopbackError as exc:
        raise RuntimeNotReady(
            f"the monitor does not answer at {settings.monitor_url} ({type(exc).__name__}); "
            "start the sandbox with `lab up`, or read `lab logs monitor`"
        ) from None


def render_report(settings: Settings, timeout: float = 180.0) -> dict[str, Any]:
    """Ask the monitor to render the drift report of its latest judged window; the files it wrote."""
    try:
        answer = loopback.post(f"{settings.monitor_url}/report", timeout=timeout)
    except loopback.LoopbackTimeout:
        raise ReportFailed(
            f"the monitor did not finish the report within {timeout:g}s; try again when the machine is quieter"
        ) from None
    except loopback.LoopbackError as exc:
        raise RuntimeNotReady(
            f"the monitor does not answer at {settings.monitor_url} ({exc}); "
            "start the sandbox with `lab up`, or read `lab logs monitor`"
        ) from None
    try:
        body = dict(answer.json())
    except ValueError:
        body = {"detail": answer.text[:200]}
    if answer.status_code != 200:
        raise ReportFailed(str(body.get("detail", f"the monitor answered {answer.status_code}")))
    return body
