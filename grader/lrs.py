"""Sending xAPI statements to a Learning Record Store through a durable outbox (SQLite): a statement is queued
once, stays queued until the LRS took it, and is re-sent whole after a crash or an outage. Statement ids come from
their content (`grader.xapi`), so one sent twice (its batch taken, the process killed before it wrote so) is taken
once by the LRS: the xAPI spec has it answer 204 for an identical statement it holds.

4xx answers are the statements' fault or the credentials': reported with the LRS's message, not retried. 5xx
answers, timeouts and refused connections are retried with back-off; what is still queued then is sent by the
next run.
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
    UNIQUE (lrs, id)
);
"""
BATCH = 50  # statements per POST
RETRIES = 5  # tries of a batch after the first, on 5xx, timeouts and refused connections
BACKOFF = 0.5  # seconds before the first retry, doubled each time
TIMEOUT = 10.0  # seconds for one POST


def statements_url(lrs: str) -> str:
    """The statements resource of the LRS whose xAPI endpoint is `lrs` (`http://host/xAPI/`)."""
    parts = urlsplit(lrs)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LrsError(
            f"--lrs {lrs!r} is not an http(s) URL; give the LRS's xAPI endpoint, e.g. http://host:8100/xAPI/"
        )
    return lrs.rstrip("/") + "/statements"


@dataclass(frozen=True)
class Outcome:
    queued: int  # statements newly queued by this run
    sent: int  # statements the LRS took in this run
    pending: int  # statements still queued for this LRS


class Outbox:
    """The queue of statements per LRS, in `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path, SCHEMA)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, lrs: str, statements: Sequence[dict[str, Any]], now: float) -> int:
        """Queue `statements` for `lrs`; one already queued (or sent) is not queued again. How many were new."""
        before = self._conn.total_changes
        with self._conn:
            self._conn.executemany(
                "INSERT OR IGNORE INTO outbox (lrs, id, body, queued_at) VALUES (?, ?, ?, ?)",
                [(lrs, s["id"], json.dumps(s, sort_keys=True), now) for s in statements],
            )
        return self._conn.total_changes - before

    def pending(self, lrs: str, limit: int) -> list[tuple[int, dict[str, Any]]]:
        rows = self._conn.execute(
            "SELECT seq, body FROM outbox WHERE lrs = ? AND sent_at IS NULL ORDER BY seq LIMIT ?", (lrs, limit)
        ).fetchall()
        return [(seq, json.loads(body)) for seq, body in rows]

    def count_pending(self, lrs: str) -> int:
        return int(
            self._conn.execute("SELECT COUNT(*) FROM outbox WHERE lrs = ? AND sent_at IS NULL", (lrs,)).fetchone()[0]
        )

    def mark(self, seqs: Sequence[int], sent_at: float | None, error: str | None = None) -> None:
        marks = ",".join("?" * len(seqs))
        with self._conn:
            self._conn.execute(
                f"UPDATE outbox SET sent_at = ?, attempts = attempts + 1, last_error = ? WHERE seq IN ({marks})",
                (sent_at, error, *seqs),
            )


def _detail(response: httpx.Response) -> str:
    """The LRS's own message in a line (its `detail` when it sends JSON)."""
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text.split())[:300] or response.reason_phrase
    detail = body.get("detail", body) if isinstance(body, dict) else body
    return " ".join(json.dumps(detail)[:300].split()) if not isinstance(detail, str) else detail[:300]


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
) -> int:
    """Send what is queued for `lrs`, oldest first, a batch per POST; how many the LRS took. LrsError when it
    refuses a batch (4xx) or stays unreachable after `retries`: what was not taken stays queued."""
    url = statements_url(lrs)
    headers = {"X-Experience-API-Version": VERSION, "Content-Type": "application/json"}
    sent = 0
    with httpx.Client(auth=auth, headers=headers, timeout=TIMEOUT, follow_redirects=False) as client:
        while rows := outbox.pending(lrs, batch):
            seqs, body = [seq for seq, _ in rows], [s for _, s in rows]
            for attempt in range(retries + 1):
                try:
                    response = client.post(url, json=body)
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                else:
                    if response.status_code in (200, 204):
                        outbox.mark(seqs, time.time())
                        sent += len(seqs)
                        break
                    problem = f"HTTP {response.status_code}: {_detail(response)}"
                    if response.status_code < 500:
                        outbox.mark(seqs, None, problem)
                        raise LrsError(
                            f"the LRS at {url} refused {len(seqs)} statement(s) ({problem}); "
                            f"{outbox.count_pending(lrs)} stay queued in {outbox.path}"
                        )
                outbox.mark(seqs, None, problem)
                if attempt < retries:
                    wait = backoff * 2**attempt
                    say(f"the LRS did not take {len(seqs)} statement(s) ({problem}); trying again in {wait:g}s")
                    sleep(wait)
            else:
                raise LrsError(
                    f"the LRS at {url} is unreachable or failing ({problem}) after {retries + 1} tries; "
                    f"{outbox.count_pending(lrs)} statement(s) stay queued in {outbox.path}: run the command again "
                    "to send them"
                )
    return sent


def send(
    path: Path,
    lrs: str,
    statements: Sequence[dict[str, Any]],
    auth: tuple[str, str] | None,
    **options: Any,
) -> Outcome:
    """Queue `statements` for `lrs` in the outbox at `path`, then send everything queued for it."""
    statements_url(lrs)  # a bad URL is refused before anything is queued
    with Outbox(path) as outbox:
        queued = outbox.add(lrs, statements, time.time())
        sent = deliver(outbox, lrs, auth, **options)
        return Outcome(queued, sent, outbox.count_pending(lrs))
