"""A real sandbox per drill test file (per xdist worker that runs it), run fast: short windows, drills at a tenth
of their time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from drills.conditions import parse_condition
from drills.engine import wait_steady
from drills.ledger import Ledger
from drills.spec import DEFAULT_STEADY_STATE
from tests.drills.learner import lab
from tests.sandbox import Sandbox, running_sandbox

DRILL_ENV = {"LAB_DRILL_PROBE_INTERVAL": "0.5", "LAB_LEARNER": "ada"}  # on FAST's clock


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    state: Path = tmp_path_factory.mktemp("drills") / "state"
    with running_sandbox(state, DRILL_ENV, versions=1) as box:
        # and warm, as a sandbox that ran a while is: the quality window holds labels (a feedback outage must cut them)
        steady = tuple(parse_condition(c) for c in (*DEFAULT_STEADY_STATE, "labelled_rows >= 100"))
        verdict = wait_steady(box.settings, box.backend, steady, 120)
        assert verdict.ok, f"the sandbox never reached its steady state: {verdict.failing}"
        yield box


@pytest.fixture(autouse=True)
def no_drill_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """Whatever a test on the sandbox leaves running or unreverted (say, after a failed assertion) is reset before
    the next. Tests of pure logic start no sandbox."""
    yield
    if "sandbox" not in request.fixturenames:
        return
    sandbox: Sandbox = request.getfixturevalue("sandbox")
    with Ledger(sandbox.settings.drills_db_path) as ledger:
        left = ledger.open_runs() or ledger.runs_with_unreverted()
    if left:
        lab("reset")
