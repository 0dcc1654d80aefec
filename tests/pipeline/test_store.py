"""The release store: the seeded v1, immutable releases, deployments, rollback, the stream cursor, the journal,
and the world conditions (their values validated by `conditions.py`)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab_runtime.errors import FaultInjectionFailed, InvalidRelease, NotFound
from lab_runtime.events import PIPELINE_DEPLOYED
from lab_runtime.journal import Journal
from lab_runtime.modeling.population import LabelFunction
from lab_runtime.pipeline.conditions import ConceptChange, LabelFeedStop, validate_condition
from lab_runtime.pipeline.releases import Release
from lab_runtime.pipeline.store import CONCEPT, INITIAL, LABEL_FEED, ReleaseStore, deploy, rollback, ship

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


# World conditions

REVERSED = {"coef": {"credit_score": 1.3}}
OUTAGE = {"reason": "the labelling vendor's export job fails"}


def test_a_condition_is_in_force_until_cleared_and_clearing_it_twice_says_it_was_gone(store: ReleaseStore) -> None:
    assert store.conditions() == {}
    before = time.time()
    store.set_condition(CONCEPT, REVERSED, note="drill d1", by="drill")
    store.set_condition(LABEL_FEED, OUTAGE, note="drill d1", by="drill", expires_at=time.time() + 60)
    active = store.conditions()
    assert list(active) == [CONCEPT, LABEL_FEED]
    concept = active[CONCEPT]
    assert concept.value == {"intercept_shift": 0.0, "coef": {"credit_score": 1.3}, "category_effect": {}}
    assert (concept.note, concept.set_by, concept.expires_at) == ("drill d1", "drill", None)
    assert before <= concept.set_at <= time.time()
    assert active[LABEL_FEED].value == OUTAGE
    assert store.clear_condition(LABEL_FEED) is True
    assert store.clear_condition(LABEL_FEED) is False
    assert list(store.conditions()) == [CONCEPT]


def test_an_expired_condition_is_absent_so_it_ends_with_the_drill_that_set_it(store: ReleaseStore) -> None:
    expires = time.time() + 30
    store.set_condition(LABEL_FEED, OUTAGE, note="n", by="drill", expires_at=expires)
    assert LABEL_FEED in store.conditions()
    assert LABEL_FEED in store.conditions(now=expires - 0.1)
    assert store.conditions(now=expires) == {}
    with pytest.raises(FaultInjectionFailed, match=r"pipeline condition 'label_feed': expires_at .* not in the future"):
        store.set_condition(LABEL_FEED, OUTAGE, note="n", by="drill", expires_at=time.time() - 1)


def test_clearing_an_expired_condition_says_it_was_not_in_force(store: ReleaseStore) -> None:
    store.set_condition(LABEL_FEED, OUTAGE, note="n", by="drill", expires_at=time.time() + 0.05)
    time.sleep(0.1)
    assert store.clear_condition(LABEL_FEED) is False


def test_setting_the_same_value_again_keeps_since_when_and_another_value_restarts_it(store: ReleaseStore) -> None:
    store.set_condition(LABEL_FEED, OUTAGE, note="first", by="drill", expires_at=time.time() + 10)
    first = store.conditions()[LABEL_FEED]
    store.set_condition(LABEL_FEED, OUTAGE, note="renewed", by="drill", expires_at=time.time() + 60)
    renewed = store.conditions()[LABEL_FEED]
    assert renewed.set_at == first.set_at and renewed.note == "renewed"
    assert renewed.expires_at is not None and first.expires_at is not None and renewed.expires_at > first.expires_at
    store.set_condition(LABEL_FEED, {"reason": "another outage"}, note="other", by="drill")
    assert store.conditions()[LABEL_FEED].set_at > first.set_at


UnknownFeature = {"coef": {"credit_scor": 1.0}}
CategoricalInCoef = {"coef": {"region": 1.0}}
UnknownCategory = {"category_effect": {"purpose=holiday": 1.0}}
NotColumnEqualsCategory = {"category_effect": {"business": 1.0}}
HugeWeight = {"coef": {"age": 1e9}}
NanWeight = {"coef": {"age": float("nan")}}
ChangesNothing: dict[str, Any] = {}
TypoedField = {"intercept_shfit": 1.0}
EmptyReason = {"reason": "  "}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            CONCEPT,
            UnknownFeature,
            "coef: Value error, unknown numeric feature 'credit_scor'; numeric features are age,",
        ),
        (CONCEPT, CategoricalInCoef, "unknown numeric feature 'region'"),
        (CONCEPT, UnknownCategory, "'holiday' is not a category of purpose; they are debt_consolidation, car,"),
        (CONCEPT, NotColumnEqualsCategory, "'business' is not `column=category`"),
        (CONCEPT, HugeWeight, "the weight of age must be a number from -10 to 10"),
        (CONCEPT, NanWeight, "the weight of age must be a number from -10 to 10, not nan"),
        (CONCEPT, ChangesNothing, "a concept change must change something"),
        (CONCEPT, TypoedField, "intercept_shfit: Extra inputs are not permitted"),
        (LABEL_FEED, EmptyReason, "reason: String should have at least 1 character"),
        ("weather", OUTAGE, "unknown pipeline condition 'weather'; conditions are concept, label_feed"),
    ],
)
def test_a_bad_condition_is_refused_naming_the_field_and_nothing_is_set(
    store: ReleaseStore, name: str, value: dict[str, Any], message: str
) -> None:
    with pytest.raises(FaultInjectionFailed) as caught:
        store.set_condition(name, value, note="n", by="drill")
    assert message in str(caught.value)
    with pytest.raises(ValueError, match="pipeline condition"):
        validate_condition(name, value)
    assert store.conditions() == {}


def test_a_concept_change_replaces_the_named_weights_and_moves_the_intercept() -> None:
    base = LabelFunction()
    change = ConceptChange.model_validate({"intercept_shift": 0.8, "coef": {"credit_score": 1.3}})
    changed = change.apply(base)
    assert changed.intercept == pytest.approx(base.intercept + 0.8)
    assert changed.coef == {**base.coef, "credit_score": 1.3}
    assert changed.category_effect == base.category_effect
    assert base.coef["credit_score"] == -1.3  # the base is not changed
    new_feature = ConceptChange(coef={"loan_term_months": 0.5}, category_effect={"region=west": -0.7}).apply(base)
    assert new_feature.coef["loan_term_months"] == 0.5 and new_feature.category_effect["region=west"] == -0.7
    assert change.describe() == "intercept +0.8, credit_score weight 1.3"
    assert LabelFeedStop(reason=" vendor down ").reason == "vendor down"


def test_another_process_sets_conditions_while_this_one_writes_the_cursor(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.db"
    script = (
        "import sys, time\n"
        "from lab_runtime.pipeline.store import LABEL_FEED, ReleaseStore\n"
        "with ReleaseStore(__import__('pathlib').Path(sys.argv[1])) as store:\n"
        "    for i in range(100):\n"
        "        store.set_condition(LABEL_FEED, {'reason': f'outage {i}'}, note='n', by='drill')\n"
        "        store.clear_condition(LABEL_FEED)\n"
        "    store.set_condition(LABEL_FEED, {'reason': 'last'}, note='n', by='drill')\n"
    )
    with ReleaseStore(path) as store, subprocess.Popen([sys.executable, "-c", script, str(path)]) as other:
        position = 0
        while other.poll() is None:
            position += 1
            store.save_cursor(position)
            store.conditions()
        assert other.returncode == 0  # no "database is locked" on either side
        assert store.conditions()[LABEL_FEED].value == {"reason": "last"}
        assert store.cursor() == position
