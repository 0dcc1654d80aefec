"""The monitor's HTTP face: /health, /status (JSON), /metrics (Prometheus) and POST /report (the drift report).

The evaluation loop runs in a thread started with the app; it imports pandas, scikit-learn and SciPy there, so
/health answers at once and `lab up` does not wait for the imports.
"""

from __future__ import annotations

import html
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Response
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from lab_runtime.errors import ReportFailed
from lab_runtime.monitor.metrics import MonitorMetrics
from lab_runtime.service.docs import offline_docs
from lab_runtime.service.schema import ErrorOut
from lab_runtime.settings import Settings, load_settings

if TYPE_CHECKING:
    from lab_runtime.monitor.runner import Monitor

log = logging.getLogger("lab_runtime.monitor")


class ReportOut(BaseModel):
    html: str = Field(description="the drift report, HTML: `latest.html` in the reports folder")
    json_file: str = Field(alias="json", description="the same as JSON, the monitor's verdict under `monitor`")
    generated_at: float = Field(description="when it was rendered, seconds since the epoch")


def create_app(settings: Settings | None = None) -> FastAPI:
    cfg = settings or load_settings()
    window = cfg.scaled(cfg.monitor_window)
    metrics = MonitorMetrics()
    holder: dict[str, Monitor] = {}
    stop = threading.Event()
    failed: list[str] = []
    waiting = threading.Event()
    waiting.set()

    def traffic_seen() -> bool:
        from lab_runtime.predlog import PredictionLog

        log = PredictionLog(cfg.prediction_log_path)
        try:
            return log.calls(since=time.time() - window) > 0
        finally:
            log.close()

    def loop() -> None:
        # The imports and the reference cost a second or two of CPU: wait for a /predict call (answered or
        # refused), so `lab up` does not compete with them; at most one window, so a service that is down from the
        # start is still judged.
        started = time.monotonic()
        try:
            while not stop.is_set() and not traffic_seen() and time.monotonic() - started < window:
                stop.wait(cfg.scaled(cfg.monitor_interval))
            waiting.clear()
            from lab_runtime.monitor.runner import Monitor

            def observe(m: Monitor) -> None:
                metrics.update(m.latest.signals if m.latest else {}, m.firing(), m.last_seconds or 0.0)

            monitor = holder["monitor"] = Monitor(cfg, on_evaluation=observe)
        except Exception as exc:
            failed.append(f"{type(exc).__name__}: {exc}")
            log.exception("the monitor could not start")
            return
        monitor.run(stop)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        thread = threading.Thread(target=loop, name="monitor", daemon=True)
        thread.start()
        yield
        stop.set()
        thread.join(timeout=5)

    app = FastAPI(title="Drift and quality monitor", lifespan=lifespan, docs_url=None, redoc_url=None)
    offline_docs(app)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/status")
    def status() -> dict[str, Any]:
        """The latest evaluation: window, signals, per-feature drift, rules, alerts, report paths."""
        if "monitor" in holder:
            return holder["monitor"].status()
        if failed:
            state, message = "failed", f"the monitor could not start: {failed[0]}"
        elif waiting.is_set():
            state, message = (
                "waiting",
                (
                    "no traffic yet: the monitor starts evaluating once /predict is called "
                    f"(or {window:g}s after it started)"
                ),
            )
        else:
            state, message = "starting", "loading the reference set"
        return {"state": state, "message": message, "signals": {}, "alerts": [], "rules": [], "rule_errors": []}

    def rendered() -> Any:
        """The latest judged window's report rendered now (a few seconds: Evidently runs in a process of its own):
        its files, or a 409 answer with the reason there is none."""
        if "monitor" not in holder:
            return JSONResponse({"detail": "the monitor has not judged a window yet"}, status_code=409)
        try:
            return holder["monitor"].reports.render()
        except ReportFailed as exc:
            return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.post("/report", response_model=ReportOut, responses={409: {"model": ErrorOut}})
    def render_report() -> Response:
        """Render the drift report of the latest judged window now; its files. 409 when there is none yet or it
        cannot be rendered, with the reason."""
        files = rendered()
        if isinstance(files, Response):
            return files
        return JSONResponse({"html": str(files.html), "json": str(files.json), "generated_at": files.generated_at})

    @app.get("/report.html", response_class=HTMLResponse, responses={409: {"description": "why there is none yet"}})
    def show_report() -> Response:
        """The same report as a page (JupyterLab's launcher opens it under the learner's own URL); 409, a page
        saying why, when there is none yet. A path of its own: one path with two routes would answer OPTIONS with
        only the first one's methods."""
        files = rendered()
        if isinstance(files, Response):
            why = html.escape(json.loads(bytes(files.body))["detail"])
            return HTMLResponse(f"<!doctype html><title>No drift report yet</title><p>{why}</p>", status_code=409)
        return HTMLResponse(Path(files.html).read_text(encoding="utf-8"))

    @app.get("/metrics", response_class=PlainTextResponse)
    def prometheus() -> Response:
        """Prometheus metrics, in its text format."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
