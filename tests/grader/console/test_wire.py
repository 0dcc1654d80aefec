"""The agent's wire format: signatures, batches in journal order, orders and the `lab` command each runs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lab_runtime.console.wire import (
    MAX_SKEW,
    SIGNATURE_HEADER,
    TIME_HEADER,
    TOKEN_HEADER,
    Batch,
    Order,
    SandboxState,
    WireEvent,
    digest,
    headers,
    signature,
    signed,
    token_id,
)

JOURNAL = "0" * 32


def event(i: int) -> WireEvent:
    return WireEvent(id=i, ts=1.0 * i, source="cli", kind="lab.started", payload={"lab": "lab-01"}, learner="ada")


def test_a_signature_covers_method_target_time_and_body_and_only_its_key_makes_it() -> None:
    made = signature("key-a", "POST", "/api/agent/events", "100.000", b'{"after":0}')
    assert signed("key-a", made, "post", "/api/agent/events", "100.000", b'{"after":0}', now=150.0)
    assert not signed("key-b", made, "POST", "/api/agent/events", "100.000", b'{"after":0}', now=150.0)
    assert not signed("key-a", made, "POST", "/api/agent/events", "100.000", b'{"after":1}', now=150.0)
    assert not signed("key-a", made, "POST", "/api/agent/orders", "100.000", b'{"after":0}', now=150.0)
    assert not signed("key-a", made, "POST", "/api/agent/events", "100.001", b'{"after":0}', now=150.0)
    assert not signed("key-a", None, "POST", "/api/agent/events", "100.000", b'{"after":0}', now=150.0)
    assert not signed("key-a", made, "POST", "/api/agent/events", "100.000", b'{"after":0}', now=100.0 + MAX_SKEW + 1)
    assert not signed("key-a", made, "POST", "/api/agent/events", "soon", b'{"after":0}', now=150.0)


def test_an_agent_request_names_its_token_by_id_and_signs_with_its_digest_never_sending_it() -> None:
    sent = headers("labc_secret", "GET", "/api/agent/orders?after=3", b"", now=200.0)
    assert "labc_secret" not in str(sent) and sent[TOKEN_HEADER] == token_id("labc_secret")
    assert signed(digest("labc_secret"), sent[SIGNATURE_HEADER], "GET", "/api/agent/orders?after=3", sent[TIME_HEADER],
                  b"", now=201.0)  # fmt: skip
    assert not signed(digest("labc_secret"), sent[SIGNATURE_HEADER], "GET", "/api/agent/orders?after=0",
                      sent[TIME_HEADER], b"", now=201.0)  # fmt: skip


def test_a_batch_holds_events_after_its_cursor_in_journal_order() -> None:
    assert [e.id for e in Batch(journal=JOURNAL, after=2, events=[event(3), event(7)]).events] == [3, 7]
    with pytest.raises(ValidationError, match="event 2 is not after 2"):
        Batch(journal=JOURNAL, after=2, events=[event(2)])
    with pytest.raises(ValidationError, match="event 4 is not after 5"):
        Batch(journal=JOURNAL, after=0, events=[event(5), event(4)])


def test_a_batch_refuses_what_the_console_could_not_store_or_show() -> None:
    with pytest.raises(ValidationError, match="less than or equal"):
        WireEvent(id=2**63, ts=1.0, source="cli", kind="k", payload={})
    with pytest.raises(ValidationError, match="finite"):
        WireEvent(id=1, ts=float("nan"), source="cli", kind="k", payload={})
    with pytest.raises(ValidationError, match=r"drills\.0\.id"):
        SandboxState.model_validate({"runtime": "local", "learner": "ada", "drills": [{"id": 7}]})
    with pytest.raises(ValidationError, match="pattern"):
        SandboxState.model_validate({"runtime": "local", "learner": "ada", "drills": [{"id": "<script>"}]})
    with pytest.raises(ValidationError, match="journal"):
        Batch(journal="not-an-id", after=0, events=[])


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
    with pytest.raises(ValidationError, match="pattern"):  # a catalog id, never a file the sandbox would load
        Order(action="drill", drill="../../etc/drill.yaml")
