"""Why a learner's server last failed to start: `<hub folder>/failures/<learner>.json`, written by the hub's
spawner, cleared when a server starts, read by `lab hub status` and the console."""

from __future__ import annotations

import time
from pathlib import Path

from lab_runtime.files.atomic import read_json, write_json_atomic

FOLDER = "failures"


def record(folder: Path, learner: str, reason: str) -> None:
    (folder / FOLDER).mkdir(exist_ok=True)
    write_json_atomic(folder / FOLDER / f"{learner}.json", {"learner": learner, "reason": reason, "at": time.time()})


def clear(folder: Path, learner: str) -> None:
    (folder / FOLDER / f"{learner}.json").unlink(missing_ok=True)


def read(folder: Path, learner: str) -> tuple[str, float] | None:
    """The reason and when, or None when their last start did not fail."""
    found = read_json(folder / FOLDER / f"{learner}.json")
    try:
        return (str(found["reason"]), float(found["at"])) if found else None
    except (KeyError, TypeError, ValueError):
        return None
