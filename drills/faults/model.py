"""A regressed model version, trained and registered for the drill, then given an alias that serves traffic."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from drills.faults.base import ALREADY_CLEARED, REVERTED, Fault, FaultContext, Params
from drills.faults.serving import SERVED_TIMEOUT, served, wait_served
from lab_runtime.errors import FaultInjectionFailed
from lab_runtime.modeling.regression import Regression
from lab_runtime.registry import model_ops
from lab_runtime.registry.rest import CHALLENGER, Registry


class BadModelParams(Params):
    regression: Regression = Field(default_factory=Regression, description="what makes the version worse")
    alias: Literal["champion", "challenger"] = "challenger"
    weight: float | None = Field(
        0.2, gt=0, le=1, description="challenger: the canary share it gets (null: keep the running canary's share)"
    )


class BadModel(Fault):
    type = "bad_model"
    params = BadModelParams
    summary = "a regressed version (noisy labels, a dropped feature or a slow predict) gets @champion or @challenger"
    args: BadModelParams

    def plan(self, ctx: FaultContext) -> dict[str, Any]:
        from lab_runtime.modeling.model import train_and_register  # sklearn and mlflow: imported only when needed

        cfg = ctx.settings
        registered = train_and_register(
            cfg.mlflow_url,
            cfg.model_name,
            seed=ctx.rng.randrange(1_000_000),
            regression=self.args.regression,
            experiment="retraining",
        )
        state = Registry(cfg.mlflow_url).model(cfg.model_name)
        before = state.aliases.get(self.args.alias) if state else None
        weight = state.canary_weight if state else 0.0
        return {"version": registered.version, "alias": self.args.alias, "before": before, "weight_before": weight}

    def inject(self, ctx: FaultContext, plan: dict[str, Any]) -> dict[str, Any]:
        version, alias = plan["version"], plan["alias"]
        model_ops.set_alias(ctx.settings, alias, version)  # first: a revert keys on the alias naming this version
        if alias == CHALLENGER and self.args.weight is not None:
            model_ops.set_canary_weight(ctx.settings, self.args.weight)
        if not wait_served(ctx, alias, version):
            raise FaultInjectionFailed(
                f"the model service did not serve version {version} as @{alias} within {SERVED_TIMEOUT:.0f}s; "
                "read `lab logs model-service`"
            )
        return {"version": version, "alias": alias}

    def in_force(self, ctx: FaultContext, plan: dict[str, Any]) -> bool | None:
        """The service still serves the bad version under the alias (what the learner's rollback or abort changes)."""
        answer = served(ctx)
        if answer is None:
            return None
        return bool(str(answer.get(plan["alias"])) == plan["version"])

    def revert(self, ctx: FaultContext, plan: dict[str, Any]) -> str:
        """Undo each step that is still the drill's: the alias if it names the bad version, the weight if unchanged."""
        version, alias, before = plan["version"], plan["alias"], plan["before"]
        cfg = ctx.settings
        state = Registry(cfg.mlflow_url).model(cfg.model_name)
        undone = False
        weight = self.args.weight
        if alias == CHALLENGER and weight is not None and state is not None and state.canary_weight == weight:
            model_ops.set_canary_weight(cfg, plan["weight_before"])
            undone = True
        if state is not None and state.aliases.get(alias) == version:
            if before is None:
                model_ops.delete_alias(cfg, alias)
            else:
                model_ops.set_alias(cfg, alias, before)
            wait_served(ctx, alias, before)
            undone = True
        return REVERTED if undone else ALREADY_CLEARED
