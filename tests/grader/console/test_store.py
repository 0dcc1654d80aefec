"""The console's SQLite store: tokens, batches taken only right after the events held, orders."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.console.store import CursorMismatch, SqliteStore
from lab_runtime.console.wire import Batch, Order, OrderResult, SandboxState, WireEvent, digest
from lab_runtime.errors import NotFound

FIRST, SECOND = "a" * 32, "b" * 32  # two journals: the sandbox made anew in between


def batch(after: int, *ids: int, journal: str = FIRST, state: SandboxState | None = None) -> Batch:
    events = [WireEvent(id=i, ts=float(i), source="cli", kind="k", payload={"i": i}, learner="ada") for i in ids]
    return Batch(journal=journal, after=after, events=events, state=state)


def test_tokens_identify_their_holder_until_revoked_and_only_their_digest_is_kept(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "c.db")
    token_id, token = store.issue("learner", "ada")
    who = store.identify(token)
    assert who is not None and (who.role, who.learner, who.token_id) == ("learner", "ada", token_id)
    assert store.identify(token + "x") is None
    assert store.identify_id(token_id) == who and who.key == digest(token)
    raw = (tmp_path / "c.db").read_bytes() + (tmp_path / "c.db-wal").read_bytes()
    assert token.encode() not in raw and digest(token).encode() in raw
    assert store.revoke(token_id).revoked is not None
    assert store.identify(token) is None
    with pytest.raises(NotFound, match="no console token has id 'nope'"):
        store.revoke("nope")


def test_a_batch_is_taken_only_right_after_the_events_held_so_each_arrives_once(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "c.db")
    assert store.take_batch("ada", batch(0, 1, 2, 4)) == 4  # ids may skip (a rolled-back insert)
    with pytest.raises(CursorMismatch) as resent:  # the same batch again: its answer was lost
        store.take_batch("ada", batch(0, 1, 2, 4))
    assert resent.value.cursor == 4
    with pytest.raises(CursorMismatch, match="up to event 4"):  # a gap: the agent lost its place
        store.take_batch("ada", batch(7, 8))
    state = SandboxState(runtime="local", learner="ada", services={"mlflow": True})
    assert store.take_batch("ada", batch(4, 5, state=state)) == 5
    assert [e.id for e in store.events("ada")] == [1, 2, 4, 5]
    assert [(e.id, e.payload) for e in store.events_since("ada", ["k"], 3)] == [(4, {"i": 5})]  # its seq, 4th
    (sandbox,) = store.sandboxes()
    assert (sandbox.cursor, sandbox.seq, sandbox.state, sandbox.last_ts) == (5, 4, state, 5.0)
    assert store.take_batch("ada", batch(5)) == 5  # a state-only batch keeps the last state
    assert store.sandboxes()[0].state == state


def test_a_sandbox_made_anew_ships_its_new_journal_from_its_start_and_the_old_one_is_kept(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "c.db")
    store.take_batch("ada", batch(0, 1, 2, 3))
    with pytest.raises(CursorMismatch) as told:  # an agent of the new journal that kept an old cursor file
        store.take_batch("ada", batch(3, 4, journal=SECOND))
    assert told.value.cursor == 0
    assert store.take_batch("ada", batch(0, 1, 2, journal=SECOND)) == 2
    assert [e.id for e in store.events("ada")] == [1, 2, 3, 1, 2]  # in the order they arrived
    (sandbox,) = store.sandboxes()
    assert (sandbox.journal, sandbox.cursor, sandbox.seq) == (SECOND, 2, 5)
    with pytest.raises(CursorMismatch) as back:  # the first sandbox ships again: from where it was
        store.take_batch("ada", batch(0, 1, 2, 3, 4))
    assert back.value.cursor == 3
    assert store.take_batch("ada", batch(3, 4)) == 4
    assert [e.id for e in store.events_since("ada", None, 0)] == [1, 2, 3, 4, 5, 6]  # numbered by arrival
    assert [e.id for e in store.events_since("ada", ["k"], 2, upto=4)] == [3, 4]


def test_orders_are_taken_once_polled_and_answered_by_their_learner_only(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "c.db")
    ids = store.place(["ada", "bob"], Order(action="drill", drill="d", seed=3))
    assert [o.state for o in store.orders()] == ["pending", "pending"]
    (mine,) = store.orders_for("ada", 0)
    assert (mine.id, mine.drill, mine.seed) == (ids[0], "d", 3)
    assert store.orders_for("ada", mine.id) == []
    assert store.orders_for("ada", 0) == [mine]  # taken, not answered: sent again to an agent that lost its place
    with pytest.raises(NotFound):
        store.answer("bob", ids[0], OrderResult(state="started", message="x"))
    store.answer("ada", ids[0], OrderResult(state="refused", message="needs the compose runtime"))
    by_id = {o.order.id: o for o in store.orders()}
    assert (by_id[ids[0]].state, by_id[ids[0]].message) == ("refused", "needs the compose runtime")
    assert by_id[ids[1]].state == "pending"
    assert store.orders_for("ada", 0) == []  # answered: never sent again, even to a sandbox made anew
    with pytest.raises(NotFound, match="awaits an answer"):  # answered once: an answer for another store's order
        store.answer("ada", ids[0], OrderResult(state="started", message="x"))
    (later,) = store.place(["ada"], Order(action="abort"))
    assert [o.id for o in store.orders_for("ada", 999)] == [later]  # an agent whose place was in another console
