"""The release store: the seeded v1, immutable releases, deployments, rollback, the stream cursor, the journal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lab_runtime.errors import InvalidRelease, NotFound
from lab_runtime.journal import Journal
from lab_runtime.pipeline.releases import Release
from lab_runtime.pipeline.store import INITIAL, PIPELINE_DEPLOYED, ReleaseStore, deploy, rollback, ship

V2 = Release.model_validate(
    {"version": "v2", "note": "income in units", "transforms": [{"type": "scale", "feature": "income", "factor": 1000}]}
)
V3 = Release.model_validate(
    {"version": "v3-nulls", "note": "no region", "transforms": [{"type": "null", "feature": "region", "share": 0.5}]}
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ReleaseStore]:
    with ReleaseStore(tmp_path / "pipeline.db") as s:
        yield s


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "journal.db", source="test")


def test_a_new_store_holds_v1_deployed_by_system_once(tmp_path: Path) -> None:
    for _ in range(2):
        with ReleaseStore(tmp_path / "pipeline.db") as store:
            assert [s.release for s in store.releases()] == [INITIAL]
            assert [(d.version, d.previous, d.by, d.reason) for d in store.history()] == [
                ("v1", None, "system", "initial")
            ]
            assert store.active().version == "v1" and store.get("v1").transforms == []


def test_add_is_idempotent_for_the_same_release_and_refuses_another_under_that_version(store: ReleaseStore) -> None:
    assert store.add(V2) is True
    assert store.add(V2) is False
    assert store.get("v2") == V2
    changed = V2.model_copy(update={"note": "something else"})
    with pytest.raises(InvalidRelease, match=r"release v2 already exists with other contents \(scale income ×1000\)"):
        store.add(changed)
    assert store.get("v2") == V2 and store.active().version == "v1"


def test_get_of_an_unknown_version_lists_the_releases(store: ReleaseStore) -> None:
    store.add(V2)
    with pytest.raises(NotFound, match=r"no pipeline release 'v9'; releases are v1, v2"):
        store.get("v9")


def test_ship_deploys_and_journals_and_shipping_it_again_changes_nothing(store: ReleaseStore, journal: Journal) -> None:
    deployment = ship(store, journal, V2, by="drill")
    assert deployment is not None and (deployment.version, deployment.previous) == ("v2", "v1")
    assert store.active().version == "v2" and store.get("v2") == V2
    assert ship(store, journal, V2, by="drill") is None
    events = journal.events([PIPELINE_DEPLOYED])
    assert [e.payload for e in events] == [{"version": "v2", "previous": "v1", "by": "drill", "reason": "ship"}]


def test_deploy_rolls_forward_to_an_existing_release_only(store: ReleaseStore, journal: Journal) -> None:
    store.add(V2)
    with pytest.raises(NotFound, match="no pipeline release 'v3'"):
        deploy(store, journal, "v3", by="learner")
    assert deploy(store, journal, "v2", by="learner") is not None
    assert deploy(store, journal, "v2", by="learner") is None
    assert [e.payload["reason"] for e in journal.events([PIPELINE_DEPLOYED])] == ["deploy"]


def test_rollback_goes_to_the_release_deployed_before_the_current_one(store: ReleaseStore, journal: Journal) -> None:
    with pytest.raises(NotFound, match="no earlier release to roll back to; v1 is the only release ever deployed"):
        rollback(store, journal, by="learner")
    ship(store, journal, V2, by="instructor")
    ship(store, journal, V3, by="instructor")
    back = rollback(store, journal, by="learner")
    assert back is not None and (back.previous, back.version, back.reason) == ("v3-nulls", "v2", "rollback")
    assert store.previous() == "v1"  # never back to the release just rolled back from
    back = rollback(store, journal, to="v1", by="learner")
    assert back is not None and (back.previous, back.version) == ("v2", "v1")
    assert [e.payload["version"] for e in journal.events([PIPELINE_DEPLOYED])] == ["v2", "v3-nulls", "v2", "v1"]
    assert all(e.payload["by"] == "learner" for e in journal.events([PIPELINE_DEPLOYED])[2:])


def test_a_second_rollback_does_not_bring_back_the_broken_release(store: ReleaseStore, journal: Journal) -> None:
    ship(store, journal, V2, by="instructor")
    rollback(store, journal, by="learner")
    with pytest.raises(NotFound, match="every other release was rolled back from"):
        rollback(store, journal, by="learner")
    assert store.active().version == "v1"


def test_previous_skips_repeats_of_the_current_version(store: ReleaseStore) -> None:
    store.add(V2)
    store.add(V3)
    for version in ("v2", "v3-nulls", "v2"):
        store.deploy(version, "test", "deploy")
    assert store.previous() == "v3-nulls"


def test_rollback_to_a_release_never_deployed_is_refused(store: ReleaseStore, journal: Journal) -> None:
    store.add(V3)
    ship(store, journal, V2, by="instructor")
    with pytest.raises(NotFound, match=r"v3-nulls was never deployed.*`lab pipeline deploy v3-nulls`"):
        rollback(store, journal, to="v3-nulls")
    with pytest.raises(NotFound, match="no pipeline release 'v7'"):
        rollback(store, journal, to="v7")
    assert store.active().version == "v2" and len(journal.events([PIPELINE_DEPLOYED])) == 1


def test_the_cursor_survives_a_reopen(tmp_path: Path) -> None:
    with ReleaseStore(tmp_path / "pipeline.db") as store:
        assert store.cursor() == 0
        store.save_cursor(300)
        store.save_cursor(400)
    with ReleaseStore(tmp_path / "pipeline.db") as store:
        assert store.cursor() == 400
