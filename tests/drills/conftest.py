"""A real sandbox for the drill tests, kept warm across the drill files an xdist worker runs in a row, run fast:
short windows, drills at a tenth of their time."""

from __future__ import annotations

import contextlib
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


class Kept:
    """One warm sandbox per xdist worker for the drill tests it runs one after another (the collection order keeps the
    drill files together, and each drill restores the sandbox after it): started by the first, stopped once the
    next test is not a drill test (`pytest_runtest_teardown`), so it never idles under the other tests' load."""

    def __init__(self) -> None:
        self.stack: contextlib.ExitStack | None = None
        self.box: Sandbox | None = None
        self.failed: str | None = None  # why the warm-up failed: said again at once to the tests after

    def get(self, tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
        if self.failed:
            pytest.fail(f"the drill sandbox did not start on this worker: {self.failed}")
        if self.box is None:
            with contextlib.ExitStack() as stack:
                state: Path = tmp_path_factory.mktemp("drills") / "state"
                box = stack.enter_context(running_sandbox(state, DRILL_ENV, versions=1))
                # and warm, as a sandbox that ran a while is: the quality window holds labels (a feedback outage
                # must cut them)
                steady = tuple(parse_condition(c) for c in (*DEFAULT_STEADY_STATE, "labelled_rows >= 100"))
                verdict = wait_steady(box.settings, box.backend, steady, 120)
                if not verdict.ok:
                    self.failed = f"it never reached its steady state: {verdict.failing}"
                    pytest.fail(f"the drill sandbox {self.failed}")
                self.stack, self.box = stack.pop_all(), box
        return self.box

    def stop(self) -> None:
        stack, self.stack, self.box = self.stack, None, None
        if stack is not None:
            stack.close()


KEPT = Kept()


@pytest.fixture
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    return KEPT.get(tmp_path_factory)


@pytest.fixture(scope="session", autouse=True)
def _stop_kept() -> Iterator[None]:
    yield
    KEPT.stop()  # whatever ended the session early (a failure with -x, Ctrl-C)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """After the test's own fixtures are torn down (`no_drill_left`'s reset among them), even when one of them
    failed: the sandbox stops unless the next test is a drill test."""
    try:
        return (yield)
    finally:
        if nextitem is None or not _in_drills(nextitem):
            KEPT.stop()


def _in_drills(item: pytest.Item) -> bool:
    return item.path.parent == Path(__file__).parent


@pytest.fixture(autouse=True)
def no_drill_left() -> Iterator[None]:
    """Whatever a test on the sandbox leaves running or unreverted (say, after a failed assertion) is reset before
    the next. Tests of pure logic start no sandbox."""
    yield
    if KEPT.box is None:
        return
    with Ledger(KEPT.box.settings.drills_db_path) as ledger:
        left = ledger.open_runs() or ledger.runs_with_unreverted()
    if left:
        lab("reset")
