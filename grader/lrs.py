"""Sending xAPI statements to a Learning Record Store through a durable outbox (SQLite): a statement is queued
once, stays queued until the LRS took it, and is re-sent whole after a crash or an outage. Statement ids come from
their content (`grader.xapi`), so one sent twice (its batch taken, the process killed before it wrote so) is taken
once by the LRS: the xAPI spec has it answer 204 for an identical statement it holds.

5xx answers, 408, 429, timeouts and refused connections are retried with back-off; what is still queued then is
sent by the next run. 401 and 403 (the credentials) stop the run with the LRS's message, everything kept for the
next. Any other 4xx refuses statements: a refused batch is sent again one statement at a time, and each statement
the LRS refuses on its own is marked refused (kept in the outbox with the reason, never sent again) while the rest
go on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from grader.xapi import VERSION
from lab_runtime.errors import LrsError
from lab_runtime.files.sqlite import connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    lrs TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    queued_at REAL NOT NULL,
    sent_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    refused_at REAL,
    UNIQUE (lrs, id)
);
"""
BATCH = 50  # statements per POST
RETRIES = 5  # tries of a batch after the first, on 5xx, 408, 429, timeouts and refused connections
BACKOFF = 0.5  # seconds before the first retry, doubled each time
TIMEOUT = 10.0  # seconds for one POST
AGAIN = {408, 429}  # answers that say: later
CREDENTIALS = {401, 403}
UNREACHABLE = 0  # the status `_Post` gives when every try failed


def statements_url(lrs: str) -> str:
    """The statements resource of the LRS whose xAPI endpoint is `lrs` (`http://host/xAPI/`); LrsError naming a URL
    that is not one. It also keys the outbox: `host/xAPI` and `host/xAPI/` are one LRS."""
    example = "give the LRS's xAPI endpoint, e.g. http://host:8100/xAPI/"
    url = lrs.rstrip("/") + "/statements"
    try:
        parts = urlsplit(lrs)
        _ = parts.port  # a port that is not a number raises here
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as exc:
        raise LrsError(f"--lrs {lrs!r} is not a URL ({exc}); {example}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LrsError(f"--lrs {lrs!r} is not an http(s) URL; {example}")
    return url


@dataclass(frozen=True)
class Outcome:
    queued: int  # statements newly queued by this run
    sent: int  # statements the LRS took in this run
    pending: int  # statements still queued for this LRS
    refused: tuple[str, ...] = ()  # why the LRS refused statements in this run, one line each (its id first)


class Outbox:
    """The queue of statements per LRS (keyed by its statements URL), in `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path, SCHEMA, [("outbox", "refused_at", "REAL")])

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, lrs: str, statements: Sequence[dict[str, Any]], now: float) -> int:
        """Queue `statements` for `lrs`, all or none; one already queued (or sent) is not queued again. How many
        were new."""
        before = self._conn.total_changes
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany(
                "INSERT OR IGNORE INTO outbox (lrs, id, body, queued_at) VALUES (?, ?, ?, ?)",
                [(lrs, st["id"], json.dumps(st, sort_keys=True), now) for st in statements],
            )
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
        return self._conn.total_changes - before

    def pending(self, lrs: str, limit: int, after: int = 0) -> list[tuple[int, dict[str, Any]]]:
        """Up to `limit` statements queued for `lrs` (neither sent nor refused), oldest first, past `after`."""
        rows = self._conn.execute(
            "SELECT seq, body FROM outbox WHERE lrs = ? AND sent_at IS NULL AND refused_at IS NULL AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (lrs, after, limit),
        ).fetchall()
        return [(seq, json.loads(body)) for seq, body in rows]

    def count_pending(self, lrs: str) -> int:
        query = "SELECT COUNT(*) FROM outbox WHERE lrs = ? AND sent_at IS NULL AND refused_at IS NULL"
        return int(self._conn.execute(query, (lrs,)).fetchone()[0])

    def mark(self, seqs: Sequence[int], sent_at: float | None, error: str | None = None, refused: bool = False) -> None:
        marks = ",".join("?" * len(seqs))
        self._conn.execute(
            "UPDATE outbox SET sent_at = ?, attempts = attempts + 1, last_error = ?, refused_at = ? "
            f"WHERE seq IN ({marks})",
            (sent_at, error, time.time() if refused else None, *seqs),
        )


def _detail(response: httpx.Response) -> str:
    """The LRS's own message in a line (its `detail` when it sends JSON)."""
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text.split())[:300] or response.reason_phrase
    detail = body.get("detail", body) if isinstance(body, dict) else body
    return " ".join(json.dumps(detail)[:300].split()) if not isinstance(detail, str) else detail[:300]


@dataclass
class _Post:
    """POSTs statements to one LRS, retrying what says "later": the final status (UNREACHABLE when every try
    failed) and the problem in a line."""

    client: httpx.Client
    url: str
    retries: int
    backoff: float
    sleep: Callable[[float], None]
    say: Callable[[str], None]

    def __call__(self, body: list[dict[str, Any]]) -> tuple[int, str]:
        problem = ""
        for attempt in range(self.retries + 1):
            try:
                response = self.client.post(self.url, json=body)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                problem = f"HTTP {response.status_code}: {_detail(response)}"
                if response.status_code < 500 and response.status_code not in AGAIN:
                    return response.status_code, problem
            if attempt < self.retries:
                wait = self.backoff * 2**attempt
                self.say(f"the LRS did not take {len(body)} statement(s) ({problem}); trying again in {wait:g}s")
                self.sleep(wait)
        return UNREACHABLE, problem


def deliver(
    outbox: Outbox,
    lrs: str,
    auth: tuple[str, str] | None,
    *,
    batch: int = BATCH,
    retries: int = RETRIES,
    backoff: float = BACKOFF,
    sleep: Callable[[float], None] = time.sleep,
    say: Callable[[str], None] = lambda line: None,
) -> tuple[int, tuple[str, ...]]:
    """Send what is queued for `lrs` (its statements URL), oldest first, a batch per POST: how many statements the
    LRS took, and why it refused those it refused. LrsError when it stays unreachable after `retries` or refuses
    the credentials: what was not taken stays queued."""
    headers = {"X-Experience-API-Version": VERSION, "Content-Type": "application/json"}
    sent, refused, after = 0, [], 0
    with httpx.Client(auth=auth, headers=headers, timeout=TIMEOUT, follow_redirects=False) as client:
        post = _Post(client, lrs, retries, backoff, sleep, say)
        while rows := outbox.pending(lrs, batch, after):
            after = rows[-1][0]
            # A refused batch goes again one statement at a time: only those the LRS refuses on their own stay out.
            groups = [rows] if len(rows) == 1 else [rows, *([row] for row in rows)]
            for n, group in enumerate(groups):
                seqs, body = [seq for seq, _ in group], [st for _, st in group]
                status, problem = post(body)
                if status in (200, 204):
                    outbox.mark(seqs, time.time())
                    sent += len(seqs)
                    if n == 0:
                        break
                    continue
                outbox.mark(seqs, None, problem)
                if status == UNREACHABLE:
                    raise LrsError(
                        f"the LRS at {lrs} is unreachable or failing ({problem}) after {retries + 1} tries; "
                        f"{outbox.count_pending(lrs)} statement(s) stay queued in {outbox.path}: run the command "
                        "again to send them"
                    )
                if status in CREDENTIALS:
                    raise LrsError(
                        f"the LRS at {lrs} refused the credentials ({problem}); {outbox.count_pending(lrs)} "
                        f"statement(s) stay queued in {outbox.path}: check LAB_LRS_USER and LAB_LRS_PASSWORD"
                    )
                if len(group) == 1:  # one statement, refused on its own: kept, never sent again
                    outbox.mark(seqs, None, problem, refused=True)
                    refused.append(f"{body[0]['id']}: {problem}")
    return sent, tuple(refused)


def send(
    path: Path,
    lrs: str,
    statements: Sequence[dict[str, Any]],
    auth: tuple[str, str] | None,
    **options: Any,
) -> Outcome:
    """Queue `statements` for `lrs` in the outbox at `path`, then send everything queued for it."""
    key = statements_url(lrs)  # a bad URL is refused before anything is queued
    with Outbox(path) as outbox:
        queued = outbox.add(key, statements, time.time())
        sent, refused = deliver(outbox, key, auth, **options)
        return Outcome(queued, sent, outbox.count_pending(key), refused)
