"""The shadow: records the champion answered, mirrored to `@staging` off the hot path.

`/predict` hands a `shadow_share` of the champion's records (a sticky bucket of the request id, salted so that it does
not follow the canary split) to `ShadowMirror.offer`, which never blocks: the queue is bounded, and a record that does
not fit is logged as dropped. A daemon thread of the mirror's (not the event loop, not the Batcher's workers) takes
what is queued, validates each record against the staging version's signature, scores them in one call, decides them
under the output policy in force and logs each beside the champion's answer (`ShadowRow`). Nothing the staging
version does (raise, hang) reaches a caller or the champion: at worst its queue fills and records are dropped.
Each staging version has a queue and a thread of its own: when the shadow stops or `@staging` moves, a version's
thread drops what is still queued for it (once the call it is in returns) and ends, and the next version's starts.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from lab_runtime.predlog import DROPPED, ERROR, SCORED, Row, ShadowRow
from lab_runtime.service.metrics import ServiceMetrics
from lab_runtime.service.models import LoadedModel
from lab_runtime.service.policy import Policy
from lab_runtime.service.routing import bucket

log = logging.getLogger(__name__)
SALT = "shadow:"  # the shadow's bucket of a request id is not its canary bucket
QUEUE_SIZE = 256  # records waiting for the shadow; beyond this they are dropped
MAX_BATCH = 64  # records scored in one call of the staging version
TAKE_TIMEOUT = 0.2  # seconds the worker waits for a record before it looks at its stop flag again
GATHER = 0.05  # seconds the worker lets records gather after the first: fewer, larger calls (less CPU per record)


def mirrored(request_id: str, share: float) -> bool:
    """Whether the record of `request_id` goes to the shadow: sticky, and independent of the canary split."""
    return share > 0 and bucket(SALT + request_id) < share


@dataclass(frozen=True)
class Mirrored:
    """A record the champion answered, as the shadow gets it: the request's features, and its log row with the
    champion's answer filled in (outcome DROPPED until the shadow answers)."""

    model: LoadedModel  # the staging version that scores it
    features: dict[str, Any]  # as the request sent them: the staging version validates them with its own signature
    lost: dict[str, Any]  # features an overload fault took away from the champion (as zeros): taken from it too
    row: ShadowRow


def _invalid(exc: ValidationError, version: str) -> str:
    """A record that does not fit the staging version's signature, in one line (the first three errors)."""
    said = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3])
    return f"the record does not fit version {version}'s signature: {said}"


class _Lane:
    """One staging version's queue and the worker thread that scores it. Once `closed` (under `lock`, by its worker
    before its last drain) it takes no record: an offer then opens a new lane, so no record lands where none reads."""

    def __init__(self, version: str, maxsize: int, run: Callable[[_Lane], None]) -> None:
        self.version = version
        self.queue: queue.Queue[Mirrored] = queue.Queue(maxsize)
        self.thread = threading.Thread(target=run, args=(self,), name=f"shadow-{version}", daemon=True)
        self.lock = threading.Lock()
        self.closed = False

    def put(self, item: Mirrored) -> bool | None:
        """Queue `item`: True, False when the queue is full, None when the lane is closed."""
        with self.lock:
            if self.closed:
                return None
            try:
                self.queue.put_nowait(item)
            except queue.Full:
                return False
            return True

    def close(self) -> None:
        with self.lock:
            self.closed = True


class ShadowMirror:
    """Bounded queues of mirrored records, one per staging version, each with the worker thread that scores it.

    A version's worker ends once the version is no longer the shadow (its queue dropped, after the call it is in),
    so a version that hangs never holds up the next one.
    """

    def __init__(
        self,
        log_rows: Callable[[Sequence[Row]], None],
        policy: Callable[[], Policy],
        staging: Callable[[], LoadedModel | None],
        metrics: ServiceMetrics,
        maxsize: int = QUEUE_SIZE,
        batch: int = MAX_BATCH,
        gather: float = GATHER,
    ) -> None:
        self._log = log_rows
        self._policy = policy
        self._staging = staging  # the shadow now: a worker whose version it is not drops what it holds and ends
        self._metrics = metrics
        self._batch = batch
        self._gather = gather
        self.maxsize = maxsize
        self._lanes: dict[str, _Lane] = {}  # replaced whole by `offer` (the event loop), read anywhere
        self.queued = 0  # records handed to a worker since the start (offer runs on the event loop only)
        self.dropped = 0  # records dropped: the queue was full, or the shadow moved on before they were scored
        self._dropped_lock = threading.Lock()  # the event loop and the workers both drop
        self._stop = threading.Event()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop every worker; one stuck in a staging version's call is left behind (a daemon)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for lane in self._lanes.values():
            lane.thread.join(max(0.0, deadline - time.monotonic()))

    def depth(self) -> int:
        """Records waiting in open lanes (a closed lane's are being dropped)."""
        return sum(lane.queue.qsize() for lane in self._lanes.values() if not lane.closed)

    def offer(self, item: Mirrored) -> None:
        """Queue `item` for the shadow; never waits (the lane's lock is held only around a put or a close): when the
        queue is full it is logged as dropped and counted."""
        version = item.model.version
        lane = self._lanes.get(version)
        put = lane.put(item) if lane is not None else None
        if put is None:  # the first record of a version, or its worker has ended: a new lane and worker for it
            lane = _Lane(version, self.maxsize, self._run)
            put = lane.put(item)
            self._lanes = {**{v: other for v, other in self._lanes.items() if not other.closed}, version: lane}
            lane.thread.start()
        if not put:
            self._drop([item])
            return
        self.queued += 1

    def _drop(self, items: list[Mirrored]) -> None:
        if not items:
            return
        with self._dropped_lock:
            self.dropped += len(items)
        self._metrics.shadow_records.labels(DROPPED, items[0].model.version).inc(len(items))
        self._log([item.row for item in items])  # each row's outcome is DROPPED until the shadow answers

    def _take(self, lane: _Lane, timeout: float | None = TAKE_TIMEOUT, most: int | None = None) -> list[Mirrored]:
        """What `lane` holds, up to `most` (default: a batch), waiting up to `timeout` for the first."""
        most = most or self._batch
        try:
            items = [lane.queue.get(timeout=timeout) if timeout else lane.queue.get_nowait()]
        except queue.Empty:
            return []
        if timeout and self._gather:
            time.sleep(self._gather)  # the caller of the first record is answered already: none of them waits
        while len(items) < most:
            try:
                items.append(lane.queue.get_nowait())
            except queue.Empty:
                break
        return items

    def _current(self, lane: _Lane) -> bool:
        staging = self._staging()
        return staging is not None and staging.version == lane.version

    def _run(self, lane: _Lane) -> None:
        while not self._stop.is_set() and self._current(lane):
            items = self._take(lane)
            if not items:
                continue
            if not self._current(lane):  # the shadow moved on while they waited
                self._drop(items)
                break
            try:
                rows = self._score(items)
            except Exception:  # a bug here must not end the worker: the records are lost, the shadow goes on
                log.exception("the shadow could not handle %d mirrored records", len(items))
                continue
            self._log(rows)
            self._count(rows)
        lane.close()  # from here no record is put here: what is left is all there will be
        self._drop(self._take(lane, timeout=None, most=lane.queue.maxsize))

    def _score(self, group: list[Mirrored]) -> list[ShadowRow]:
        """The log rows of `group` (one staging version): validated, scored in one call, decided by the policy."""
        model, rules = group[0].model, self._policy()
        rows: list[ShadowRow] = []
        valid: list[tuple[Mirrored, dict[str, Any]]] = []
        for item in group:
            try:
                valid.append((item, model.record_model.model_validate(item.features).model_dump()))
            except ValidationError as exc:
                rows.append(replace(item.row, outcome=ERROR, error=_invalid(exc, model.version)))
        if not valid:
            return rows
        started = time.perf_counter()
        try:
            predictions, probabilities = model.score([{**f, **item.lost} for item, f in valid])
        except Exception as exc:  # the staging version failed: every record of the call says why
            error = f"version {model.version} failed to score: {type(exc).__name__}: {exc}"[:500]
            return rows + [replace(item.row, outcome=ERROR, error=error) for item, _ in valid]
        elapsed_ms = (time.perf_counter() - started) * 1000
        for (item, features), pred, proba in zip(valid, predictions.tolist(), probabilities.tolist(), strict=True):
            decision = rules.decide(proba)
            broken = tuple(rules.violations(decision, features))
            answer = {"prediction": pred, "probability": proba, "decision": decision, "latency_ms": elapsed_ms}
            rows.append(replace(item.row, outcome=SCORED, violations=broken, **answer))
        return rows

    def _count(self, rows: list[ShadowRow]) -> None:
        m = self._metrics
        for r in rows:
            m.shadow_records.labels(r.outcome, r.version).inc()
            if r.outcome != SCORED:
                continue
            m.shadow_latency.observe((r.latency_ms or 0.0) / 1000)
            if r.decision != r.champion_decision:
                m.shadow_disagreements.labels(r.version).inc()
            for rule in r.violations:
                m.shadow_violations.labels(rule, r.version).inc()
