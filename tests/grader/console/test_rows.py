"""The console's rows over a real store: rebuilt when events they show arrive, current on every read."""

from __future__ import annotations

from pathlib import Path

from grader.console.app import Console
from grader.console.store import SqliteStore
from lab_runtime.console.wire import Batch, SandboxState, WireEvent

JOURNAL = "e" * 32


def event(i: int, kind: str, **payload: object) -> WireEvent:
    return WireEvent(id=i, ts=1000.0 + i, source="x", kind=kind, payload=dict(payload), learner="ada")


def test_a_row_follows_the_cursor_through_probe_results_and_rebuilds_on_events_it_shows(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "c.db")
    store.issue("learner", "ada")
    console = Console(store, b"k" * 32)
    state = SandboxState(runtime="local", learner="ada", services={"mlflow": True})
    started = event(1, "lab.started", lab="lab-02", workspace="w")
    store.take_batch("ada", Batch(journal=JOURNAL, after=0, events=[started], state=state))
    (first,) = console.rows()
    assert (first.lab, first.cursor, first.last_event, first.runtime) == ("lab-02", 1, 1001.0, "local")
    probes = [event(i, "probe.result", steady=True) for i in (2, 3)]
    store.take_batch("ada", Batch(journal=JOURNAL, after=1, events=probes))
    (second,) = console.rows()
    assert (second.lab, second.cursor, second.last_event) == ("lab-02", 3, 1003.0)  # not rebuilt, but current
    store.take_batch("ada", Batch(journal=JOURNAL, after=3, events=[event(4, "alert.firing", rule="drift")]))
    (third,) = console.rows()
    assert (third.alerts, third.cursor) == (("drift",), 4)
    store.take_batch("ada", Batch(journal=JOURNAL, after=4, events=[event(5, "alert.firing")]))  # no rule
    (fourth,) = console.rows()
    assert fourth.problem is not None and "KeyError('rule')" in fourth.problem and fourth.cursor == 5
