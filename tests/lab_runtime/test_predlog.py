import sqlite3
import time
from pathlib import Path

from lab_runtime.predlog import FallbackRow, FeedbackRow, PredictionLog, PredictionLogger, PredictionRow, RequestRow

T0 = time.time() - 1000  # recent enough for the default retention of an hour


def row(i: int, ts: float = 0.0) -> PredictionRow:
    return PredictionRow(ts or time.time(), f"r{i}", "1", "champion", i % 2, 0.5, 1.0, {"age": 30 + i, "region": "n"})


def test_rows_are_written_in_batches_and_read_by_time(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    logger = PredictionLogger(path, maxsize=1000)
    logger.log([row(i, ts=T0 + i) for i in range(50)])
    logger.log([FeedbackRow(time.time(), "r3", 1), FeedbackRow(time.time(), "r12", 0)])
    logger.log([RequestRow(T0 + 5, 200, "champion", 1, 3.0), RequestRow(T0 + 6, 422, "none", 1, 1.0)])
    logger.close()
    log = PredictionLog(path)
    assert log.count() == 50
    assert log.count(since=T0 + 40) == 10
    assert log.labels() == 2
    window = log.window(since=T0 + 10, until=T0 + 20)
    assert list(window["request_id"]) == [f"r{i}" for i in range(10, 20)]
    assert list(window["age"]) == list(range(40, 50))
    newest = log.window(since=T0, limit=3)
    assert list(newest["request_id"]) == ["r47", "r48", "r49"]
    labelled = log.labelled(since=T0)
    assert list(zip(labelled["prediction"], labelled["label"], strict=True)) == [(1, 1), (0, 0)]
    assert list(log.requests(since=T0)["status"]) == [200, 422]
    assert log.count(exclude_ids="r1*") == 39  # r1, r10..r19 left out


def test_rows_older_than_the_retention_are_deleted(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    now = time.time()
    logger = PredictionLogger(path, maxsize=1000, retention=60.0)
    logger.log([row(0, ts=now - 120), row(1, ts=now - 30), RequestRow(now - 90, 200, "champion", 1, 1.0)])
    logger.log([FeedbackRow(now - 61, "r0", 1), FeedbackRow(now - 1, "r1", 0)])
    logger.close()
    pruner = PredictionLogger(path, maxsize=10, retention=60.0)
    pruner.prune()
    pruner.close()
    log = PredictionLog(path)
    assert list(log.window(since=0)["request_id"]) == ["r1"]
    assert log.labels() == 1 and log.requests(since=0).empty


def test_a_full_queue_drops_and_counts_rows_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    dropped: list[int] = []
    logger = PredictionLogger(path, maxsize=5, on_drop=dropped.append, flush_interval=0.05)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the writer thread now waits on the database
    logger.log([row(0)])
    time.sleep(0.3)  # it has taken row 0 and is stuck writing it
    started = time.perf_counter()
    logger.log([row(i) for i in range(1, 101)])
    assert time.perf_counter() - started < 0.05
    assert sum(dropped) == 95
    assert logger.depth() == 5
    blocker.execute("COMMIT")
    logger.close()
    assert PredictionLog(path).count() == 6


def test_a_window_without_predictions_is_empty_whether_calls_failed_or_none_came(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    logger = PredictionLogger(path, maxsize=100)
    logger.log([RequestRow(T0 + i, 422, "none", 1, 1.0) for i in range(3)])  # every call refused: no prediction
    logger.close()
    log = PredictionLog(path)
    refused = log.window(since=T0)
    assert refused.empty and "request_id" in refused.columns
    assert list(log.requests(since=T0)["status"]) == [422, 422, 422]
    assert log.window(since=T0 + 100).empty and log.requests(since=T0 + 100).empty  # nothing at all


def test_a_prediction_keeps_its_decision_and_the_rules_it_broke_and_an_older_log_gains_the_columns(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p.db"
    with sqlite3.connect(path) as old:  # a log written before decisions were recorded
        old.execute(
            "CREATE TABLE predictions (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, request_id TEXT NOT "
            "NULL, model_version TEXT NOT NULL, variant TEXT NOT NULL, prediction INTEGER NOT NULL, probability REAL "
            "NOT NULL, latency_ms REAL NOT NULL, features TEXT NOT NULL)"
        )
        old.execute("INSERT INTO predictions VALUES (1, ?, 'old', '1', 'champion', 0, 0.1, 1.0, '{}')", (T0,))
    logger = PredictionLogger(path, maxsize=10)
    logger.log([PredictionRow(T0 + 1, "new", "1", "champion", 0, 0.1, 1.0, {}, "approve", ("a-rule", "b-rule"))])
    logger.close()
    window = PredictionLog(path).window(since=T0)
    assert list(zip(window["decision"], window["violations"], strict=True)) == [("", ""), ("approve", "a-rule,b-rule")]


def test_the_unsafe_decisions_are_read_by_time_and_the_fallbacks_labelled_decisions_are_training_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p.db"
    logger = PredictionLogger(path, maxsize=100)
    broke = ("approve-over-dti-limit",)
    logger.log(
        [
            PredictionRow(T0 + 1, "m1", "1", "champion", 0, 0.1, 1.0, {"age": 31}, "approve", broke),
            PredictionRow(T0 + 2, "m2", "1", "champion", 0, 0.1, 1.0, {"age": 32}, "approve"),
            PredictionRow(T0 + 3, "m3", "1", "champion", 0, 0.1, 1.0, {"age": 33}, "approve", broke),
            FallbackRow(T0 + 4, "f1", "refer", {"age": 41}),
            FeedbackRow(T0 + 5, "m2", 0),
            FeedbackRow(T0 + 5, "f1", 1),
        ]
    )
    logger.close()
    log = PredictionLog(path)
    assert log.unsafe(T0) == [T0 + 1, T0 + 3] and log.unsafe(T0 + 2, T0 + 3) == []
    decisions = log.decisions(T0 + 2)
    assert list(zip(decisions["decision"], decisions["violations"], strict=True)) == [
        ("approve", ""),
        ("approve", "approve-over-dti-limit"),
    ]
    assert log.labelled_features(T0) == [({"age": 32}, 0), ({"age": 41}, 1)]  # the model's and the fallback's
