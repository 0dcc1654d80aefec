"""The append-only event journal every part of the sandbox writes to and the grader reads. Its event kinds and
their payloads are in `lab_runtime.events`.

SQLite in WAL mode: appends from several processes at once are serialised by SQLite itself, and a
committed event survives a crash of any process.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab_runtime.events import EventKind, Payload
from lab_runtime.files.sqlite import connect

if TYPE_CHECKING:
    from lab_runtime.settings import Settings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    learner TEXT,
    run_id TEXT,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    began REAL
);
CREATE INDEX IF NOT EXISTS events_kind_ts ON events (kind, ts);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Columns added after the table first shipped (older journals get them on open).
_ADDED_COLUMNS = (("events", "began", "REAL"),)


@dataclass(frozen=True)
class Event:
    """One journal entry. `ts` is when it was written, `began` when the learner's command that wrote it started
    (None for events no learner command wrote); both UTC wall time in seconds."""

    id: int
    ts: float
    source: str
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)
    learner: str | None = None
    run_id: str | None = None
    began: float | None = None

    @property
    def at(self) -> float:
        """When it happened: the command's start for a learner's event, else when it was written."""
        return self.ts if self.began is None else self.began


_COLUMNS = "id, ts, source, kind, payload, learner, run_id, began"


def _event(row: tuple[Any, ...]) -> Event:
    return Event(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], row[6], row[7])


class Journal:
    """Append and query events in one SQLite file; safe to use from several threads and processes.

    A journal opened for a learner's command carries the command's start (`began`): every event it writes is
    stamped with it, so the grader times the learner's move from when they made it, not from when it was written.
    """

    def __init__(self, path: Path, *, source: str, learner: str | None = None, began: float | None = None) -> None:
        self.path = path
        self.source = source
        self.learner = learner
        self.began = began
        self._conn = connect(path, _SCHEMA, _ADDED_COLUMNS)
        self._lock = threading.Lock()

    def began_now(self) -> float:
        """When an action starting now began: the command's start on a command's journal, else now."""
        return time.time() if self.began is None else self.began

    def append(
        self,
        kind: EventKind[Payload],
        payload: Payload,
        *,
        run_id: str | None = None,
        began: float | None = None,
        ts: float | None = None,
    ) -> Event:
        """Write one event of `kind` (its payload of the kind's type) and return it once it is committed. `began`
        (default: the journal's) dates the learner's move; `ts` (default: now) is when it was written, given only to
        replay a recorded journal."""
        event_ts = time.time() if ts is None else ts
        event_began = self.began if began is None else began
        body, kind_name = dict(payload), str(kind)
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO events (ts, learner, run_id, source, kind, payload, began) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (event_ts, self.learner, run_id, self.source, kind_name, json.dumps(body, sort_keys=True), event_began),
            )
        assert cur.lastrowid is not None
        return Event(cur.lastrowid, event_ts, self.source, kind_name, body, self.learner, run_id, event_began)

    def events(
        self,
        kinds: Iterable[str] | None = None,
        *,
        since: float | None = None,
        after_id: int = 0,
        run_id: str | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        """Events in append order, filtered by kind, time, id and drill run; the first `limit` of them."""
        sql = f"SELECT {_COLUMNS} FROM events WHERE id > ?"
        args: list[Any] = [after_id]
        kind_list = list(kinds) if kinds is not None else None
        if kind_list is not None:
            sql += f" AND kind IN ({','.join('?' * len(kind_list))})"
            args += kind_list
        if since is not None:
            sql += " AND ts >= ?"
            args.append(since)
        if run_id is not None:
            sql += " AND run_id = ?"
            args.append(run_id)
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [_event(r) for r in rows]

    def identity(self) -> str:
        """The journal's own id (32 hex digits), made once with it: a journal re-created in its place has another."""
        with self._lock:
            self._conn.execute("INSERT OR IGNORE INTO meta VALUES ('id', ?)", (uuid.uuid4().hex,))
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'id'").fetchone()
        return str(row[0])

    def last(self, kind: str) -> Event | None:
        """The newest event of `kind`, or None."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_COLUMNS} FROM events WHERE kind = ? ORDER BY id DESC LIMIT 1", (kind,)
            ).fetchone()
        return _event(row) if row else None

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def learner_journal(settings: Settings, source: str = "cli", *, dated: bool = True) -> Journal:
    """The journal, written as the learner: each event is a move dated from when the running command started
    (`clock.command_began`). A long-running command that acts later on its own (the canary analysis) is not
    `dated`."""
    from lab_runtime import clock

    settings.ensure_dirs()
    began = clock.command_began() if dated else None
    return Journal(settings.journal_path, source=source, learner=settings.learner, began=began)
