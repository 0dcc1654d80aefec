"""Seeded choices of a drill run or a game day: which drill, and how long before the injection. Pure."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import TYPE_CHECKING

from lab_runtime.errors import LabError

if TYPE_CHECKING:
    from drills.spec import Drill


def draw_delay(seed: int, key: str, after: float | None, between: tuple[float, float] | None) -> float:
    """Seconds before the injection: `after`, or uniform in `between`, drawn from the seed (0 by default)."""
    if after is not None and between is not None:
        raise LabError("give either --after or --between, not both")
    if between is not None:
        low, high = between
        if low > high:
            raise LabError(f"--between needs the shorter delay first (got {low:g}s then {high:g}s)")
        return random.Random(f"{seed}:delay:{key}").uniform(low, high)
    return after or 0.0


def eligible(drills: Iterable[Drill], kind: str | None, runtime: str) -> list[str]:
    """The ids of the drills `lab drill run random` draws from: of `kind` (any if None), able to run on `runtime`."""
    return [d.id for d in drills if (kind is None or d.kind == kind) and runtime in d.runtimes]


def pick(seed: int, ids: list[str]) -> str:
    """One of `ids`, drawn from the seed."""
    if not ids:
        raise LabError("no drill matches; see `lab drill list`")
    return random.Random(f"{seed}:pick").choice(sorted(ids))


def gameday(seed: int, ids: list[str], between: tuple[float, float]) -> list[tuple[str, float]]:
    """The game day's drills in the given order, each with its seeded delay before injection."""
    return [(drill_id, draw_delay(seed, f"{i}:{drill_id}", None, between)) for i, drill_id in enumerate(ids)]
