"""The pipeline process: chunks of the stream, the schedule, labels, readiness, releases, world conditions,
status and SIGTERM.

Against a small real HTTP service (standard library) that takes exactly the production features, so these
run in seconds; the real model service is in test_integration.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
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

import pytest

from lab_runtime.journal import Journal
from lab_runtime.modeling.columns import FEATURES, LABEL
from lab_runtime.modeling.data import DataGenerator
from lab_runtime.pipeline.conditions import SOURCE, SURGE, ConceptChange
from lab_runtime.pipeline.releases import Release
from lab_runtime.pipeline.store import CONCEPT, LABEL_FEED, ReleaseStore, ship
from lab_runtime.pipeline.traffic import (
    Pipeline,
    RateMeter,
    concept_generator,
    make_chunk,
    read_status,
    relabel,
    retransform,
    service_session,
)
from lab_runtime.settings import HOST, Settings
from tests.conftest import free_port
from tests.sandbox import wait_for

GEN = DataGenerator(42)
RENAME = Release.model_validate(
    {"version": "v2", "note": "renamed", "transforms": [{"type": "rename", "feature": "income", "to": "salary"}]}
)
REVERSED = {"coef": {"credit_score": 1.3}}  # a good credit score now means default
OUTAGE = {"reason": "the labelling vendor's export job fails"}


@dataclass
class FakeService:
    """What the fake service saw, and whether it says it is ready."""

    ready: bool = True
    predicted: list[str] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    features: dict[str, dict[str, Any]] = field(default_factory=dict)


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
                seen.features[body["request_id"]] = body["features"]
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
    async with service_session(settings) as client:
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
    chunk = make_chunk(GEN, 250, 400, [], label_share=0.5)
    rows = GEN.production(250, 400)
    assert chunk.ids == [f"s42-{i}" for i in range(250, 650)]
    assert chunk.labels == rows[LABEL].tolist()
    assert 0.4 < sum(chunk.labelled) / 400 < 0.6
    assert chunk.payloads[0] == {
        k: v.item() if hasattr(v, "item") else v for k, v in rows[list(FEATURES)].iloc[0].items()
    }
    again = make_chunk(GEN, 250, 400, [], label_share=0.5)
    assert again.labelled == chunk.labelled and again.payloads == chunk.payloads


def test_a_new_release_rebuilds_only_the_rows_not_sent_yet() -> None:
    chunk = make_chunk(GEN, 0, 10, [], label_share=1.0)
    chunk.next = 4
    retransform(chunk, RENAME.transforms, GEN)
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
    # Rows of the stream in order, each once, none skipped. Concurrent requests may arrive out of order on a busy
    # machine; a row is missing only if its request failed or was still in flight when the pipeline stopped.
    counters = pipeline.counters
    ids = [int(rid.split("-")[1]) for rid in seen.predicted]
    assert len(ids) == len(set(ids)) and set(ids) <= set(range(sent)), ids
    in_flight = sent - counters.ok - counters.connection_errors - counters.failed_5xx - counters.rejected_4xx
    missing = sorted(set(range(sent)) - set(ids))
    assert len(missing) <= counters.connection_errors + in_flight, (missing, counters)
    assert counters.ok <= len(ids) and counters.skipped == 0
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


def truth(gen: DataGenerator, start: int, n: int) -> dict[str, int]:
    rows = gen.production(start, n)
    return dict(zip(rows["request_id"], rows[LABEL].astype(int), strict=True))


def test_a_concept_change_keeps_the_features_and_draws_but_not_the_labels() -> None:
    changed = concept_generator(GEN, ConceptChange.model_validate(REVERSED))
    base_rows, changed_rows = GEN.production(0, 2000), changed.production(0, 2000)
    assert base_rows.drop(columns=LABEL).equals(changed_rows.drop(columns=LABEL))
    flipped = base_rows[LABEL] != changed_rows[LABEL]
    assert 0.05 < flipped.mean() < 0.5
    defaults = changed_rows[changed_rows[LABEL] == 1]["credit_score"].mean()
    repaid = changed_rows[changed_rows[LABEL] == 0]["credit_score"].mean()
    assert defaults > repaid  # reversed: under the base truth defaulters have the lower scores
    # same seed and same concept, same labels; the base concept gives back the base generator
    again = DataGenerator(42, labels=ConceptChange.model_validate(REVERSED).apply(DataGenerator(42).labels))
    assert again.production(0, 2000)[LABEL].equals(changed_rows[LABEL])
    assert concept_generator(GEN, None) is GEN


def test_a_concept_change_relabels_only_the_rows_not_sent_yet() -> None:
    changed = concept_generator(GEN, ConceptChange.model_validate(REVERSED))
    chunk = make_chunk(GEN, 300, 100, [], label_share=0.5)
    payloads, labelled = list(chunk.payloads), list(chunk.labelled)
    chunk.next = 40
    relabel(chunk, changed)
    assert chunk.labels[:40] == GEN.production(300, 40)[LABEL].tolist()
    assert chunk.labels[40:] == changed.production(340, 60)[LABEL].tolist()
    assert chunk.labels[40:] != GEN.production(340, 60)[LABEL].tolist()
    assert chunk.payloads == payloads and chunk.labelled == labelled
    relabel(chunk, GEN)  # the concept cleared: back to the base truth
    assert chunk.labels == GEN.production(300, 100)[LABEL].tolist()


async def _until(check: Any, seconds: float, what: str, pipeline: Pipeline | None = None) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        counters = f": {pipeline.counters}, {len(pipeline.labels)} labels pending" if pipeline else ""
        assert time.monotonic() < deadline, f"no {what} within {seconds}s{counters}"
        await asyncio.sleep(0.02)


def test_labels_follow_the_concept_from_the_row_after_it_changes_and_back_when_it_is_cleared(
    tmp_path: Path, service: tuple[FakeService, int]
) -> None:
    seen, port = service
    settings = settings_for(tmp_path, port, pipeline_rate=50, label_delay=0.1, label_share=1.0)
    changed = concept_generator(GEN, ConceptChange.model_validate(REVERSED))
    marks: dict[str, int] = {}

    async def script(pipeline: Pipeline) -> None:
        await _until(lambda: pipeline.position > 20, 3.0, "traffic")
        with ReleaseStore(settings.pipeline_db_path) as store:
            marks["set"] = pipeline.position
            store.set_condition(CONCEPT, REVERSED, note="drill", by="drill")
            await _until(lambda: pipeline.gen is not GEN, 1.0, "concept change")
            marks["applied"] = pipeline.position
            await _until(lambda: pipeline.position > marks["applied"] + 60, 5.0, "traffic under the new concept")
            marks["cleared"] = pipeline.position
            assert store.clear_condition(CONCEPT)
            await _until(lambda: pipeline.gen is GEN, 1.0, "return to the base concept")
            marks["restored"] = pipeline.position
        end = marks["restored"] + 20
        await _until(lambda: {f"s42-{i}" for i in range(end)} <= set(seen.labels), 10.0, "labels", pipeline)

    pipeline = asyncio.run(drive(settings, script))
    base, new = truth(GEN, 0, pipeline.position), truth(changed, 0, pipeline.position)
    assert 0 < marks["set"] <= marks["applied"] < marks["cleared"] <= marks["restored"] < pipeline.position
    ids = list(base)
    before = ids[: marks["set"]]
    during = ids[marks["applied"] : marks["cleared"]]
    after = ids[marks["restored"] :]
    posted = seen.labels
    assert all(posted[i] == base[i] for i in before if i in posted)
    assert all(posted[i] == new[i] for i in during if i in posted)
    assert all(posted[i] == base[i] for i in after if i in posted)
    assert all(i in posted for i in [*before, *during, *after[:20]])
    assert any(posted[i] != base[i] for i in during if i in posted)  # the quality drop the learner must find


def test_a_stopped_label_feed_withholds_the_labels_that_come_due_until_it_resumes(
    tmp_path: Path, service: tuple[FakeService, int], caplog: pytest.LogCaptureFixture
) -> None:
    seen, port = service
    settings = settings_for(tmp_path, port, pipeline_rate=50, label_delay=0.1, label_share=1.0)
    caplog.set_level(logging.INFO, logger="lab_runtime.pipeline")

    async def script(pipeline: Pipeline) -> None:
        await _until(lambda: len(seen.labels) > 20, 5.0, "labels", pipeline)
        with ReleaseStore(settings.pipeline_db_path) as store:
            store.set_condition(CONCEPT, REVERSED, note="drill", by="drill")  # a drill may combine both
            store.set_condition(LABEL_FEED, OUTAGE, note="drill", by="drill", expires_at=time.time() + 60)
            since = store.conditions()[LABEL_FEED].set_at
            await _until(lambda: pipeline.feed_stop is not None, 1.0, "stopped label feed")
            posted = len(seen.labels)
            await _until(lambda: pipeline.counters.labels_withheld > 20, 5.0, "withheld labels", pipeline)
            assert len(seen.labels) - posted <= 1  # at most the one being posted when the feed stopped
            await asyncio.sleep(1.1)  # a fresh status file
            status = read_status(settings.pipeline_status_path)
            assert status is not None
            assert status["label_feed"] == {"state": "stopped", "reason": OUTAGE["reason"], "since": since}
            assert status["counters"]["labels_withheld"] > 20
            assert "concept" not in json.dumps(status) and "credit_score" not in json.dumps(status)
            assert store.clear_condition(LABEL_FEED)
            await _until(lambda: pipeline.feed_stop is None, 1.0, "resumed label feed")
            withheld, posted = pipeline.counters.labels_withheld, len(seen.labels)
            await _until(lambda: len(seen.labels) > posted + 20, 5.0, "labels after the resume", pipeline)
            assert pipeline.counters.labels_withheld == withheld
            await asyncio.sleep(1.1)
            status = read_status(settings.pipeline_status_path)
            assert status is not None and status["label_feed"] == {"state": "running", "reason": None, "since": None}

    pipeline = asyncio.run(drive(settings, script))
    c = pipeline.counters
    # every answered row's label was posted, withheld (lost), or still pending; one may have been mid-post at the stop
    assert 0 <= len(seen.labels) - c.labels_posted <= 1
    accounted = c.labels_posted + c.labels_withheld + c.labels_dropped + len(pipeline.labels)
    assert 0 <= c.ok - accounted <= 1
    log = caplog.text
    assert f"label feed stopped: {OUTAGE['reason']}" in log and "label feed running again" in log
    assert "concept" not in log and "credit_score" not in log and "label function" not in log


def test_a_label_feed_stopped_before_the_start_withholds_from_the_first_label(
    tmp_path: Path, service: tuple[FakeService, int]
) -> None:
    seen, port = service
    settings = settings_for(tmp_path, port, pipeline_rate=50, label_delay=0.1, label_share=1.0)
    settings.ensure_dirs()
    with ReleaseStore(settings.pipeline_db_path) as store:
        store.set_condition(LABEL_FEED, OUTAGE, note="drill", by="drill")

    async def script(pipeline: Pipeline) -> None:
        await _until(lambda: pipeline.counters.labels_withheld > 20, 5.0, "withheld labels", pipeline)

    pipeline = asyncio.run(drive(settings, script))
    assert seen.labels == {} and pipeline.counters.labels_posted == 0


def test_a_source_change_sends_each_later_row_with_the_new_meaning_and_a_surge_multiplies_the_rate(
    tmp_path: Path, service: tuple[FakeService, int]
) -> None:
    seen, port = service
    settings = settings_for(tmp_path, port, pipeline_rate=40, label_delay=0.1, label_share=1.0)
    rescale = {"change": {"type": "shift", "feature": "credit_score", "std": 3.0}, "reason": "a new bureau scale"}
    marks: dict[str, float] = {}

    async def script(pipeline: Pipeline) -> None:
        await _until(lambda: pipeline.position > 20, 3.0, "traffic")
        with ReleaseStore(settings.pipeline_db_path) as store:
            marks["set"] = pipeline.position
            store.set_condition(SOURCE, rescale, note="drill", by="drill")
            store.set_condition(SURGE, {"factor": 2.0}, note="drill", by="drill")
            await _until(lambda: pipeline.source is not None and pipeline.surge is not None, 1.0, "the conditions")
            marks["applied"] = pipeline.position
            await asyncio.sleep(0.3)  # the schedule takes the new rate from its next tick
            start, sent = time.monotonic(), pipeline.counters.sent
            await asyncio.sleep(2.0)
            marks["surge_rate"] = (pipeline.counters.sent - sent) / (time.monotonic() - start)
            marks["cleared"] = pipeline.position
            assert store.clear_condition(SOURCE) and store.clear_condition(SURGE)
            await _until(lambda: pipeline.source is None, 1.0, "the source back")
            marks["restored"] = pipeline.position
        await _until(lambda: pipeline.position > marks["restored"] + 20, 3.0, "traffic after")

    pipeline = asyncio.run(drive(settings, script))
    assert 70 <= marks["surge_rate"] <= 90, marks  # twice the rate of 40/s
    raw = GEN.production(0, pipeline.position)
    std = GEN.stats["credit_score"][1]
    sent_score = {rid: f["credit_score"] for rid, f in seen.features.items()}
    ids, scores = raw["request_id"].tolist(), raw["credit_score"].tolist()

    def rows(start: float, end: float) -> list[tuple[float, float]]:
        return [(sent_score[ids[i]], scores[i]) for i in range(int(start), int(end)) if ids[i] in sent_score]

    assert all(sent == score for sent, score in rows(0, marks["set"]))
    during = rows(marks["applied"], marks["cleared"])
    assert during and all(abs(sent - (score + 3.0 * std)) <= 1 for sent, score in during)  # whole numbers
    assert all(sent == score for sent, score in rows(marks["restored"], pipeline.position))
    # the labels stay the applicant's: the world changed its scale, not who repays
    base = truth(GEN, 0, pipeline.position)
    assert all(seen.labels[i] == base[i] for i in seen.labels)
