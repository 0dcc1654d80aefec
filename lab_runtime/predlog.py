"""The prediction log: every prediction the service makes, written off the hot path, read by time.

`PredictionLogger.log` never blocks: rows go to a bounded queue that one thread drains in batches;
when the queue is full the rows are counted as dropped instead.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lab_runtime.sqlite import connect

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    request_id TEXT NOT NULL,
    model_version TEXT NOT NULL,
    variant TEXT NOT NULL,
    prediction INTEGER NOT NULL,
    probability REAL NOT NULL,
    latency_ms REAL NOT NULL,
    features TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS predictions_ts ON predictions (ts);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    request_id TEXT NOT NULL,
    label INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_request ON feedback (request_id);
"""


@dataclass(frozen=True)
class PredictionRow:
    ts: float
    request_id: str
    model_version: str
    variant: str
    prediction: int
    probability: float
    latency_ms: float
    features: dict[str, Any]


@dataclass(frozen=True)
class FeedbackRow:
    ts: float
    request_id: str
    label: int


Row = PredictionRow | FeedbackRow


class PredictionLogger:
    """Batches prediction rows into SQLite from a background thread."""

    def __init__(
        self,
        path: Path,
        maxsize: int,
        on_drop: Callable[[int], None] = lambda n: None,
        batch: int = 500,
        flush_interval: float = 0.2,
    ) -> None:
        self._conn = connect(path, _SCHEMA)
        self._queue: queue.Queue[Row | None] = queue.Queue(maxsize)
        self._on_drop = on_drop
        self._batch = batch
        self._flush_interval = flush_interval
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def depth(self) -> int:
        return self._queue.qsize()

    def log(self, rows: list[Row]) -> None:
        """Queue rows for writing; rows that do not fit are dropped and counted, never waited for."""
        for i, row in enumerate(rows):
            try:
                self._queue.put_nowait(row)
            except queue.Full:
                self._on_drop(len(rows) - i)
                return

    def _take(self) -> tuple[list[Row], bool]:
        rows: list[Row] = []
        try:
            first = self._queue.get(timeout=self._flush_interval)
        except queue.Empty:
            return rows, False
        if first is None:
            return rows, True
        rows.append(first)
        while len(rows) < self._batch:
            try:
                row = self._queue.get_nowait()
            except queue.Empty:
                break
            if row is None:
                return rows, True
            rows.append(row)
        return rows, False

    def _run(self) -> None:
        stop = False
        while not stop:
            rows, stop = self._take()
            if rows:
                self._write(rows)

    def _write(self, rows: list[Row]) -> None:
        predictions = [
            (
                r.ts,
                r.request_id,
                r.model_version,
                r.variant,
                r.prediction,
                r.probability,
                r.latency_ms,
                json.dumps(r.features),
            )
            for r in rows
            if isinstance(r, PredictionRow)
        ]
        labels = [(r.ts, r.request_id, r.label) for r in rows if isinstance(r, FeedbackRow)]
        self._conn.execute("BEGIN")
        self._conn.executemany(
            "INSERT INTO predictions (ts, request_id, model_version, variant, prediction, probability, "
            "latency_ms, features) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            predictions,
        )
        self._conn.executemany("INSERT INTO feedback (ts, request_id, label) VALUES (?, ?, ?)", labels)
        self._conn.execute("COMMIT")

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the writer thread."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self._queue.put(None, timeout=0.1)
                break
            except queue.Full:
                continue
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self._conn.close()


class PredictionLog:
    """Reads the prediction log by time index."""

    def __init__(self, path: Path) -> None:
        self._conn = connect(path, _SCHEMA)

    def count(self, since: float = 0.0, model_version: str | None = None) -> int:
        sql = "SELECT COUNT(*) FROM predictions WHERE ts >= ?"
        args: list[float | str] = [since]
        if model_version is not None:
            sql += " AND model_version = ?"
            args.append(model_version)
        return int(self._conn.execute(sql, args).fetchone()[0])

    def labels(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM feedback").fetchone()[0])

    def window(self, since: float, until: float | None = None) -> pd.DataFrame:
        """Rows with `since <= ts < until`, features expanded into columns."""
        frame = pd.read_sql_query(
            "SELECT * FROM predictions WHERE ts >= ? AND ts < ? ORDER BY ts",
            self._conn,
            params=(since, until if until is not None else float("inf")),
        )
        features = pd.json_normalize([json.loads(f) for f in frame.pop("features")])
        return pd.concat([frame, features], axis=1)

    def close(self) -> None:
        self._conn.close()
