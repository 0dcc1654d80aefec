"""The agent's wire format: signatures, batches in journal order, orders and the `lab` command each runs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lab_runtime.console.wire import Batch, Order, WireEvent, signature, signed


def event(i: int) -> WireEvent:
    return WireEvent(id=i, ts=1.0 * i, source="cli", kind="lab.started", payload={"lab": "lab-01"}, learner="ada")


def test_a_signature_covers_method_path_and_body_and_only_its_token_makes_it() -> None:
    made = signature("tok-a", "POST", "/api/agent/events", b'{"after":0}')
    assert signed("tok-a", made, "post", "/api/agent/events", b'{"after":0}')
    assert not signed("tok-b", made, "POST", "/api/agent/events", b'{"after":0}')
    assert not signed("tok-a", made, "POST", "/api/agent/events", b'{"after":1}')
    assert not signed("tok-a", made, "POST", "/api/agent/orders", b'{"after":0}')
    assert not signed("tok-a", None, "POST", "/api/agent/events", b'{"after":0}')


def test_a_batch_holds_events_after_its_cursor_in_journal_order() -> None:
    assert [e.id for e in Batch(after=2, events=[event(3), event(7)]).events] == [3, 7]
    with pytest.raises(ValidationError, match="event 2 is not after 2"):
        Batch(after=2, events=[event(2)])
    with pytest.raises(ValidationError, match="event 4 is not after 5"):
        Batch(after=0, events=[event(5), event(4)])


def test_an_event_travels_whole() -> None:
    back = event(3).event()
    assert (back.id, back.ts, back.kind, back.payload, back.learner) == (
        3,
        3.0,
        "lab.started",
        {"lab": "lab-01"},
        "ada",
    )


def test_each_order_runs_a_lab_command_that_returns_at_once() -> None:
    drill = Order(action="drill", drill="incident-service-crash", seed=5, blind=True)
    assert drill.argv() == ["drill", "run", "incident-service-crash", "--detach", "--seed", "5", "--blind"]
    gameday = Order(action="gameday", drills=["a", "b"], between=("0s", "1m"), seed=9)
    assert gameday.argv() == ["drill", "gameday", "--drills", "a,b", "--between", "0s", "1m", "--detach", "--seed", "9"]
    assert Order(action="abort").argv() == ["drill", "abort"]


def test_an_order_missing_what_it_needs_is_refused_by_name() -> None:
    with pytest.raises(ValidationError, match="a drill order names its drill"):
        Order(action="drill")
    with pytest.raises(ValidationError, match="names its drills and the delay range"):
        Order(action="gameday", drills=["a"])
    with pytest.raises(ValidationError, match="action"):
        Order.model_validate({"action": "format-disk"})
