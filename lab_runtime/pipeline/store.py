"""The release store (SQLite, WAL): releases, their deployments, world conditions and the pipeline's stream cursor.

`ship`, `deploy` and `rollback` are the one code path for every change of the active release (CLI,
labs, drills): each records a deployment and journals `pipeline.deployed {version, previous, by, reason}`.
World conditions (`CONCEPT`, `LABEL_FEED`, `SOURCE`, `SURGE`: `conditions.py`) are set and cleared by drills
(which journal them) and by `lab pipeline labels resume`; one past its `expires_at` is absent, so it ends with its
drill.
Every process may open the store while the pipeline runs: WAL lets readers go on during a write, and each
write is one `BEGIN IMMEDIATE` transaction that waits (up to 30 s) for the lock.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import TypeAdapter

from lab_runtime.errors import FaultInjectionFailed, InvalidRelease, NotFound
from lab_runtime.events import PIPELINE_DEPLOYED, PipelineDeployed
from lab_runtime.files.sqlite import connect
from lab_runtime.journal import Journal
from lab_runtime.pipeline.conditions import CONCEPT as CONCEPT
from lab_runtime.pipeline.conditions import LABEL_FEED as LABEL_FEED
from lab_runtime.pipeline.conditions import validate_condition
from lab_runtime.pipeline.releases import Release, Transform

RELEASE_POLL = 0.5  # seconds between the pipeline's reads of the active release and the world conditions
INITIAL = Release(version="v1", note="initial release")

_TRANSFORMS = TypeAdapter(list[Transform])
_SCHEMA = """
CREATE TABLE IF NOT EXISTS releases (
    version TEXT PRIMARY KEY,
    note TEXT NOT NULL,
    transforms TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS deployments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    version TEXT NOT NULL REFERENCES releases (version),
    previous TEXT,
    deployed_by TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cursor (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS conditions (
    name TEXT PRIMARY KEY,
    value JSON NOT NULL,
    note TEXT NOT NULL,
    set_at REAL NOT NULL,
    expires_at REAL,
    set_by TEXT NOT NULL
);
"""
_CONDITION_COLUMNS = "name, value, note, set_at, expires_at, set_by"


@dataclass(frozen=True)
class Deployment:
    """One change of the active release. `previous` is the version that was active before (None at first)."""

    id: int
    ts: float
    version: str
    previous: str | None
    by: str
    reason: str


@dataclass(frozen=True)
class StoredRelease:
    release: Release
    created: float


@dataclass(frozen=True)
class Condition:
    """A world condition in force: its validated `value` (JSON) since `set_at`, until `expires_at` (None: cleared)."""

    name: str
    value: dict[str, Any]
    note: str
    set_at: float
    expires_at: float | None
    set_by: str


def _condition(row: tuple[str, str, str, float, float | None, str]) -> Condition:
    name, value, note, set_at, expires_at, set_by = row
    return Condition(name, json.loads(value), note, set_at, expires_at, set_by)


def _deployment(row: tuple[int, float, str, str | None, str, str]) -> Deployment:
    return Deployment(*row)


class ReleaseStore:
    """Releases and deployments in one SQLite file; on first open it holds `v1`, deployed by "system"."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path, _SCHEMA)
        with self._write():
            if self._conn.execute("SELECT COUNT(*) FROM deployments").fetchone()[0] == 0:
                self._insert(INITIAL)
                self._record(INITIAL.version, None, "system", "initial")

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One transaction that holds the write lock from its start (read-then-write is atomic)."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _insert(self, release: Release) -> None:
        transforms = _TRANSFORMS.dump_json(release.transforms).decode()
        self._conn.execute(
            "INSERT INTO releases (version, note, transforms, created) VALUES (?, ?, ?, ?)",
            (release.version, release.note, transforms, time.time()),
        )

    def _record(self, version: str, previous: str | None, by: str, reason: str) -> Deployment:
        ts = time.time()
        cur = self._conn.execute(
            "INSERT INTO deployments (ts, version, previous, deployed_by, reason) VALUES (?, ?, ?, ?, ?)",
            (ts, version, previous, by, reason),
        )
        assert cur.lastrowid is not None
        return Deployment(cur.lastrowid, ts, version, previous, by, reason)

    def _find(self, version: str) -> Release | None:
        row = self._conn.execute("SELECT note, transforms FROM releases WHERE version = ?", (version,)).fetchone()
        if row is None:
            return None
        return Release(version=version, note=row[0], transforms=_TRANSFORMS.validate_json(row[1]))

    def versions(self) -> list[str]:
        return [r[0] for r in self._conn.execute("SELECT version FROM releases ORDER BY created, version")]

    def releases(self) -> list[StoredRelease]:
        """Every release, oldest first."""
        rows = self._conn.execute("SELECT version, note, transforms, created FROM releases ORDER BY created, version")
        return [
            StoredRelease(Release(version=v, note=n, transforms=_TRANSFORMS.validate_json(t)), c) for v, n, t, c in rows
        ]

    def get(self, version: str) -> Release:
        release = self._find(version)
        if release is None:
            raise NotFound(f"no pipeline release {version!r}; releases are {', '.join(self.versions())}")
        return release

    def active(self) -> Deployment:
        """The newest deployment: its version is the release the pipeline applies."""
        row = self._conn.execute(
            "SELECT id, ts, version, previous, deployed_by, reason FROM deployments ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return _deployment(row)

    def history(self) -> list[Deployment]:
        """Every deployment, oldest first."""
        rows = self._conn.execute(
            "SELECT id, ts, version, previous, deployed_by, reason FROM deployments ORDER BY id"
        ).fetchall()
        return [_deployment(r) for r in rows]

    def add(self, release: Release) -> bool:
        """Store a release; False if the identical release is there already. A different one of that version fails."""
        with self._write():
            existing = self._find(release.version)
            if existing is None:
                self._insert(release)
                return True
        if existing != release:
            raise InvalidRelease(
                f"release {release.version} already exists with other contents ({existing.summary()}); "
                "releases are immutable, so give this one a new version"
            )
        return False

    def deploy(self, version: str, by: str, reason: str) -> Deployment | None:
        """Make `version` the active release; None (and nothing recorded) if it is active already."""
        with self._write():
            self.get(version)
            current = self.active().version
            if current == version:
                return None
            return self._record(version, current, by, reason)

    def previous(self) -> str:
        """The release deployed before the current one, skipping repeats of it and releases rolled back from."""
        history = self.history()
        current = history[-1].version
        rolled_back = {d.previous for d in history if d.reason == "rollback"}
        for deployment in reversed(history):
            if deployment.version != current and deployment.version not in rolled_back:
                return deployment.version
        if {d.version for d in history} == {current}:
            raise NotFound(f"no earlier release to roll back to; {current} is the only release ever deployed")
        raise NotFound(
            "no earlier release to roll back to: every other release was rolled back from; "
            "pick one with `lab pipeline rollback --to VERSION` (see `lab pipeline releases`)"
        )

    def cursor(self) -> int:
        """The next production row the pipeline sends."""
        row = self._conn.execute("SELECT position FROM cursor WHERE name = 'stream'").fetchone()
        return int(row[0]) if row else 0

    def save_cursor(self, position: int) -> None:
        self._conn.execute(
            "INSERT INTO cursor (name, position) VALUES ('stream', ?) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
            (position,),
        )

    def set_condition(
        self, name: str, value: Mapping[str, Any], note: str, by: str, expires_at: float | None = None
    ) -> None:
        """Put condition `name` in force (replacing it), or raise FaultInjectionFailed naming the bad field.

        Setting the same value again keeps its `set_at` (it has been in force since then) and takes the new
        note, author and expiry, so a runner may renew it.
        """
        try:
            validated = validate_condition(name, value)
        except ValueError as exc:
            raise FaultInjectionFailed(str(exc)) from None
        now = time.time()
        if expires_at is not None and not (math.isfinite(expires_at) and expires_at > now):
            raise FaultInjectionFailed(f"pipeline condition {name!r}: expires_at {expires_at} is not in the future")
        body = validated.model_dump(mode="json")
        with self._write():
            current = self.conditions(now).get(name)
            set_at = current.set_at if current is not None and current.value == body else now
            self._conn.execute(
                f"INSERT OR REPLACE INTO conditions ({_CONDITION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                (name, json.dumps(body, sort_keys=True), note, set_at, expires_at, by),
            )

    def clear_condition(self, name: str) -> bool:
        """End condition `name`; False if it was not in force (never set, cleared, or expired)."""
        with self._write():
            active = name in self.conditions()
            self._conn.execute("DELETE FROM conditions WHERE name = ?", (name,))
        return active

    def conditions(self, now: float | None = None) -> dict[str, Condition]:
        """The conditions in force at `now` (default: now), by name; expired ones are absent."""
        at = time.time() if now is None else now
        rows = self._conn.execute(
            f"SELECT {_CONDITION_COLUMNS} FROM conditions WHERE expires_at IS NULL OR expires_at > ? ORDER BY name",
            (at,),
        )
        return {row[0]: _condition(row) for row in rows}

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ReleaseStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _journal(journal: Journal, deployment: Deployment | None) -> Deployment | None:
    if deployment is not None:
        payload = PipelineDeployed(
            version=deployment.version, previous=deployment.previous, by=deployment.by, reason=deployment.reason
        )
        journal.append(PIPELINE_DEPLOYED, payload)
    return deployment


def deploy(store: ReleaseStore, journal: Journal, version: str, by: str) -> Deployment | None:
    """Roll forward (or back) to an existing release; None if it is active already."""
    return _journal(journal, store.deploy(version, by, "deploy"))


def ship(store: ReleaseStore, journal: Journal, release: Release, by: str) -> Deployment | None:
    """Add a release (idempotent for an identical one) and deploy it; None if it is active already."""
    store.add(release)
    return _journal(journal, store.deploy(release.version, by, "ship"))


def rollback(store: ReleaseStore, journal: Journal, to: str | None = None, by: str = "learner") -> Deployment | None:
    """Go back to `to`, or by default to the release deployed before the current one; None if `to` is active."""
    if to is None:
        to = store.previous()
    else:
        store.get(to)
        deployed = {d.version for d in store.history()}
        if to not in deployed:
            raise NotFound(
                f"{to} was never deployed, so there is nothing to roll back to; "
                f"roll forward with `lab pipeline deploy {to}` instead"
            )
    return _journal(journal, store.deploy(to, by, "rollback"))
