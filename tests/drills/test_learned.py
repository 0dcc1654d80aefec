"""Which champion a learned change (concept drift, a source's new meaning) puts back as it ends."""

from __future__ import annotations

from typing import Any

import pytest

from drills.faults.pipeline import champion_to_restore

FOUND = {"champion": "7", "latest": 10}  # @champion was version 7 and version 10 the newest when the fault began


@pytest.mark.parametrize(
    ("plan", "champion", "back"),
    [
        (FOUND, "11", "7"),  # the learner's retrain, registered since, promoted: version 7 again
        (FOUND, "7", None),  # the champion it found: nothing to undo
        (FOUND, "3", None),  # the learner rolled back to an older version: theirs to keep
        (FOUND, "10", None),  # registered before the fault: not learned from it
        (FOUND, None, None),  # no champion now: nothing to move
        ({"champion": None, "latest": 0}, "1", None),  # no champion then: nothing to go back to
        ({}, "11", None),  # a plan written before faults recorded the champion
    ],
)
def test_the_champion_goes_back_only_from_a_version_registered_since(
    plan: dict[str, Any], champion: str | None, back: str | None
) -> None:
    assert champion_to_restore(plan, champion) == back
