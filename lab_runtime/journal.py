"""The append-only event journal every part of the sandbox writes to and the grader reads.

SQLite in WAL mode: appends from several processes at once are serialised by SQLite itself, and a
committed event survives a crash of any process.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab_runtime.files.sqlite import connect

if TYPE_CHECKING:
    from lab_runtime.settings import Settings

# Event kinds written by the runtime (others may be added by drills and the grader).
LAB_STARTED = "lab.started"
LAB_CHECK = "lab.check"
LAB_EVENT = "lab.event"  # a lab's scripted incident happened (e.g. a broken release shipped)
ALIAS_CHANGED = "registry.alias_changed"
ALIAS_REQUESTED = "registry.alias_requested"  # a lab command is about to move an alias (how a change was made)
CANARY_ANALYSIS = "canary.analysis"  # one decision of the automated canary analysis, with what it measured
LEARNER_ACTION = "learner.action"
LEARNER_DECLARED = "learner.declared"
# Written by the drill engine (source "drill"), each with the drill run's id; the grader reads these.
DRILL_STARTED = "drill.started"
FAULT_INJECTED = "fault.injected"
FAULT_ACTION = "fault.action"  # a fault did something while active (e.g. a restart policy restarted a service)
PROBE_RESULT = "probe.result"
DRILL_MITIGATED = "drill.mitigated"  # the impact stopped after a learner's move and stayed away (fixed_by: by when)
DRILL_REMEDIATED = "drill.remediated"  # the remediation held through the hold (fixed_by: by when the fix was seen)
FAULT_REVERTED = "fault.reverted"
FAULT_REVERT_FAILED = "fault.revert_failed"
DRILL_STEADY_STATE = "drill.steady_state"  # the steady state checked again after the faults were reverted
DRILL_ENDED = "drill.ended"
SANDBOX_RESET = "sandbox.reset"
# The kinds grading reads (a reader may fetch only these: probes are most of a journal).
GRADED = (
    DRILL_STARTED,
    FAULT_INJECTED,
    DRILL_MITIGATED,
    DRILL_REMEDIATED,
    DRILL_ENDED,
    LEARNER_DECLARED,
    LEARNER_ACTION,
)
# Written by `lab capstone`: the assessment's start (rubric, seed, how many drills) and end. The seed gives the
# drills away: the CLI shows it only once the capstone has ended.
CAPSTONE_STARTED = "capstone.started"
CAPSTONE_ENDED = "capstone.ended"

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
        kind: str,
        payload: dict[str, Any] | None = None,
        *,
        run_id: str | None = None,
        began: float | None = None,
        ts: float | None = None,
    ) -> Event:
        """Write one event and return it once it is committed. `began` (default: the journal's) dates the
        learner's move; `ts` (default: now) is when it was written, given only to replay a recorded journal."""
        event_ts = time.time() if ts is None else ts
        event_began = self.began if began is None else began
        body = payload or {}
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO events (ts, learner, run_id, source, kind, payload, began) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (event_ts, self.learner, run_id, self.source, kind, json.dumps(body, sort_keys=True), event_began),
            )
        assert cur.lastrowid is not None
        return Event(cur.lastrowid, event_ts, self.source, kind, body, self.learner, run_id, event_began)

    def events(
        self,
        kinds: Iterable[str] | None = None,
        *,
        since: float | None = None,
        after_id: int = 0,
        run_id: str | None = None,
    ) -> list[Event]:
        """Events in append order, filtered by kind, time, id and drill run."""
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
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY id", args).fetchall()
        return [_event(r) for r in rows]

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
