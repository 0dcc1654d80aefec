"""The pipeline process: chunks of the stream, the schedule, labels, readiness, releases, status and SIGTERM.

Against a small real HTTP service (standard library) that takes exactly the production features, so these
run in seconds; the real model service is in test_integration.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from lab_runtime.data import FEATURES, LABEL, DataGenerator
from lab_runtime.journal import Journal
from lab_runtime.pipeline.releases import Release
from lab_runtime.pipeline.store import ReleaseStore, ship
from lab_runtime.pipeline.traffic import Pipeline, RateMeter, make_chunk, read_status, retransform
from lab_runtime.settings import HOST, Settings
from tests.conftest import free_port
from tests.sandbox import wait_for

GEN = DataGenerator(42)
RENAME = Release.model_validate(
    {"version": "v2", "note": "renamed", "transforms": [{"type": "rename", "feature": "income", "to": "salary"}]}
)


@dataclass
class FakeService:
    """What the fake service saw, and whether it says it is ready."""

    ready: bool = True
    predicted: list[str] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)


def _handler(seen: FakeService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if seen.ready:
                self._answer(200, {"ready": True})
            else:
                self._answer(503, {"ready": False, "reason": "no champion yet"})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            if self.path == "/feedback":
                seen.labels[body["request_id"]] = body["label"]
                self._answer(202, {"status": "accepted"})
            elif set(body["features"]) != set(FEATURES):
                self._answer(422, {"detail": f"features must be {sorted(FEATURES)}"})
            else:
                seen.predicted.append(body["request_id"])
                self._answer(200, {"request_id": body["request_id"], "prediction": 0})

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def service() -> Iterator[tuple[FakeService, int]]:
    seen = FakeService()
    server = ThreadingHTTPServer((HOST, free_port()), _handler(seen))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield seen, server.server_address[1]
    server.shutdown()
    server.server_close()


def settings_for(tmp_path: Path, port: int, **knobs: Any) -> Settings:
    return Settings(state_dir=tmp_path / "state", service_port=port, **knobs)


async def drive(settings: Settings, script: Any) -> Pipeline:
    """Run a pipeline while `script(pipeline)` runs; then stop it as SIGTERM would."""
    settings.ensure_dirs()
    stop = asyncio.Event()
    async with httpx.AsyncClient(base_url=settings.service_url, timeout=5.0, trust_env=False) as client:
        with ReleaseStore(settings.pipeline_db_path) as store:
            pipeline = Pipeline(settings, store, client, GEN)
            running = asyncio.create_task(pipeline.run(stop))
            try:
                await script(pipeline)
            finally:
                stop.set()
                await asyncio.wait_for(running, 2.0)
    return pipeline


def test_a_chunk_holds_stream_ids_true_labels_and_the_labelled_share() -> None:
    chunk = make_chunk(GEN, 250, 400, Release(version="v1", note="n"), label_share=0.5)
    rows = GEN.production(250, 400)
    assert chunk.ids == [f"s42-{i}" for i in range(250, 650)]
    assert chunk.labels == rows[LABEL].tolist()
    assert 0.4 < sum(chunk.labelled) / 400 < 0.6
    assert chunk.payloads[0] == {
        k: v.item() if hasattr(v, "item") else v for k, v in rows[list(FEATURES)].iloc[0].items()
    }
    again = make_chunk(GEN, 250, 400, Release(version="v1", note="n"), label_share=0.5)
    assert again.labelled == chunk.labelled and again.payloads == chunk.payloads


def test_a_new_release_rebuilds_only_the_rows_not_sent_yet() -> None:
    chunk = make_chunk(GEN, 0, 10, Release(version="v1", note="n"), label_share=1.0)
    chunk.next = 4
    retransform(chunk, RENAME, GEN)
    assert all("income" in p for p in chunk.payloads[:4])
    assert all("salary" in p and "income" not in p for p in chunk.payloads[4:])


def test_the_rate_is_over_the_last_window() -> None:
    meter = RateMeter(10.0, now=0.0)
    assert meter.rate(0.0) == 0.0
    for i in range(20):
        meter.add(i * 0.25)  # 4 per second for 5 s
    assert meter.rate(5.0) == pytest.approx(4.0)
    assert meter.rate(14.0) == pytest.approx(0.4)  # only the 4 events at 4 s to 4.75 s are in [4, 14]


def test_traffic_keeps_its_rate_and_posts_the_true_labels_of_a_share(
    tmp_path: Path, service: tuple[FakeService, int]
) -> None:
    seen, port = service
    settings = settings_for(tmp_path, port, pipeline_rate=50, label_delay=0.3, label_share=0.5)

    async def script(pipeline: Pipeline) -> None:
        await asyncio.sleep(3.0)

    pipeline = asyncio.run(drive(settings, script))
    sent = pipeline.counters.sent
    assert 120 <= sent <= 160, sent  # 3 s at 50/s; the first request waits for the readiness check
    assert seen.predicted == [f"s42-{i}" for i in range(len(seen.predicted))]
    assert pipeline.counters.ok == len(seen.predicted) and pipeline.counters.skipped == 0
    truth = dict(zip(*GEN.production(0, sent)[["request_id", LABEL]].to_dict("list").values(), strict=True))
    assert seen.labels and all(truth[rid] == label for rid, label in seen.labels.items())
    assert 0.3 < len(seen.labels) / sent < 0.6  # about half, less the ones not due yet
    assert pipeline.counters.labels_posted == len(seen.labels)
    status = read_status(settings.pipeline_status_path)
    assert status is not None and status["state"] == "stopped" and status["counters"]["sent"] == sent
    with ReleaseStore(settings.pipeline_db_path) as store:
        assert store.cursor() == sent  # a restart continues the stream


def test_nothing_is_sent_while_the_service_is_not_ready(tmp_path: Path, service: tuple[FakeService, int]) -> None:
    seen, port = service
    seen.ready = False
    settings = settings_for(tmp_path, port, pipeline_rate=50)

    async def script(pipeline: Pipeline) -> None:
        await asyncio.sleep(1.5)
        status = read_status(settings.pipeline_status_path)
        assert status is not None and status["state"] == "waiting"
        assert status["reason"] == "the model service is not ready (503: no champion yet)"
        assert pipeline.counters.sent == 0
        seen.ready = True
        await asyncio.sleep(1.5)
        assert pipeline.state == "sending" and pipeline.counters.ok > 10

    asyncio.run(drive(settings, script))


def test_a_shipped_release_takes_effect_within_a_second(tmp_path: Path, service: tuple[FakeService, int]) -> None:
    _, port = service
    settings = settings_for(tmp_path, port, pipeline_rate=50)

    async def script(pipeline: Pipeline) -> None:
        await asyncio.sleep(1.0)
        assert pipeline.counters.ok > 0 and pipeline.counters.rejected_4xx == 0
        with ReleaseStore(settings.pipeline_db_path) as store:
            ship(store, Journal(settings.journal_path, source="test"), RENAME, by="test")
        shipped, ok = time.monotonic(), pipeline.counters.ok
        while pipeline.counters.rejected_4xx == 0:
            await asyncio.sleep(0.02)
        assert time.monotonic() - shipped < 1.0
        await asyncio.sleep(0.5)
        assert pipeline.counters.ok - ok <= 2  # in flight when the release changed
        assert pipeline.last_error is not None and pipeline.last_error["status"] == 422
        assert "features must be" in pipeline.last_error["body"]

    pipeline = asyncio.run(drive(settings, script))
    assert pipeline.release.version == "v2"


def test_the_process_waits_for_a_service_that_is_down_and_ends_promptly_on_sigterm(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, free_port())  # nothing listens there
    env = {**os.environ, "LAB_STATE_DIR": str(settings.root), "LAB_SERVICE_PORT": str(settings.service_port)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lab_runtime.pipeline"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:

        def waiting() -> bool:
            status = read_status(settings.pipeline_status_path)
            return status is not None and status["state"] == "waiting" and "connection refused" in status["reason"]

        wait_for(waiting, 15, "the pipeline waiting for the service")
        first = settings.pipeline_status_path.stat().st_mtime
        wait_for(lambda: settings.pipeline_status_path.stat().st_mtime > first, 3, "a fresh status file")
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert proc.wait(5) == 0
        assert time.monotonic() - started < 2.0
    finally:
        proc.kill()
        output = proc.communicate()[0].decode()
    status = read_status(settings.pipeline_status_path)
    assert status is not None and status["state"] == "stopped" and status["counters"]["sent"] == 0
    assert "waiting: connection refused" in output and "Traceback" not in output
