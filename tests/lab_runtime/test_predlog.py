import sqlite3
import time
from pathlib import Path

from lab_runtime.predlog import FeedbackRow, PredictionLog, PredictionLogger, PredictionRow


def row(i: int, ts: float = 0.0) -> PredictionRow:
    return PredictionRow(ts or time.time(), f"r{i}", "1", "champion", i % 2, 0.5, 1.0, {"age": 30 + i, "region": "n"})


def test_rows_are_written_in_batches_and_read_by_time(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    logger = PredictionLogger(path, maxsize=1000)
    logger.log([row(i, ts=100.0 + i) for i in range(50)])
    logger.log([FeedbackRow(time.time(), "r3", 1)])
    logger.close()
    log = PredictionLog(path)
    assert log.count() == 50
    assert log.count(since=140.0) == 10
    assert log.labels() == 1
    window = log.window(since=110.0, until=120.0)
    assert list(window["request_id"]) == [f"r{i}" for i in range(10, 20)]
    assert list(window["age"]) == list(range(40, 50))


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
