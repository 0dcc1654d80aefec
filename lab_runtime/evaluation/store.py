"""The review queues and their labels, in `.lab/reviews.db` (SQLite, WAL: several reviewers' commands at once).

An evaluation replaces its version's queue: items of the old queue that are not in the new one are set aside
(their labels kept, no longer counted), and an item both hold keeps its id and its labels. A reviewer labels an
item once: the truth is shown after a label, so a second one is refused.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lab_runtime.errors import LabError
from lab_runtime.evaluation.review import Item, Label, ReviewVerdict
from lab_runtime.files.sqlite import connect

FILE = "reviews.db"  # in the state dir

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    version TEXT NOT NULL,
    test_set TEXT NOT NULL,
    row INTEGER NOT NULL,
    against TEXT NOT NULL DEFAULT '',
    features TEXT NOT NULL,
    truth INTEGER NOT NULL,
    probability REAL NOT NULL,
    decision TEXT NOT NULL,
    against_probability REAL,
    against_decision TEXT,
    why TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    queued REAL NOT NULL,
    UNIQUE (version, test_set, row, against)
);
CREATE TABLE IF NOT EXISTS labels (
    item INTEGER NOT NULL REFERENCES items (id),
    reviewer TEXT NOT NULL,
    label TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    at REAL NOT NULL,
    PRIMARY KEY (item, reviewer)
);
CREATE TABLE IF NOT EXISTS verdicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    version TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    verdict TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    labels INTEGER NOT NULL,
    at REAL NOT NULL
);
"""
_REFRESHED = ("features", "truth", "probability", "decision", "against_probability", "against_decision", "why")
_UPSERT = (
    "INSERT INTO items (version, test_set, row, against, features, truth, probability, decision, "
    "against_probability, against_decision, why, queued, active) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1) "
    "ON CONFLICT (version, test_set, row, against) DO UPDATE SET active = 1, queued = excluded.queued, "
    + ", ".join(f"{c} = excluded.{c}" for c in _REFRESHED)
)
_ITEM = (
    "id, version, test_set, row, against, features, truth, probability, decision, against_probability, "
    "against_decision, why"
)


def _item(row: tuple[Any, ...]) -> Item:
    return Item(
        id=row[0],
        version=row[1],
        test_set=row[2],
        row=row[3],
        against=row[4] or None,
        features=json.loads(row[5]),
        truth=row[6],
        probability=row[7],
        decision=row[8],
        against_probability=row[9],
        against_decision=row[10],
        why=row[11],
    )


class ReviewStore:
    """The review queues, labels and verdicts in one SQLite file; safe from several threads and processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path, _SCHEMA)
        self._lock = threading.Lock()

    def replace_queue(self, version: str, items: Sequence[Item], at: float) -> list[Item]:
        """Make `items` (their ids ignored) `version`'s queue; returns them with their ids, in row order."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute("UPDATE items SET active = 0 WHERE version = ?", (version,))
                for i in items:
                    self._conn.execute(
                        _UPSERT,
                        (version, i.test_set, i.row, i.against or "", json.dumps(i.features), i.truth, i.probability,
                         i.decision, i.against_probability, i.against_decision, i.why, at),
                    )  # fmt: skip
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return self.queue(version)

    def queue(self, version: str) -> list[Item]:
        """`version`'s queue, in row order."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_ITEM} FROM items WHERE version = ? AND active = 1 ORDER BY row, id", (version,)
            ).fetchall()
        return [_item(r) for r in rows]

    def item(self, item_id: int) -> Item | None:
        """An item of a current queue, or None."""
        with self._lock:
            row = self._conn.execute(f"SELECT {_ITEM} FROM items WHERE id = ? AND active = 1", (item_id,)).fetchone()
        return _item(row) if row else None

    def versions(self) -> list[str]:
        """The versions with a queue, the most recently queued last."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT version FROM items WHERE active = 1 GROUP BY version ORDER BY MAX(queued), version"
            ).fetchall()
        return [r[0] for r in rows]

    def labels(self, version: str) -> list[Label]:
        """Every label of an item of `version`'s queue, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT l.item, l.reviewer, l.label, l.note, l.at FROM labels l JOIN items i ON i.id = l.item "
                "WHERE i.version = ? AND i.active = 1 ORDER BY l.at, l.item",
                (version,),
            ).fetchall()
        return [Label(*r) for r in rows]

    def add_label(self, label: Label) -> None:
        """Record a label; a reviewer's second label of the same item raises AlreadyLabelled."""
        try:
            with self._lock:
                self._conn.execute(
                    "INSERT INTO labels (item, reviewer, label, note, at) VALUES (?, ?, ?, ?, ?)",
                    (label.item, label.reviewer, label.label, label.note, label.at),
                )
        except sqlite3.IntegrityError:
            first = next(lab for lab in self.labels_of(label.item) if lab.reviewer == label.reviewer)
            raise LabError(
                f"{label.reviewer} labelled item {label.item} already ({first.label}) and has seen its truth, so the "
                "label stands; `lab review next` shows the next item"
            ) from None

    def labels_of(self, item_id: int) -> list[Label]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT item, reviewer, label, note, at FROM labels WHERE item = ? ORDER BY at", (item_id,)
            ).fetchall()
        return [Label(*r) for r in rows]

    def add_verdict(self, verdict: ReviewVerdict) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO verdicts (version, reviewer, verdict, note, labels, at) VALUES (?, ?, ?, ?, ?, ?)",
                (verdict.version, verdict.reviewer, verdict.verdict, verdict.note, verdict.labels, verdict.at),
            )

    def verdict(self, version: str) -> ReviewVerdict | None:
        """The latest review verdict on `version`."""
        with self._lock:
            row = self._conn.execute(
                "SELECT version, reviewer, verdict, note, labels, at FROM verdicts WHERE version = ? "
                "ORDER BY id DESC LIMIT 1",
                (version,),
            ).fetchone()
        return ReviewVerdict(*row) if row else None

    def close(self) -> None:
        with self._lock:
            self._conn.close()
