"""The console's SQLite store: tokens, batches taken only right after the events held, orders."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.console.store import CursorMismatch, SqliteStore, digest
from lab_runtime.console.wire import Order, OrderResult, SandboxState, WireEvent
from lab_runtime.errors import NotFound


def events(*ids: int) -> list[WireEvent]:
    return [WireEvent(id=i, ts=float(i), source="cli", kind="k", payload={"i": i}, learner="ada") for i in ids]


def test_tokens_identify_their_holder_until_revoked_and_only_their_digest_is_kept(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "c.db")
    token_id, token = store.issue("learner", "ada")
    who = store.identify(token)
    assert who is not None and (who.role, who.learner, who.token_id) == ("learner", "ada", token_id)
    assert store.identify(token + "x") is None
    raw = (tmp_path / "c.db").read_bytes() + (tmp_path / "c.db-wal").read_bytes()
    assert token.encode() not in raw and digest(token).encode() in raw
    assert store.revoke(token_id).revoked is not None
    assert store.identify(token) is None
    with pytest.raises(NotFound, match="no console token has id 'nope'"):
        store.revoke("nope")


def test_a_batch_is_taken_only_right_after_the_events_held_so_each_arrives_once(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "c.db")
    assert store.take_batch("ada", 0, events(1, 2, 4), None) == 4  # ids may skip (a rolled-back insert)
    with pytest.raises(CursorMismatch) as resent:  # the same batch again: its answer was lost
        store.take_batch("ada", 0, events(1, 2, 4), None)
    assert resent.value.cursor == 4
    with pytest.raises(CursorMismatch, match="up to event 4"):  # a gap: the agent lost its place
        store.take_batch("ada", 7, events(8), None)
    state = SandboxState(runtime="local", learner="ada", services={"mlflow": True})
    assert store.take_batch("ada", 4, events(5), state) == 5
    assert [e.id for e in store.events("ada")] == [1, 2, 4, 5]
    assert [e.payload for e in store.events("ada", after=4)] == [{"i": 5}]
    (sandbox,) = store.sandboxes()
    assert (sandbox.cursor, sandbox.state, sandbox.last_ts) == (5, state, 5.0)
    assert store.take_batch("ada", 5, [], None) == 5  # a state-only batch keeps the last state
    assert store.sandboxes()[0].state == state


def test_orders_are_taken_once_polled_and_answered_by_their_learner_only(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "c.db")
    ids = store.place(["ada", "bob"], Order(action="drill", drill="d", seed=3))
    assert [o.state for o in store.orders()] == ["pending", "pending"]
    (mine,) = store.orders_for("ada", 0)
    assert (mine.id, mine.drill, mine.seed) == (ids[0], "d", 3)
    assert store.orders_for("ada", mine.id) == []
    with pytest.raises(NotFound):
        store.answer("bob", ids[0], OrderResult(state="started", message="x"))
    store.answer("ada", ids[0], OrderResult(state="refused", message="needs the compose runtime"))
    by_id = {o.order.id: o for o in store.orders()}
    assert (by_id[ids[0]].state, by_id[ids[0]].message) == ("refused", "needs the compose runtime")
    assert by_id[ids[1]].state == "pending"
