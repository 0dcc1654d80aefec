"""The release store (SQLite, WAL): releases, their deployments, and the pipeline's stream cursor.

`ship`, `deploy` and `rollback` are the one code path for every change of the active release (CLI,
labs, drills): each records a deployment and journals `pipeline.deployed {version, previous, by, reason}`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from pydantic import TypeAdapter

from lab_runtime.errors import InvalidRelease, NotFound
from lab_runtime.journal import Journal
from lab_runtime.pipeline.releases import Release, Transform
from lab_runtime.sqlite import connect

PIPELINE_DEPLOYED = "pipeline.deployed"
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
"""


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
        journal.append(
            PIPELINE_DEPLOYED,
            {
                "version": deployment.version,
                "previous": deployment.previous,
                "by": deployment.by,
                "reason": deployment.reason,
            },
        )
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
