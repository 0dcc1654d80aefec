"""One real sandbox for every drill test (package scope), run fast: short windows, drills at a tenth of their time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sandbox import Sandbox, running_sandbox

DRILL_ENV = {
    "LAB_PIPELINE_RATE": "50",
    "LAB_MONITOR_WINDOW": "5",
    "LAB_QUALITY_WINDOW": "10",
    "LAB_DRILL_TIME_SCALE": "0.1",
    "LAB_DRILL_PROBE_INTERVAL": "0.5",
    "LAB_LEARNER": "ada",
}


@pytest.fixture(scope="package")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    state: Path = tmp_path_factory.mktemp("drills") / "state"
    with running_sandbox(state, DRILL_ENV, versions=1) as box:
        yield box
