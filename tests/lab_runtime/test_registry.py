from lab_runtime.journal import Event
from lab_runtime.registry.rest import AliasChange, ModelState, VersionInfo, alias_changes, version_info
from lab_runtime.registry.watcher import known_aliases


def test_alias_changes_lists_set_moved_and_removed_aliases() -> None:
    before = {"m": {"champion": "1", "challenger": "2"}, "old": {"champion": "1"}}
    after = {"m": {"champion": "2"}, "new": {"champion": "4"}}
    assert alias_changes(before, after) == [
        AliasChange("m", "challenger", "2", None),
        AliasChange("m", "champion", "1", "2"),
        AliasChange("new", "champion", None, "4"),
        AliasChange("old", "champion", "1", None),
    ]
    assert alias_changes(after, after) == []


def test_the_journal_folds_back_into_the_alias_map() -> None:
    def ev(alias: str, before: str | None, after: str | None) -> Event:
        return Event(
            0, 0.0, "w", "registry.alias_changed", {"model": "m", "alias": alias, "before": before, "after": after}
        )

    events = [
        ev("champion", None, "1"),
        ev("challenger", None, "2"),
        ev("champion", "1", "2"),
        ev("challenger", "2", None),
    ]
    assert known_aliases(events) == {"m": {"champion": "2"}}


def test_canary_weight_is_read_from_the_tag_and_clamped() -> None:
    assert ModelState("m", tags={"canary_weight": "0.25"}).canary_weight == 0.25
    assert ModelState("m", tags={"canary_weight": "7"}).canary_weight == 1.0
    assert ModelState("m", tags={"canary_weight": "lots"}).canary_weight == 0.0
    assert ModelState("m").canary_weight == 0.0


def test_a_version_record_lists_with_its_aliases_and_its_runs_metrics() -> None:
    state = ModelState("m", aliases={"champion": "2", "challenger": "3", "previous": "2"})
    record = {"version": "2", "creation_timestamp": "1700000000250", "run_id": "abc", "description": "retrained"}
    assert version_info(record, state, {"accuracy": 0.81}) == VersionInfo(
        "2", 1_700_000_000.25, ["champion", "previous"], {"accuracy": 0.81}, "abc", "retrained"
    )
    assert version_info({"version": "4"}, state, {}) == VersionInfo("4", 0.0, [], {}, None, "")
