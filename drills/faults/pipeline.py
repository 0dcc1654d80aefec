"""Faults upstream of the model: broken or drifted pipeline releases, a changed world, a stopped label feed."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from drills.faults.base import ALREADY_CLEARED, REVERTED, Fault, FaultContext, Params
from drills.faults.serving import wait_served
from lab_runtime.errors import LabError
from lab_runtime.files.atomic import read_json as read_status
from lab_runtime.modeling.columns import CATEGORICAL_FEATURES, FEATURES, NUMERIC_FEATURES
from lab_runtime.modeling.population import categories
from lab_runtime.pipeline.conditions import SOURCE, SURGE, ConceptChange, LabelFeedStop, LoadSurge, SourceChange
from lab_runtime.pipeline.releases import Null as NullValues
from lab_runtime.pipeline.releases import Release, Remap, Rename, Scale, Shift, Transform
from lab_runtime.pipeline.store import CONCEPT, LABEL_FEED, RELEASE_POLL, ReleaseStore, rollback, ship
from lab_runtime.registry import model_ops
from lab_runtime.registry.rest import CHAMPION, Registry

SHIPPED_BY = "upstream-team"  # who `lab pipeline releases` says shipped a drill's release
APPLIED_TIMEOUT = 3.0


def _known(features: list[str], allowed: tuple[str, ...], what: str) -> list[str]:
    bad = [f for f in features if f not in allowed]
    if bad:
        raise ValueError(f"{', '.join(bad)} not {what} features; choose from {', '.join(allowed)}")
    return features


def _next_version(store: ReleaseStore) -> str:
    numbers = [int(m.group(1)) for v in store.versions() if (m := re.match(r"v(\d+)", v))]
    return f"v{max(numbers, default=1) + 1}"


def _wait_applied(ctx: FaultContext, version: str) -> bool:
    """Until the pipeline reports `version` as its release (it re-reads the store every 0.5 s)."""
    deadline = time.monotonic() + APPLIED_TIMEOUT
    while time.monotonic() < deadline:
        status = read_status(ctx.settings.pipeline_status_path)
        if status is not None and status.get("release") == version:
            return True
        time.sleep(0.05)
    return False


class _ReleaseFault(Fault):
    """Ships a pipeline release made of `transforms()`; reverted by rolling back to the release it replaced."""

    def transforms(self, ctx: FaultContext) -> tuple[list[Transform], str]:
        raise NotImplementedError

    def plan(self, ctx: FaultContext) -> dict[str, Any]:
        transforms, note = self.transforms(ctx)
        with ReleaseStore(ctx.settings.pipeline_db_path) as store:
            release = Release(version=_next_version(store), note=note, transforms=transforms)
            return {"release": release.model_dump(mode="json"), "previous": store.active().version}

    def inject(self, ctx: FaultContext, plan: dict[str, Any]) -> dict[str, Any]:
        release = Release.model_validate(plan["release"])
        with ReleaseStore(ctx.settings.pipeline_db_path) as store:
            ship(store, ctx.journal, release, by=SHIPPED_BY)
        applied = _wait_applied(ctx, release.version)
        return {"release": release.version, "change": release.summary(), "pipeline_applied": applied}

    def in_force(self, ctx: FaultContext, plan: dict[str, Any]) -> bool | None:
        with ReleaseStore(ctx.settings.pipeline_db_path) as store:
            return bool(store.active().version == plan["release"]["version"])

    def revert(self, ctx: FaultContext, plan: dict[str, Any]) -> str:
        version = plan["release"]["version"]
        with ReleaseStore(ctx.settings.pipeline_db_path) as store:
            if store.active().version != version:
                return ALREADY_CLEARED
            rollback(store, ctx.journal, to=plan["previous"], by="drill")
        _wait_applied(ctx, plan["previous"])
        return REVERTED


class CovariateDriftParams(Params):
    features: list[str] = Field(default_factory=list, description="numeric features to move; empty: `pick` at random")
    pick: int = Field(1, ge=1, le=len(NUMERIC_FEATURES))
    shift_sd: float = Field(1.0, ge=-10, le=10, description="shift in reference standard deviations")
    scale: float = Field(1.0, gt=0, le=10, description="spread multiplier about the mean")
    note: str = "scheduled upstream release"

    @field_validator("features")
    @classmethod
    def _numeric(cls, features: list[str]) -> list[str]:
        return _known(features, NUMERIC_FEATURES, "numeric")


class CovariateDrift(_ReleaseFault):
    type = "covariate_drift"
    params = CovariateDriftParams
    summary = "an upstream release moves (shifts or scales) numeric features of the stream"
    args: CovariateDriftParams

    def transforms(self, ctx: FaultContext) -> tuple[list[Transform], str]:
        a = self.args
        features = a.features or sorted(ctx.rng.sample(NUMERIC_FEATURES, a.pick))
        return [Shift(type="shift", feature=f, std=a.shift_sd, scale=a.scale) for f in features], a.note


class SchemaSkewParams(Params):
    change: Literal["unit", "rename", "nulls", "new_category"]
    feature: str | None = Field(None, description="the feature it breaks; default: one picked at random")
    factor: float = Field(1000.0, description="unit change: the multiplier")
    share: float = Field(1.0, gt=0, le=1, description="nulls and new_category: share of rows affected")
    note: str = "scheduled upstream release"

    @field_validator("feature")
    @classmethod
    def _real(cls, feature: str | None) -> str | None:
        return feature if feature is None else _known([feature], FEATURES, "known")[0]

    def eligible(self) -> tuple[str, ...]:
        return {"unit": NUMERIC_FEATURES, "new_category": CATEGORICAL_FEATURES}.get(self.change, FEATURES)

    @model_validator(mode="after")
    def _fits_change(self) -> SchemaSkewParams:
        if self.feature is not None and self.feature not in self.eligible():
            raise ValueError(f"a {self.change} change needs one of {', '.join(self.eligible())}, not {self.feature}")
        return self


class SchemaSkew(_ReleaseFault):
    type = "schema_skew"
    params = SchemaSkewParams
    summary = "an upstream release breaks the schema: a unit change, a renamed column, nulls, or a new category"
    args: SchemaSkewParams

    def transforms(self, ctx: FaultContext) -> tuple[list[Transform], str]:
        a = self.args
        feature = a.feature or ctx.rng.choice(a.eligible())
        transform: Transform
        if a.change == "unit":
            transform = Scale(type="scale", feature=feature, factor=a.factor)
        elif a.change == "rename":
            transform = Rename(type="rename", feature=feature, to=f"{feature}_v2")
        elif a.change == "nulls":
            transform = NullValues(type="null", feature=feature, share=a.share)
        else:
            transform = Remap(
                type="remap", feature=feature, mapping={c: c.upper() for c in categories(feature)}, share=a.share
            )
        return [transform], a.note


class _ConditionFault(Fault):
    """Sets a condition of the world the pipeline reads (it expires on its own); reverted by clearing it."""

    expires = True  # the pipeline ignores a condition past its expiry
    name: str
    model: type[BaseModel]  # the pipeline's own model of the condition's value

    def value(self) -> dict[str, Any]:
        return self.model.model_validate(self.args.model_dump()).model_dump(mode="json")

    def inject(self, ctx: FaultContext, plan: dict[str, Any]) -> dict[str, Any]:
        with ReleaseStore(ctx.settings.pipeline_db_path) as store:
            store.set_condition(self.name, self.value(), ctx.fault_id, "drill", ctx.expires_at)
        time.sleep(RELEASE_POLL + 0.1)  # the pipeline re-reads its conditions every RELEASE_POLL
        return {"condition": self.name, "expires_at": ctx.expires_at}

    def in_force(self, ctx: FaultContext, plan: dict[str, Any]) -> bool | None:
        with ReleaseStore(ctx.settings.pipeline_db_path) as store:
            mine = store.conditions().get(self.name)
        return mine is not None and mine.note == ctx.fault_id

    def revert(self, ctx: FaultContext, plan: dict[str, Any]) -> str:
        with ReleaseStore(ctx.settings.pipeline_db_path) as store:
            mine = store.conditions().get(self.name)
            if mine is None or mine.note != ctx.fault_id:  # gone, or another run's: not ours to clear
                return ALREADY_CLEARED
            return REVERTED if store.clear_condition(self.name) else ALREADY_CLEARED


UNDONE_VIA = "the drill's end"  # how `lab model history` names the move back from a retrain on a changed world


def champion_to_restore(plan: Mapping[str, Any], champion: str | None) -> str | None:
    """The version @champion goes back to as a learned change ends: the one the fault found, when a version
    registered since holds @champion (a learner's retrain on the changed world); else None (a learner's rollback,
    no champion then or now, a plan written before faults recorded it)."""
    before, latest = plan.get("champion"), plan.get("latest")
    if not before or latest is None or champion is None or champion == before:
        return None
    return str(before) if int(champion) > int(latest) else None


class _LearnedCondition(_ConditionFault):
    """A change of the world a model learns from: a version trained while it holds learned it, and is wrong once
    the world is back. Its revert first puts @champion back on the version it found when a version registered
    since holds it (`champion_to_restore`), unless the change already ended on its own at its expiry."""

    def plan(self, ctx: FaultContext) -> dict[str, Any]:
        registry = Registry(ctx.settings.mlflow_url)
        try:
            state = registry.model(ctx.settings.model_name)
            versions = registry.versions(ctx.settings.model_name)
        except LabError:  # no registry to read: nothing to put back either
            return {}
        finally:
            registry.close()
        champion = state.aliases.get(CHAMPION) if state else None
        return {"champion": champion, "latest": max((int(v["version"]) for v in versions), default=0)}

    def revert(self, ctx: FaultContext, plan: dict[str, Any]) -> str:
        if plan.get("champion") and time.time() < ctx.expires_at:
            self._restore_champion(ctx, plan)
        return super().revert(ctx, plan)

    def _restore_champion(self, ctx: FaultContext, plan: dict[str, Any]) -> None:
        settings, registry = ctx.settings, Registry(ctx.settings.mlflow_url)
        try:
            state = registry.model(settings.model_name)
            back = champion_to_restore(plan, state.aliases.get(CHAMPION) if state else None)
            if back is None or back not in {v["version"] for v in registry.versions(settings.model_name)}:
                return  # nothing to undo, or the version it found was deleted since
        finally:
            registry.close()
        assert state is not None
        via = f"{UNDONE_VIA}: version {state.aliases[CHAMPION]} learned a world that is gone"
        model_ops.set_alias(settings, CHAMPION, back, journal=ctx.journal, via=via)
        wait_served(ctx, CHAMPION, back)


class ConceptDriftParams(Params, ConceptChange):
    pass


class ConceptDrift(_LearnedCondition):
    type = "concept_drift"
    params = ConceptDriftParams
    summary = "the relation between features and outcome changes; quality drops once labels arrive"
    name = CONCEPT
    model = ConceptChange


class FeedbackOutageParams(Params, LabelFeedStop):
    pass


class FeedbackOutage(_ConditionFault):
    type = "feedback_outage"
    params = FeedbackOutageParams
    summary = "the label feed stops: no ground truth arrives, so quality monitoring goes blind"
    name = LABEL_FEED
    model = LabelFeedStop


class SourceChangeParams(Params, SourceChange):
    pass


class SourceMeaning(_LearnedCondition):
    type = "source_change"
    params = SourceChangeParams
    summary = "an upstream source changes what a numeric feature means (a new scale); no release to roll back"
    name = SOURCE
    model = SourceChange


class LoadSurgeParams(Params, LoadSurge):
    pass


class Surge(_ConditionFault):
    type = "load_surge"
    params = LoadSurgeParams
    summary = "production traffic comes several times as fast"
    name = SURGE
    model = LoadSurge
