"""The durable record of drill runs and of every fault injected (SQLite, WAL), written before a fault is injected.

It is what `lab drill status` shows, what `lab drill abort` signals, and what `lab reset` reverts when a runner
died (even of SIGKILL) with faults in place.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from lab_runtime.files.sqlite import connect

PLANNED, ACTIVE, REVERTED, FAILED = "planned", "active", "reverted", "failed"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    drill TEXT NOT NULL,
    learner TEXT NOT NULL,
    seed INTEGER NOT NULL,
    blind INTEGER NOT NULL,
    pid INTEGER NOT NULL,
    pid_created REAL NOT NULL,
    started REAL NOT NULL,
    deadline REAL,
    ended REAL,
    outcome TEXT,
    abort_requested INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS faults (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    idx INTEGER NOT NULL,
    type TEXT NOT NULL,
    args TEXT NOT NULL,
    plan TEXT NOT NULL,
    state TEXT NOT NULL,
    injected_at REAL,
    expires_at REAL NOT NULL,
    reverted_at REAL,
    result TEXT
);
"""


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    drill: str
    learner: str
    seed: int
    blind: bool
    pid: int
    pid_created: float  # `process_identity`: seconds after boot, not moved by a clock change
    started: float
    deadline: float | None
    ended: float | None
    outcome: str | None
    abort_requested: bool


@dataclass(frozen=True)
class FaultRecord:
    id: int
    run_id: str
    idx: int
    type: str
    args: dict[str, Any]
    plan: dict[str, Any]
    state: str
    injected_at: float | None
    expires_at: float
    reverted_at: float | None
    result: str | None


_RUN_COLUMNS = (
    "run_id, drill, learner, seed, blind, pid, pid_created, started, deadline, ended, outcome, abort_requested"
)
_FAULT_COLUMNS = "id, run_id, idx, type, args, plan, state, injected_at, expires_at, reverted_at, result"


def _run(row: tuple[Any, ...]) -> RunRecord:
    run_id, drill, learner, seed, blind, pid, created, started, deadline, ended, outcome, abort = row
    return RunRecord(
        run_id, drill, learner, seed, bool(blind), pid, created, started, deadline, ended, outcome, bool(abort)
    )


def _fault(row: tuple[Any, ...]) -> FaultRecord:
    return FaultRecord(row[0], row[1], row[2], row[3], json.loads(row[4]), json.loads(row[5]), *row[6:])


class Ledger:
    def __init__(self, path: Path) -> None:
        self._conn = connect(path, _SCHEMA)

    def claim(self, run: RunRecord) -> RunRecord | None:
        """Start `run` unless another run is open or left a fault unreverted: then that run, and nothing written.

        One transaction holds the write lock from the check to the insert, so two runners cannot both start.
        """
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            blockers = self.open_runs() or self.runs_with_unreverted()
            if not blockers:
                self.start_run(run)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
        return blockers[0] if blockers else None

    def start_run(self, run: RunRecord) -> None:
        self._conn.execute(
            f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({', '.join('?' * 12)})",
            (
                run.run_id,
                run.drill,
                run.learner,
                run.seed,
                int(run.blind),
                run.pid,
                run.pid_created,
                run.started,
                run.deadline,
                run.ended,
                run.outcome,
                int(run.abort_requested),
            ),
        )

    def set_deadline(self, run_id: str, deadline: float) -> None:
        self._conn.execute("UPDATE runs SET deadline = ? WHERE run_id = ?", (deadline, run_id))

    def end_run(self, run_id: str, outcome: str) -> None:
        self._conn.execute("UPDATE runs SET ended = ?, outcome = ? WHERE run_id = ?", (time.time(), outcome, run_id))

    def request_abort(self, run_id: str) -> None:
        self._conn.execute("UPDATE runs SET abort_requested = 1 WHERE run_id = ?", (run_id,))

    def run(self, run_id: str) -> RunRecord | None:
        row = self._conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return _run(row) if row else None

    def open_runs(self) -> list[RunRecord]:
        """Runs that have not ended (their runner is running, or died)."""
        rows = self._conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE ended IS NULL ORDER BY started").fetchall()
        return [_run(r) for r in rows]

    def last_run(self) -> RunRecord | None:
        row = self._conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY started DESC LIMIT 1").fetchone()
        return _run(row) if row else None

    def runs_with_unreverted(self) -> list[RunRecord]:
        """Runs (open or ended) with a fault that is not reverted, e.g. one whose revert failed."""
        rows = self._conn.execute(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id IN "
            "(SELECT run_id FROM faults WHERE state IN (?, ?, ?)) ORDER BY started",
            (PLANNED, ACTIVE, FAILED),
        ).fetchall()
        return [_run(r) for r in rows]

    def plan_fault(
        self, run_id: str, idx: int, type_: str, args: dict[str, Any], plan: dict[str, Any], expires_at: float
    ) -> int:
        """Record a fault before it is injected: from here on, `lab reset` can revert it."""
        cur = self._conn.execute(
            "INSERT INTO faults (run_id, idx, type, args, plan, state, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (run_id, idx, type_, json.dumps(args), json.dumps(plan), PLANNED, expires_at),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def mark_injected(self, fault_id: int) -> None:
        self._conn.execute("UPDATE faults SET state = ?, injected_at = ? WHERE id = ?", (ACTIVE, time.time(), fault_id))

    def mark_reverted(self, fault_id: int, result: str) -> None:
        self._conn.execute(
            "UPDATE faults SET state = ?, reverted_at = ?, result = ? WHERE id = ?",
            (REVERTED, time.time(), result, fault_id),
        )

    def mark_failed(self, fault_id: int, error: str) -> None:
        """The revert failed: the fault stays for `lab reset` to try again."""
        self._conn.execute("UPDATE faults SET state = ?, result = ? WHERE id = ?", (FAILED, error, fault_id))

    def faults(self, run_id: str) -> list[FaultRecord]:
        rows = self._conn.execute(f"SELECT {_FAULT_COLUMNS} FROM faults WHERE run_id = ? ORDER BY id", (run_id,))
        return [_fault(r) for r in rows.fetchall()]

    def unreverted(self, run_id: str) -> list[FaultRecord]:
        """Faults planned or in place and not reverted yet, newest first (the order to revert them in)."""
        return [f for f in reversed(self.faults(run_id)) if f.state in (PLANNED, ACTIVE, FAILED)]

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
