"""Opening the sandbox's SQLite files: WAL mode, a busy timeout, and a clear error when a file is corrupt."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from lab_runtime.errors import ConfigError


def connect(path: Path, schema: str, added_columns: Iterable[tuple[str, str, str]] = ()) -> sqlite3.Connection:
    """Open `path` in WAL mode (safe for several processes) and apply `schema` (idempotent DDL).

    `added_columns` are (table, column, definition) the schema gained after the table first shipped: a file
    written by an older version gets them, so a sandbox's state survives an upgrade.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable across a process crash
        conn.executescript(schema)
        for table, column, definition in added_columns:
            if column not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
                try:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
                except sqlite3.OperationalError as exc:  # another process added it first
                    if "duplicate column" not in str(exc):
                        raise
    except sqlite3.DatabaseError as exc:
        raise ConfigError(
            f"{path} is corrupt or not a database ({exc}); stop the sandbox with `lab down`, "
            f"then move the file away (or run `make clean` to start afresh)"
        ) from exc
    return conn
