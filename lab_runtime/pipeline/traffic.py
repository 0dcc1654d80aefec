"""The upstream pipeline process: open-loop production traffic to the model service, under the active release.

One record per `POST /predict`, `pipeline_rate` times a second on a fixed schedule (at most MAX_IN_FLIGHT
requests open; ticks beyond that are counted as skipped), rows from the seeded production stream with the
active release's transforms applied. For `label_share` of the answered requests the true label is posted to
`/feedback` `label_delay` seconds later. While the service is not ready nothing is sent. Every second the
status file (the supervisor's heartbeat) is rewritten with the counters; SIGTERM ends it within a second.

It also follows the world conditions in the release store: a changed concept (rows drawn from then on get
their labels from the changed label function; neither the status nor the log says so, since the learner
reads both), a stopped label feed (labels that come due are withheld and counted, and lost), a source's change of
a feature's meaning (applied to each row before the release's transforms; unlogged like the concept) and a load
surge (the rate multiplied).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import numpy as np
import orjson
import pandas as pd

from lab_runtime.files.atomic import read_json, write_json_atomic
from lab_runtime.modeling.columns import FEATURES, LABEL, REQUEST_ID
from lab_runtime.modeling.data import DataGenerator
from lab_runtime.pipeline.conditions import (
    CONCEPT,
    LABEL_FEED,
    SOURCE,
    SURGE,
    ConceptChange,
    LabelFeedStop,
    LoadSurge,
    SourceChange,
    label_feed_status,
)
from lab_runtime.pipeline.releases import Release, Stats, Transform, apply, to_features
from lab_runtime.pipeline.store import RELEASE_POLL, Condition, Deployment, ReleaseStore
from lab_runtime.settings import Settings, load_settings

log = logging.getLogger("lab_runtime.pipeline")

MAX_IN_FLIGHT = 64
CHUNK = 100  # rows drawn at a time; the cursor is saved at each chunk
RATE_WINDOW = 10.0
READY_POLL = 1.0
STATUS_EVERY = 1.0
SUMMARY_EVERY = 30  # status writes between two summary log lines
LABEL_GIVE_UP = 60.0  # seconds past due after which an undeliverable label is dropped
CLIENT_TIMEOUT = 5.0  # seconds for one request to the model service
READY_TIMEOUT = 2.0
JSON_HEADERS = {"content-type": "application/json"}
LABEL_DRAIN = CLIENT_TIMEOUT  # a label post in flight when the pipeline stops may finish
_TRANSFORM_STREAM, _LABEL_STREAM = 101, 102  # seeds of the rows a `share` picks and the rows that get labels
M = TypeVar("M", ConceptChange, LabelFeedStop, SourceChange, LoadSurge)


@dataclass
class Counters:
    sent: int = 0
    ok: int = 0
    rejected_4xx: int = 0
    failed_5xx: int = 0
    connection_errors: int = 0
    labels_posted: int = 0
    labels_dropped: int = 0
    labels_withheld: int = 0  # came due while the label feed was stopped: never posted
    skipped: int = 0


@dataclass
class Chunk:
    """Production rows `start`.. of the stream: ids, untransformed features, true labels, and the payloads to send."""

    start: int
    ids: list[str]
    raw: pd.DataFrame
    labels: list[int]
    labelled: list[bool]
    payloads: list[dict[str, Any]]
    next: int = 0

    def done(self) -> bool:
        return self.next >= len(self.ids)


def payloads(
    raw: pd.DataFrame, start: int, transforms: list[Transform], stats: Stats, seed: int
) -> list[dict[str, Any]]:
    """Feature dicts of the rows from stream position `start` under `transforms` (share choices seeded by position)."""
    rng = np.random.default_rng([seed, _TRANSFORM_STREAM, start])
    return to_features(apply(raw, transforms, stats, rng))


def sent_as(release: Release, source: SourceChange | None) -> list[Transform]:
    """What turns a drawn row into what is sent: the source's change of meaning, then the release's transforms."""
    return ([source.change] if source else []) + list(release.transforms)


def make_chunk(gen: DataGenerator, start: int, n: int, transforms: list[Transform], label_share: float) -> Chunk:
    frame = gen.production(start, n)
    raw = frame[list(FEATURES)]
    labelled = np.random.default_rng([gen.seed, _LABEL_STREAM, start]).random(n) < label_share
    return Chunk(
        start,
        frame[REQUEST_ID].tolist(),
        raw,
        frame[LABEL].astype(int).tolist(),
        labelled.tolist(),
        payloads(raw, start, transforms, gen.stats, gen.seed),
    )


def retransform(chunk: Chunk, transforms: list[Transform], gen: DataGenerator) -> None:
    """Re-build the payloads of the rows not sent yet under other transforms."""
    rest = chunk.raw.iloc[chunk.next :]
    chunk.payloads[chunk.next :] = payloads(rest, chunk.start + chunk.next, transforms, gen.stats, gen.seed)


def relabel(chunk: Chunk, gen: DataGenerator) -> None:
    """Re-draw the true labels of the rows not sent yet under `gen`'s label function (same rows, same draws)."""
    if not chunk.done():
        rest = gen.production(chunk.start + chunk.next, len(chunk.ids) - chunk.next)
        chunk.labels[chunk.next :] = rest[LABEL].astype(int).tolist()


def concept_generator(base: DataGenerator, change: ConceptChange | None) -> DataGenerator:
    """`base` itself, or a generator of the same rows whose labels come from the changed label function."""
    if change is None:
        return base
    return DataGenerator(base.seed, base.population, change.apply(base.labels))


class RateMeter:
    """Events per second over the last `window` seconds (or since the start, if that is shorter)."""

    def __init__(self, window: float, now: float) -> None:
        self.window = window
        self.started = now
        self._times: deque[float] = deque()

    def add(self, now: float) -> None:
        self._times.append(now)

    def rate(self, now: float) -> float:
        while self._times and self._times[0] < now - self.window:
            self._times.popleft()
        span = min(self.window, now - self.started)
        return len(self._times) / span if span > 0 else 0.0


def read_status(path: Path) -> dict[str, Any] | None:
    """The pipeline's last status, or None if there is none (yet)."""
    return read_json(path)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


class Pipeline:
    """One pipeline: its schedule, in-flight requests, pending labels, counters and status file."""

    def __init__(
        self, settings: Settings, store: ReleaseStore, client: aiohttp.ClientSession, gen: DataGenerator | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.client = client
        self.base_gen = gen or DataGenerator(settings.seed)
        self.gen = self.base_gen  # draws the rows; its label function follows the concept condition
        self.counters = Counters()
        self.meter = RateMeter(RATE_WINDOW, time.monotonic())
        self.ready = False
        self.state = "waiting"
        self.reason: str | None = "checking the model service"
        self.last_error: dict[str, Any] | None = None
        self.deployment: Deployment = store.active()
        self.release = store.get(self.deployment.version)
        self.position = store.cursor()  # the next stream row to send
        self.chunk: Chunk | None = None
        self.labels: list[tuple[float, str, int, float]] = []  # heap of (due, request_id, label, give up at)
        self.in_flight: set[asyncio.Task[None]] = set()
        self._writes = 0
        self.concept: ConceptChange | None = None  # never in the status or the log: the learner reads those
        self.feed_stop: LabelFeedStop | None = None
        self.feed_stopped_at: float | None = None
        self.source: SourceChange | None = None  # like the concept: never in the status or the log
        self.surge: LoadSurge | None = None
        self.refresh_conditions()

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop` is set; then let a label post in flight finish (so the counters match what the service
        recorded), cancel what is still in flight, save the cursor and write a last status."""
        log.info("pipeline started at row %d with release %s", self.position, self.release.version)
        labels = asyncio.create_task(self._post_labels(stop))
        helpers = [
            asyncio.create_task(self._every(STATUS_EVERY, self.write_status, stop)),
            asyncio.create_task(self._every(RELEASE_POLL, self.refresh_release, stop)),
            asyncio.create_task(self._every(RELEASE_POLL, self.refresh_conditions, stop)),
        ]
        try:
            await self._traffic(stop)
        finally:
            if stop.is_set():  # else an error ended the traffic: the poster would not stop by itself
                await asyncio.wait({labels}, timeout=LABEL_DRAIN)
            tasks = [*helpers, labels, *self.in_flight]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.store.save_cursor(self.position)
            self.state, self.reason = "stopped", None
            self.write_status()
            log.info("pipeline stopped at row %d: %s", self.position, asdict(self.counters))

    async def _every(self, seconds: float, action: Callable[[], None], stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                action()
            except Exception:  # a failed status write or store read must not end the pipeline
                log.exception("%s failed", getattr(action, "__name__", action))
            await _pause(stop, seconds)

    def refresh_release(self) -> None:
        """Follow the active release: the rows not sent yet are rebuilt under a new one."""
        deployment = self.store.active()
        if deployment.id == self.deployment.id:
            return
        self.release = self.store.get(deployment.version)
        self.deployment = deployment
        if self.chunk is not None:
            retransform(self.chunk, sent_as(self.release, self.source), self.gen)
        log.info("release %s is active (%s): %s", self.release.version, deployment.reason, self.release.summary())
        self.write_status()  # at once: drills and `lab pipeline status` wait for the new release to show

    def refresh_conditions(self) -> None:
        """Follow the world conditions: the concept (labels of rows not sent yet), the label feed, a source's change of
        meaning (rows not sent yet) and a load surge."""
        active = self.store.conditions()
        self._follow_concept(_parsed(active.get(CONCEPT), ConceptChange))
        source = _parsed(active.get(SOURCE), SourceChange)
        if source != self.source:
            self.source = source
            if self.chunk is not None:
                retransform(self.chunk, sent_as(self.release, source), self.gen)
        self.surge = _parsed(active.get(SURGE), LoadSurge)
        feed = active.get(LABEL_FEED)
        self._follow_label_feed(_parsed(feed, LabelFeedStop), feed.set_at if feed else None)

    def _follow_concept(self, change: ConceptChange | None) -> None:
        if change == self.concept:
            return
        # Deliberately not logged: the learner reads this log and must find the change in the quality metrics.
        self.concept = change
        self.gen = concept_generator(self.base_gen, change)
        if self.chunk is not None:
            relabel(self.chunk, self.gen)

    def _follow_label_feed(self, stop: LabelFeedStop | None, since: float | None) -> None:
        if (stop, since) == (self.feed_stop, self.feed_stopped_at):
            return
        if stop is not None:
            log.warning("label feed stopped: %s; labels that come due are withheld", stop.reason)
        else:
            log.info("label feed running again (%d labels withheld so far)", self.counters.labels_withheld)
        self.feed_stop, self.feed_stopped_at = stop, since

    async def _traffic(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not stop.is_set():
            interval = 1.0 / (self.settings.pipeline_rate * (self.surge.factor if self.surge else 1.0))
            if not self.ready:
                await self._wait_until_ready(stop)
                next_at = loop.time()
                continue
            now = loop.time()
            if now < next_at:
                await asyncio.sleep(min(next_at - now, 0.25))
                continue
            if now - next_at > 1.0:  # the loop stalled: skip the backlog instead of bursting it out
                missed = int((now - next_at) / interval)
                self.counters.skipped += missed
                next_at += missed * interval
            next_at += interval
            if len(self.in_flight) >= MAX_IN_FLIGHT:
                self.counters.skipped += 1
            else:
                self._launch()

    async def _wait_until_ready(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            reason = await self._not_ready_reason()
            if reason is None:
                self.ready = True
                self.state, self.reason = "sending", None
                log.info("sending %g requests/s to %s", self.settings.pipeline_rate, self.settings.service_url)
                return
            self._not_ready(reason)
            await _pause(stop, READY_POLL)

    async def _not_ready_reason(self) -> str | None:
        url = self.settings.service_url
        try:
            async with self.client.get("/ready", timeout=aiohttp.ClientTimeout(total=READY_TIMEOUT)) as answer:
                status, text = answer.status, await answer.text(errors="replace")
        except aiohttp.ClientConnectorError:
            return f"connection refused at {url}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"{url}/ready did not answer ({type(exc).__name__})"
        if status == 200:
            return None
        try:
            reason = json.loads(text).get("reason") or text
        except (ValueError, AttributeError):
            reason = text
        return f"the model service is not ready ({status}: {str(reason)[:200]})"

    def _not_ready(self, reason: str) -> None:
        if reason != self.reason:
            log.info("waiting: %s", reason)
        self.ready = False
        self.state, self.reason = "waiting", reason

    def _launch(self) -> None:
        if self.chunk is None or self.chunk.done():
            transforms = sent_as(self.release, self.source)
            self.chunk = make_chunk(self.gen, self.position, CHUNK, transforms, self.settings.label_share)
            self.store.save_cursor(self.position)
        chunk, i = self.chunk, self.chunk.next
        chunk.next += 1
        self.position += 1
        self.counters.sent += 1
        self.meter.add(time.monotonic())
        label = chunk.labels[i] if chunk.labelled[i] else None
        task = asyncio.create_task(self._predict(chunk.ids[i], chunk.payloads[i], label))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    async def _predict(self, request_id: str, features: dict[str, Any], label: int | None) -> None:
        try:
            status, text = await self._post("/predict", {"request_id": request_id, "features": features})
        except (aiohttp.ClientError, TimeoutError) as exc:  # refused, timed out, dropped
            self.counters.connection_errors += 1
            self._error(None, f"{type(exc).__name__}: {exc}")
            if isinstance(exc, aiohttp.ClientConnectorError):
                self._not_ready(f"connection refused at {self.settings.service_url}")
            return
        if status == 200:
            self.counters.ok += 1
            if label is not None:
                due = time.monotonic() + self.settings.scaled(self.settings.label_delay)
                heapq.heappush(self.labels, (due, request_id, label, due + LABEL_GIVE_UP))
            return
        self._error(status, text)
        if status >= 500:
            self.counters.failed_5xx += 1
            if status == 503:
                self._not_ready(f"the model service answered 503: {text[:200]}")
        else:
            self.counters.rejected_4xx += 1

    async def _post(self, path: str, body: dict[str, Any]) -> tuple[int, str]:
        """POST `body` as JSON to the service: the status and the body's text."""
        post = self.client.post(path, data=orjson.dumps(body), headers=JSON_HEADERS, allow_redirects=False)
        async with post as answer:
            return answer.status, await answer.text(errors="replace")

    def _error(self, status: int | None, body: str) -> None:
        """Keep the last error (status code, first 200 characters); log it when its status differs from the last."""
        if self.last_error is None or self.last_error["status"] != status:
            log.warning("%s: %s", status or "no answer", body[:200])
        self.last_error = {"status": status, "body": body[:200], "at": time.time()}

    async def _post_labels(self, stop: asyncio.Event) -> None:
        """Post due labels, oldest first; when the service cannot take one, try again a second later."""
        while not stop.is_set():
            while self.labels and self.labels[0][0] <= time.monotonic() and not stop.is_set():
                _, request_id, label, give_up = heapq.heappop(self.labels)
                if self.feed_stop is not None:  # an outage: this label never arrives
                    self.counters.labels_withheld += 1
                    continue
                if time.monotonic() > give_up:
                    self.counters.labels_dropped += 1
                    continue
                if not await self._post_label(request_id, label):
                    heapq.heappush(self.labels, (time.monotonic() + 1.0, request_id, label, give_up))
                    break
            await _pause(stop, 0.1)

    async def _post_label(self, request_id: str, label: int) -> bool:
        """False when it is worth trying again (the service is down or failing)."""
        try:
            status, text = await self._post("/feedback", {"request_id": request_id, "label": label})
        except (aiohttp.ClientError, TimeoutError):
            return False
        if status >= 500:
            return False
        if status >= 300:  # refused: trying again will not help
            self.counters.labels_dropped += 1
            self._error(status, text)
        else:
            self.counters.labels_posted += 1
        return True

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "state": self.state,
            "reason": self.reason,
            "release": self.release.version,
            "target_rate": self.settings.pipeline_rate,
            "actual_rate": round(self.meter.rate(time.monotonic()), 2),
            "in_flight": len(self.in_flight),
            "pending_labels": len(self.labels),
            "label_feed": label_feed_status(self.feed_stop, self.feed_stopped_at),
            "cursor": self.position,
            "counters": asdict(self.counters),
            "last_error": self.last_error,
            "updated": time.time(),
        }

    def write_status(self) -> None:
        """Rewrite the status file: the supervisor reads its age as the pipeline's health."""
        body = self.status()
        write_json_atomic(self.settings.pipeline_status_path, body)
        self._writes += 1
        if self._writes % SUMMARY_EVERY == 0:
            log.info("%s %s, %.1f req/s: %s", body["state"], body["release"], body["actual_rate"], body["counters"])


def _parsed(condition: Condition | None, model: type[M]) -> M | None:
    """The condition's value, or None when absent or not valid (the store validates on write, so only a store
    written by other code holds one; it is ignored without a log line, which could name the concept)."""
    if condition is None:
        return None
    try:
        return model.model_validate(condition.value)
    except ValueError:
        return None


async def run(settings: Settings) -> None:
    """The pipeline until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with ReleaseStore(settings.pipeline_db_path) as store:
        async with service_session(settings) as client:
            await Pipeline(settings, store, client).run(stop)


def service_session(settings: Settings) -> aiohttp.ClientSession:
    """The pipeline's HTTP client to the model service (aiohttp: a request costs half the CPU it does in httpx)."""
    return aiohttp.ClientSession(
        base_url=settings.service_url,
        timeout=aiohttp.ClientTimeout(total=CLIENT_TIMEOUT),
        connector=aiohttp.TCPConnector(limit=MAX_IN_FLIGHT + 4, keepalive_timeout=4),  # uvicorn closes idle at 5 s
    )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = load_settings()
    settings.ensure_dirs()
    asyncio.run(run(settings))
