"""The alias history: which request explains a change, and how the history reads (pure, from journal events)."""

from __future__ import annotations

from typing import Any

from lab_runtime.events import ALIAS_CHANGED, ALIAS_REQUESTED
from lab_runtime.journal import Event
from lab_runtime.registry.alias_history import OUTSIDE, REQUEST_LIFETIME, attribute, change_payload, history
from lab_runtime.registry.rest import AliasChange

T0 = 1_700_000_000.0
PROMOTED = AliasChange("m", "champion", "1", "2")


def request(id_: int, ts: float, alias: str, version: str | None, via: str, model: str = "m") -> Event:
    payload = {"model": model, "alias": alias, "version": version, "via": via}
    return Event(id_, ts, "cli", ALIAS_REQUESTED, payload, learner="ada")


def changed(id_: int, ts: float, payload: dict[str, Any]) -> Event:
    return Event(id_, ts, "registry-watcher", ALIAS_CHANGED, payload)


def test_a_change_is_credited_to_the_matching_request_once() -> None:
    requests = [request(1, T0, "champion", "2", "lab model promote"), request(2, T0 + 1, "champion", "2", "again")]
    used: set[int] = set()
    change = AliasChange("m", "champion", "1", "2")
    first = attribute(change, requests, used, T0 + 2)
    second = attribute(change, requests, used, T0 + 2)
    third = attribute(change, requests, used, T0 + 2)
    assert (first and first.id, second and second.id, third) == (1, 2, None)


def test_requests_for_another_alias_version_model_or_too_old_do_not_explain_a_change() -> None:
    change = AliasChange("m", "champion", "1", "2")
    others = [
        request(1, T0, "challenger", "2", "x"),
        request(2, T0, "champion", "3", "x"),
        request(3, T0, "champion", "2", "x", model="other"),
        request(4, T0 - REQUEST_LIFETIME - 1, "champion", "2", "x"),
        request(5, T0 + 5, "champion", "2", "x"),  # after the change was seen: not its cause
    ]
    assert attribute(change, others, set(), T0) is None


def test_a_removal_matches_a_request_to_remove() -> None:
    change = AliasChange("m", "challenger", "3", None)
    found = attribute(change, [request(7, T0, "challenger", None, "lab canary abort")], set(), T0 + 1)
    assert found is not None and change_payload(change, found)["via"] == "lab canary abort"


def test_the_payload_says_how_and_by_whom() -> None:
    change = AliasChange("m", "champion", "1", "2")
    made = change_payload(change, request(1, T0, "champion", "2", "lab model rollback"))
    assert made == {
        "model": "m", "alias": "champion", "before": "1", "after": "2", "via": "lab model rollback",
        "requested_by": "ada", "requested_at": T0,
    }  # fmt: skip
    assert change_payload(change, None) == {"model": "m", "alias": "champion", "before": "1", "after": "2",
                                            "via": OUTSIDE}  # fmt: skip


def test_history_reads_old_and_new_events_filtered_by_model_and_alias() -> None:
    events = [
        changed(1, T0, {"model": "m", "alias": "champion", "before": None, "after": "1"}),  # written before `via`
        changed(
            2, T0 + 1, change_payload(AliasChange("m", "champion", "1", "2"), request(9, T0, "champion", "2", "p"))
        ),
        changed(3, T0 + 2, {"model": "m", "alias": "challenger", "before": None, "after": "3", "via": OUTSIDE}),
        changed(4, T0 + 3, {"model": "other", "alias": "champion", "before": None, "after": "1", "via": OUTSIDE}),
        Event(5, T0 + 4, "cli", ALIAS_REQUESTED, {"model": "m", "alias": "champion", "version": "1"}),
    ]
    champions = history(events, model="m", alias="champion")
    assert [(e.before, e.after, e.via, e.learner) for e in champions] == [
        (None, "1", OUTSIDE, None),
        ("1", "2", "p", "ada"),
    ]
    assert [e.what for e in champions] == ["@champion set to version 1", "@champion moved from version 1 to 2"]
    assert len(history(events, model="m")) == 3 and len(history(events)) == 4
