"""The console's state behind one interface (`Store`): tokens, each sandbox's shipped journal and state, and the
instructor's orders. `SqliteStore` keeps it in one SQLite file (WAL); a server database can implement the same
`Store`."""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from lab_runtime.console.wire import Batch, Order, OrderResult, SandboxState, digest, token_id
from lab_runtime.errors import ConsoleError, NotFound
from lab_runtime.files.sqlite import connect
from lab_runtime.journal import Event

Role = Literal["learner", "instructor"]
TOKEN_PREFIX = "labc_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Identity:
    token_id: str
    role: Role
    learner: str | None  # None for an instructor
    key: str  # the token's digest: what its agent signs requests with


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    role: Role
    learner: str | None
    created: float
    revoked: float | None


@dataclass(frozen=True)
class Sandbox:
    learner: str
    journal: str | None  # the id of the journal it ships now
    cursor: int  # the last id of that journal held
    seq: int  # the last event held, in the console's own order of arrival (across the learner's journals)
    state: SandboxState | None
    seen: float | None  # when it last sent anything
    last_ts: float | None  # when its newest event was written in the sandbox


@dataclass(frozen=True)
class OrderRecord:
    order: Order
    learner: str
    created: float
    state: str  # pending | taken | started | refused
    message: str | None
    updated: float


class CursorMismatch(ConsoleError):
    """A batch that does not start right after the events the console holds; `cursor` is where it is."""

    def __init__(self, cursor: int) -> None:
        super().__init__(f"the console holds this sandbox's journal up to event {cursor}; send from there")
        self.cursor = cursor


class Store(Protocol):
    version: int  # grows with every change a page shows

    def issue(self, role: Role, learner: str | None) -> tuple[str, str]: ...
    def revoke(self, token_id: str) -> TokenRecord: ...
    def tokens(self) -> list[TokenRecord]: ...
    def identify(self, token: str) -> Identity | None: ...
    def identify_id(self, token_id: str) -> Identity | None: ...
    def take_batch(self, learner: str, batch: Batch) -> int: ...
    def events(self, learner: str, kinds: Iterable[str] | None = None) -> list[Event]: ...
    def events_since(
        self, learner: str, kinds: Iterable[str] | None, seq: int, upto: int | None = None
    ) -> list[Event]: ...
    def sandboxes(self) -> list[Sandbox]: ...
    def learners(self) -> list[str]: ...
    def place(self, learners: Sequence[str], order: Order) -> list[int]: ...
    def orders_for(self, learner: str, after: int) -> list[Order]: ...
    def answer(self, learner: str, order_id: int, result: OrderResult) -> None: ...
    def orders(self, limit: int = 200) -> list[OrderRecord]: ...
    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY, role TEXT NOT NULL, learner TEXT, digest TEXT NOT NULL UNIQUE,
    created REAL NOT NULL, revoked REAL
);
CREATE TABLE IF NOT EXISTS sandboxes (
    learner TEXT PRIMARY KEY, journal TEXT, cursor INTEGER NOT NULL DEFAULT 0, seq INTEGER NOT NULL DEFAULT 0,
    state TEXT, seen REAL, last_ts REAL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, learner TEXT NOT NULL, journal TEXT NOT NULL, id INTEGER NOT NULL,
    ts REAL NOT NULL, source TEXT NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL, event_learner TEXT,
    run_id TEXT, began REAL, received REAL NOT NULL, UNIQUE (learner, journal, id)
);
CREATE INDEX IF NOT EXISTS events_learner ON events (learner, kind, seq);
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY AUTOINCREMENT, learner TEXT NOT NULL, body TEXT NOT NULL, created REAL NOT NULL,
    state TEXT NOT NULL, message TEXT, updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_learner ON orders (learner, id);
"""
_EVENT = "id, ts, source, kind, payload, event_learner, run_id, began"
OPEN_ORDERS = ("pending", "taken")  # the states an agent is still sent an order in


def _event(r: Sequence[Any]) -> Event:
    return Event(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6], r[7])


class SqliteStore:
    """The console's store in one SQLite file; safe to share between the web server's threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path, _SCHEMA)
        self._lock = threading.Lock()
        self.version = 0  # bumped by every change a page shows

    def issue(self, role: Role, learner: str | None) -> tuple[str, str]:
        """A new token for `learner` (or an instructor): its id and the token, shown once."""
        token = new_token()
        with self._lock:
            self._conn.execute(
                "INSERT INTO tokens (id, role, learner, digest, created) VALUES (?, ?, ?, ?, ?)",
                (token_id(token), role, learner, digest(token), time.time()),
            )
        return token_id(token), token

    def revoke(self, token_id: str) -> TokenRecord:
        with self._lock:
            self._conn.execute(
                "UPDATE tokens SET revoked = ? WHERE id = ? AND revoked IS NULL", (time.time(), token_id)
            )
            self.version += 1  # the pages of that token close
        found = [t for t in self.tokens() if t.token_id == token_id]
        if not found:
            raise NotFound(f"no console token has id {token_id!r}; `lab console tokens` lists them")
        return found[0]

    def tokens(self) -> list[TokenRecord]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, role, learner, created, revoked FROM tokens ORDER BY created"
            ).fetchall()
        return [TokenRecord(*row) for row in rows]

    def identify(self, token: str) -> Identity | None:
        """Whose `token` is; None for an unknown or revoked one."""
        return self._who("digest", digest(token))

    def identify_id(self, token_id: str) -> Identity | None:
        """Whose token has this id; None for an unknown or revoked one."""
        return self._who("id", token_id)

    def _who(self, column: str, value: str) -> Identity | None:
        with self._lock:
            row = self._conn.execute(
                f"SELECT id, role, learner, digest FROM tokens WHERE {column} = ? AND revoked IS NULL", (value,)
            ).fetchone()
        return Identity(*row) if row else None

    def take_batch(self, learner: str, batch: Batch) -> int:
        """File the batch's events under `learner` in one transaction, if they start right after the events of its
        journal held (a journal seen for the first time starts at 0); the new cursor. CursorMismatch otherwise."""
        now, events = time.time(), batch.events
        rows = [
            (learner, batch.journal, e.id, e.ts, e.source, e.kind, json.dumps(e.payload, sort_keys=True), e.learner,
             e.run_id, e.began, now)
            for e in events
        ]  # fmt: skip
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                row = self._conn.execute(
                    "SELECT journal, cursor, seq FROM sandboxes WHERE learner = ?", (learner,)
                ).fetchone()
                journal, cursor, seq = row if row else (None, 0, 0)
                if journal != batch.journal:  # a sandbox made anew (from its start), or one shipping again
                    cursor = self._conn.execute(
                        "SELECT COALESCE(MAX(id), 0) FROM events WHERE learner = ? AND journal = ?",
                        (learner, batch.journal),
                    ).fetchone()[0]
                if batch.after != cursor:
                    raise CursorMismatch(cursor)
                if rows:
                    self._conn.executemany(
                        f"INSERT INTO events (learner, journal, {_EVENT}, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
                        "?, ?)",
                        rows,
                    )
                    seq = self._conn.execute("SELECT MAX(seq) FROM events WHERE learner = ?", (learner,)).fetchone()[0]
                    cursor = events[-1].id
                state = batch.state.model_dump_json() if batch.state else None
                self._conn.execute(
                    "INSERT INTO sandboxes (learner, journal, cursor, seq, state, seen, last_ts) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (learner) DO UPDATE SET journal = excluded.journal, "
                    "cursor = excluded.cursor, seq = excluded.seq, seen = excluded.seen, "
                    "state = COALESCE(excluded.state, sandboxes.state), "
                    "last_ts = COALESCE(excluded.last_ts, sandboxes.last_ts)",
                    (learner, batch.journal, cursor, seq, state, now, events[-1].ts if events else None),
                )
                self._conn.execute("COMMIT")
            except sqlite3.IntegrityError:  # events it holds already: it tells the agent where it is
                self._conn.execute("ROLLBACK")
                raise CursorMismatch(cursor) from None
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self.version += 1
        return cursor

    def events(self, learner: str, kinds: Iterable[str] | None = None) -> list[Event]:
        """`learner`'s events (of `kinds`) as their journals have them (`id`: the place in its journal), in the
        order they arrived."""
        return [_event(r) for r in self._rows(learner, kinds, 0, None)]

    def events_since(self, learner: str, kinds: Iterable[str] | None, seq: int, upto: int | None = None) -> list[Event]:
        """`learner`'s events (of `kinds`) that arrived after `seq` (up to `upto`), numbered in the order they
        arrived (`id`: their seq), so that several journals of one learner read as one."""
        return [_event((r[8], *r[1:8])) for r in self._rows(learner, kinds, seq, upto)]

    def _rows(self, learner: str, kinds: Iterable[str] | None, seq: int, upto: int | None) -> list[Any]:
        sql, args = f"SELECT {_EVENT}, seq FROM events WHERE learner = ? AND seq > ?", [learner, seq]
        if upto is not None:
            sql += " AND seq <= ?"
            args.append(upto)
        if kinds is not None:
            names = list(kinds)
            sql += f" AND kind IN ({','.join('?' * len(names))})"
            args += names
        with self._lock:
            return self._conn.execute(sql + " ORDER BY seq", args).fetchall()

    def sandboxes(self) -> list[Sandbox]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT learner, journal, cursor, seq, state, seen, last_ts FROM sandboxes ORDER BY learner"
            ).fetchall()
        return [
            Sandbox(r[0], r[1], r[2], r[3], SandboxState.model_validate_json(r[4]) if r[4] else None, r[5], r[6])
            for r in rows
        ]

    def learners(self) -> list[str]:
        """Every learner with a token or a sandbox, by name."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT learner FROM tokens WHERE learner IS NOT NULL UNION SELECT learner FROM sandboxes"
            ).fetchall()
        return sorted(r[0] for r in rows)

    def place(self, learners: Sequence[str], order: Order) -> list[int]:
        """One order per learner; their ids."""
        now, body = time.time(), order.model_dump_json(exclude={"id"})
        with self._lock:
            ids = [
                int(
                    self._conn.execute(
                        "INSERT INTO orders (learner, body, created, state, updated) VALUES (?, ?, ?, 'pending', ?)",
                        (learner, body, now, now),
                    ).lastrowid
                    or 0
                )
                for learner in learners
            ]
            self.version += 1
        return ids

    def orders_for(self, learner: str, after: int) -> list[Order]:
        """`learner`'s orders after order `after` not yet answered (an answered one is never sent again); the
        pending ones among them are now taken."""
        marks = ",".join("?" * len(OPEN_ORDERS))
        with self._lock:
            newest = self._conn.execute("SELECT COALESCE(MAX(id), 0) FROM orders WHERE learner = ?", (learner,))
            if after > newest.fetchone()[0]:
                after = 0  # an agent whose place is in another console's orders: every open one is new to it
            rows = self._conn.execute(
                f"SELECT id, body FROM orders WHERE learner = ? AND id > ? AND state IN ({marks}) ORDER BY id",
                (learner, after, *OPEN_ORDERS),
            ).fetchall()
            if rows:
                self._conn.execute(
                    "UPDATE orders SET state = 'taken', updated = ? WHERE learner = ? AND id > ? AND state = 'pending'",
                    (time.time(), learner, after),
                )
                self.version += 1
        return [Order.model_validate({**json.loads(body), "id": order_id}) for order_id, body in rows]

    def answer(self, learner: str, order_id: int, result: OrderResult) -> None:
        """Record the sandbox's answer to an order it was sent and has not answered."""
        with self._lock:
            cur = self._conn.execute(
                "UPDATE orders SET state = ?, message = ?, updated = ? "
                "WHERE id = ? AND learner = ? AND state = 'taken'",
                (result.state, result.message, time.time(), order_id, learner),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no order {order_id} of {learner}'s awaits an answer")
            self.version += 1

    def orders(self, limit: int = 200) -> list[OrderRecord]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, learner, body, created, state, message, updated FROM orders ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            OrderRecord(Order.model_validate({**json.loads(r[2]), "id": r[0]}), r[1], r[3], r[4], r[5], r[6])
            for r in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
