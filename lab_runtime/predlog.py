"""The prediction log: every prediction and request outcome of the service, and the shadow's answers to the records
mirrored to it, written off the hot path, read by time.

`PredictionLogger.log` never blocks: rows go to a bounded queue that one thread drains in batches;
when the queue is full the rows are counted as dropped instead. The same thread deletes rows older
than the retention, so readers' cost follows their window, not the history.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lab_runtime.files.sqlite import connect

if TYPE_CHECKING:  # pandas only where a frame is read: the service's writer and a lab's counts load none
    import pandas as pd

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
    features TEXT NOT NULL,
    decision TEXT NOT NULL DEFAULT '',
    violations TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS predictions_ts ON predictions (ts);
CREATE INDEX IF NOT EXISTS predictions_request ON predictions (request_id);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    request_id TEXT NOT NULL,
    label INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_request ON feedback (request_id);
CREATE INDEX IF NOT EXISTS feedback_ts ON feedback (ts);
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    status INTEGER NOT NULL,
    variant TEXT NOT NULL,
    records INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    model_version TEXT NOT NULL DEFAULT 'none'
);
CREATE INDEX IF NOT EXISTS requests_ts ON requests (ts);
CREATE TABLE IF NOT EXISTS fallback_decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    request_id TEXT NOT NULL,
    decision TEXT NOT NULL,
    features TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS fallback_decisions_ts ON fallback_decisions (ts);
CREATE TABLE IF NOT EXISTS shadow (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    request_id TEXT NOT NULL,
    version TEXT NOT NULL,
    outcome TEXT NOT NULL,
    prediction INTEGER,
    probability REAL,
    decision TEXT NOT NULL DEFAULT '',
    violations TEXT NOT NULL DEFAULT '',
    latency_ms REAL,
    error TEXT,
    champion_version TEXT NOT NULL,
    champion_prediction INTEGER NOT NULL,
    champion_probability REAL NOT NULL,
    champion_decision TEXT NOT NULL,
    champion_violations TEXT NOT NULL DEFAULT '',
    champion_latency_ms REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS shadow_ts ON shadow (ts);
"""
# Columns added after a table first shipped: (table, column, definition), added to older files on open.
_ADDED_COLUMNS = (
    ("requests", "model_version", "TEXT NOT NULL DEFAULT 'none'"),
    ("predictions", "decision", "TEXT NOT NULL DEFAULT ''"),
    ("predictions", "violations", "TEXT NOT NULL DEFAULT ''"),
)
_SHADOW_COLUMNS = (
    "ts", "request_id", "version", "outcome", "prediction", "probability", "decision", "violations", "latency_ms",
    "error", "champion_version", "champion_prediction", "champion_probability", "champion_decision",
    "champion_violations", "champion_latency_ms",
)  # fmt: skip
_TABLES = ("predictions", "feedback", "requests", "fallback_decisions", "shadow")


@dataclass(frozen=True)
class PredictionRow:
    """One prediction served; `violations` are the ids of the output-policy rules its decision broke."""

    ts: float
    request_id: str
    model_version: str
    variant: str
    prediction: int
    probability: float
    latency_ms: float
    features: dict[str, Any]
    decision: str = ""
    violations: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeedbackRow:
    ts: float
    request_id: str
    label: int


@dataclass(frozen=True)
class RequestRow:
    """One /predict call: its HTTP status, variant and version ("none" when refused before routing), latency."""

    ts: float
    status: int
    variant: str
    records: int
    latency_ms: float
    model_version: str = "none"


@dataclass(frozen=True)
class FallbackRow:
    """A decision the fallback made because the model switch sent the request away from the model."""

    ts: float
    request_id: str
    decision: str
    features: dict[str, Any]


SCORED, ERROR, DROPPED = "scored", "error", "dropped"  # what became of a record mirrored to the shadow


@dataclass(frozen=True)
class ShadowRow:
    """A record the champion answered, mirrored to the shadow (`@staging`): the shadow's answer beside the champion's.

    `ts` is when the champion answered. `outcome` is SCORED, ERROR (the shadow raised or refused the record: `error`
    says what) or DROPPED (its queue was full, or the shadow moved on first); only a scored row has the shadow's
    prediction, decision and latency (its model call, not the wait in its queue). The champion's latency is its
    whole /predict call's, as the service timed it.
    """

    ts: float
    request_id: str
    version: str
    outcome: str
    champion_version: str
    champion_prediction: int
    champion_probability: float
    champion_decision: str
    champion_latency_ms: float
    champion_violations: tuple[str, ...] = ()
    prediction: int | None = None
    probability: float | None = None
    decision: str = ""
    violations: tuple[str, ...] = ()
    latency_ms: float | None = None
    error: str | None = None


Row = PredictionRow | FeedbackRow | RequestRow | FallbackRow | ShadowRow


class PredictionLogger:
    """Batches prediction rows into SQLite from a background thread."""

    def __init__(
        self,
        path: Path,
        maxsize: int,
        on_drop: Callable[[int], None] = lambda n: None,
        batch: int = 500,
        flush_interval: float = 0.2,
        retention: float = 3600.0,
        linger: float = 0.05,
    ) -> None:
        self._conn = connect(path, _SCHEMA, _ADDED_COLUMNS)
        self._retention = retention
        self._pruned_at = 0.0
        self._db_lock = threading.Lock()  # the writer thread and prune() share the connection
        self._queue: queue.Queue[Row | None] = queue.Queue(maxsize)
        self._on_drop = on_drop
        self._batch = batch
        self._flush_interval = flush_interval
        self._linger = linger
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def depth(self) -> int:
        return self._queue.qsize()

    def log(self, rows: Sequence[Row]) -> None:
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
        if self._queue.qsize() < self._batch - 1:
            time.sleep(self._linger)  # rows that arrive together share one transaction, not one each
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
            if time.time() - self._pruned_at > min(60.0, self._retention / 10):
                self.prune()

    def prune(self, now: float | None = None) -> None:
        """Delete every row older than the retention."""
        self._pruned_at = time.time() if now is None else now
        cutoff = self._pruned_at - self._retention
        with self._db_lock:
            for table in _TABLES:
                self._conn.execute(f"DELETE FROM {table} WHERE ts < ?", (cutoff,))

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
                r.decision,
                ",".join(r.violations),
            )
            for r in rows
            if isinstance(r, PredictionRow)
        ]
        labels = [(r.ts, r.request_id, r.label) for r in rows if isinstance(r, FeedbackRow)]
        requests = [
            (r.ts, r.status, r.variant, r.records, r.latency_ms, r.model_version)
            for r in rows
            if isinstance(r, RequestRow)
        ]
        fallback = [
            (r.ts, r.request_id, r.decision, json.dumps(r.features)) for r in rows if isinstance(r, FallbackRow)
        ]
        shadow = [
            tuple(",".join(v) if isinstance(v, tuple) else v for v in (getattr(r, c) for c in _SHADOW_COLUMNS))
            for r in rows
            if isinstance(r, ShadowRow)
        ]
        with self._db_lock:
            self._insert(predictions, labels, requests, fallback, shadow)

    def _insert(
        self,
        predictions: list[tuple[Any, ...]],
        labels: list[tuple[Any, ...]],
        requests: list[tuple[Any, ...]],
        fallback: list[tuple[Any, ...]],
        shadow: list[tuple[Any, ...]],
    ) -> None:
        self._conn.execute("BEGIN")
        self._conn.executemany(
            f"INSERT INTO shadow ({', '.join(_SHADOW_COLUMNS)}) VALUES ({', '.join('?' * len(_SHADOW_COLUMNS))})",
            shadow,
        )
        self._conn.executemany(
            "INSERT INTO fallback_decisions (ts, request_id, decision, features) VALUES (?, ?, ?, ?)", fallback
        )
        self._conn.executemany(
            "INSERT INTO predictions (ts, request_id, model_version, variant, prediction, probability, "
            "latency_ms, features, decision, violations) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            predictions,
        )
        self._conn.executemany("INSERT INTO feedback (ts, request_id, label) VALUES (?, ?, ?)", labels)
        self._conn.executemany(
            "INSERT INTO requests (ts, status, variant, records, latency_ms, model_version) VALUES (?, ?, ?, ?, ?, ?)",
            requests,
        )
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


def _query(sql: str, conn: sqlite3.Connection, params: Sequence[Any]) -> pd.DataFrame:
    """The rows of `sql` as a frame (pandas imported here, on the first read)."""
    import pandas as pd

    return pd.read_sql_query(sql, conn, params=params)


def _before(frame: pd.DataFrame, until: float) -> pd.DataFrame:
    """The rows of `frame` (in id order) before its first row with `ts >= until`."""
    late = (frame["ts"] >= until).to_numpy()
    return frame.iloc[: int(late.argmax())] if late.any() else frame


class PredictionLog:
    """Reads the prediction log by time index."""

    def __init__(self, path: Path) -> None:
        self._conn = connect(path, _SCHEMA, _ADDED_COLUMNS)

    def count(self, since: float = 0.0, model_version: str | None = None, exclude_ids: str | None = None) -> int:
        """Predictions since `since`, of one version, leaving out request ids matching the GLOB `exclude_ids`."""
        sql = "SELECT COUNT(*) FROM predictions WHERE ts >= ?"
        args: list[float | str] = [since]
        if model_version is not None:
            sql += " AND model_version = ?"
            args.append(model_version)
        if exclude_ids is not None:
            sql += " AND request_id NOT GLOB ?"
            args.append(exclude_ids)
        return int(self._conn.execute(sql, args).fetchone()[0])

    def calls(self, since: float = 0.0) -> int:
        """/predict calls since `since`, answered or refused."""
        return int(self._conn.execute("SELECT COUNT(*) FROM requests WHERE ts >= ?", (since,)).fetchone()[0])

    def labels(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM feedback").fetchone()[0])

    def window(self, since: float, until: float | None = None, limit: int | None = None) -> pd.DataFrame:
        """Predictions with `since <= ts < until` (the newest `limit` of them), features expanded into columns;
        a window without predictions is an empty frame of the log's own columns."""
        frame = _query(
            "SELECT * FROM (SELECT * FROM predictions WHERE ts >= ? AND ts < ? ORDER BY ts DESC LIMIT ?) ORDER BY ts",
            self._conn,
            params=(since, until if until is not None else float("inf"), -1 if limit is None else limit),
        )
        return self._expand(frame)

    @staticmethod
    def _expand(frame: pd.DataFrame) -> pd.DataFrame:
        """`frame` with its JSON `features` column expanded into one column per feature."""
        import pandas as pd

        features = pd.DataFrame([json.loads(f) for f in frame.pop("features")], index=frame.index)
        return pd.concat([frame, features], axis=1)

    def last_id(self, table: Literal["predictions", "feedback"], before: float) -> int:
        """The id of the newest row of `table` with `ts < before` (0 when there is none)."""
        row = self._conn.execute(f"SELECT MAX(id) FROM {table} WHERE ts < ?", (before,)).fetchone()
        return int(row[0] or 0)

    def labels_newer(self, after_id: int, until: float, limit: int) -> pd.DataFrame:
        """Labels that arrived after the one with id `after_id`, in arrival order up to the first with `ts >= until`
        (at most `limit`), each with its prediction: id, ts (of the label), model_version, prediction, label."""
        frame = _query(
            "SELECT f.id, f.ts, p.model_version, p.prediction, f.label "
            "FROM feedback f JOIN predictions p ON p.request_id = f.request_id "
            "WHERE f.id > ? ORDER BY f.id LIMIT ?",
            self._conn,
            params=(after_id, limit),
        )
        return _before(frame, until)

    def newer(self, after_id: int, until: float, limit: int) -> pd.DataFrame:
        """Predictions logged after the one with id `after_id`, in id order up to the first with `ts >= until` (at most
        `limit`), features expanded into columns: what a reader that sees every row once has not seen yet. Cut at the
        first late row rather than filtered, so a reader that moves on to the last id skips nothing."""
        frame = _query(
            "SELECT * FROM predictions WHERE id > ? ORDER BY id LIMIT ?", self._conn, params=(after_id, limit)
        )
        return self._expand(_before(frame, until))

    def decisions(self, since: float, until: float | None = None) -> pd.DataFrame:
        """The model's decisions with `since <= ts < until`: ts, decision, violations (no features: a light read)."""
        return _query(
            "SELECT ts, decision, violations FROM predictions WHERE ts >= ? AND ts < ? ORDER BY ts",
            self._conn,
            params=(since, until if until is not None else float("inf")),
        )

    def unsafe(self, since: float, until: float | None = None) -> list[float]:
        """When each decision with `since <= ts < until` that broke an output-policy rule was served."""
        rows = self._conn.execute(
            "SELECT ts FROM predictions WHERE ts >= ? AND ts < ? AND violations != '' ORDER BY ts",
            (since, until if until is not None else float("inf")),
        )
        return [float(ts) for (ts,) in rows]

    def fallback_decisions(self, since: float, until: float | None = None) -> int:
        """Decisions the fallback made with `since <= ts < until`."""
        sql = "SELECT COUNT(*) FROM fallback_decisions WHERE ts >= ? AND ts < ?"
        return int(self._conn.execute(sql, (since, until if until is not None else float("inf"))).fetchone()[0])

    def labelled(self, since: float, until: float | None = None) -> pd.DataFrame:
        """Predictions with `since <= ts < until` that received a label: prediction, probability, label."""
        return _query(
            "SELECT p.ts, p.model_version, p.variant, p.prediction, p.probability, f.label "
            "FROM predictions p JOIN feedback f ON f.request_id = p.request_id "
            "WHERE p.ts >= ? AND p.ts < ? ORDER BY p.ts",
            self._conn,
            params=(since, until if until is not None else float("inf")),
        )

    def labelled_features(self, since: float) -> list[tuple[dict[str, Any], int]]:
        """Decisions since `since`, the model's and the fallback's, with their features and label (the newest label of
        a request): training rows."""
        rows = self._conn.execute(
            "SELECT d.features, f.label FROM ("
            "  SELECT ts, request_id, features FROM predictions WHERE ts >= ? "
            "  UNION ALL SELECT ts, request_id, features FROM fallback_decisions WHERE ts >= ?) d "
            "JOIN (SELECT request_id, label FROM feedback "
            "      WHERE id IN (SELECT MAX(id) FROM feedback WHERE ts >= ? GROUP BY request_id)) f "
            "  ON f.request_id = d.request_id "
            "ORDER BY d.ts",
            (since, since, since),
        ).fetchall()
        return [(json.loads(features), int(label)) for features, label in rows]

    def requests(self, since: float, until: float | None = None) -> pd.DataFrame:
        """/predict calls with `since <= ts < until`: status, variant, records, latency, model version."""
        return _query(
            "SELECT ts, status, variant, records, latency_ms, model_version FROM requests "
            "WHERE ts >= ? AND ts < ? ORDER BY ts",
            self._conn,
            params=(since, until if until is not None else float("inf")),
        )

    def shadow(self, since: float, until: float | None = None, version: str | None = None) -> pd.DataFrame:
        """Records mirrored to the shadow with `since <= ts < until` (of one shadow version), oldest first, each with
        its request's newest label (`label`: None when it has none)."""
        sql = (
            f"SELECT {', '.join(f's.{c}' for c in _SHADOW_COLUMNS)}, "
            "(SELECT f.label FROM feedback f WHERE f.request_id = s.request_id ORDER BY f.id DESC LIMIT 1) AS label "
            "FROM shadow s WHERE s.ts >= ? AND s.ts < ?"
        )
        args: list[float | str] = [since, until if until is not None else float("inf")]
        if version is not None:
            sql += " AND s.version = ?"
            args.append(version)
        return _query(sql + " ORDER BY s.ts", self._conn, params=args)

    def close(self) -> None:
        self._conn.close()
