"""The catalog of lab checks. A lab step names a check and its arguments; each check judges observed state.

Every check takes a `CheckContext` and keyword arguments, and returns whether it passed with a detail
line. Arguments are bound against these signatures when a lab file is validated, not when it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from lab_runtime.data import FEATURES
from lab_runtime.errors import LabError
from lab_runtime.predlog import PredictionLog
from lab_runtime.registry import Registry
from lab_runtime.settings import Settings


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    detail: str


@dataclass
class CheckContext:
    """What a check may look at: the registry, the model service and the prediction log."""

    settings: Settings
    registry: Registry
    lab_started_at: float

    def service_model(self) -> dict[str, Any] | None:
        try:
            return dict(httpx.get(f"{self.settings.service_url}/model", timeout=3.0).json())
        except (httpx.HTTPError, ValueError):
            return None

    def alias_version(self, alias: str) -> str | None:
        state = self.registry.model(self.settings.model_name)
        return state.aliases.get(alias) if state else None


Check = Callable[..., CheckResult]
CATALOG: dict[str, Check] = {}


def check(fn: Check) -> Check:
    CATALOG[fn.__name__] = fn
    return fn


@check
def experiment_has_run(ctx: CheckContext, experiment: str, metric: str) -> CheckResult:
    """A run in `experiment` logged the metric `metric`."""
    runs = ctx.registry.experiment_runs(experiment)
    if runs is None:
        return CheckResult(False, f"no experiment named {experiment!r}")
    logged = [r for r in runs if any(m["key"] == metric for m in r.get("data", {}).get("metrics", []))]
    if not logged:
        return CheckResult(False, f"{len(runs)} run(s) in {experiment!r}, none logged the metric {metric!r}")
    return CheckResult(True, f"{len(logged)} run(s) in {experiment!r} logged {metric!r}")


@check
def model_versions(ctx: CheckContext, min_count: int) -> CheckResult:
    """The sandbox's registered model has at least `min_count` versions."""
    name = ctx.settings.model_name
    versions = ctx.registry.versions(name) if ctx.registry.model(name) else []
    ok = len(versions) >= min_count
    return CheckResult(ok, f"{name!r} has {len(versions)} version(s), {min_count} needed")


@check
def versions_have_signature(ctx: CheckContext) -> CheckResult:
    """Every version of the registered model was logged with a signature naming every feature."""
    import mlflow
    from mlflow.models import get_model_info

    name = ctx.settings.model_name
    versions = ctx.registry.versions(name) if ctx.registry.model(name) else []
    if not versions:
        return CheckResult(False, f"{name!r} has no versions yet")
    mlflow.set_tracking_uri(ctx.settings.mlflow_url)
    mlflow.set_registry_uri(ctx.settings.mlflow_url)
    for v in versions:
        signature = get_model_info(f"models:/{name}/{v['version']}").signature
        if signature is None:
            return CheckResult(False, f"version {v['version']} has no signature")
        missing = set(FEATURES) - set(signature.inputs.input_names())
        if missing:
            return CheckResult(False, f"version {v['version']}'s signature lacks {sorted(missing)}")
    return CheckResult(True, f"all {len(versions)} version(s) carry a signature with every feature")


@check
def alias_on_best(ctx: CheckContext, alias: str, metric: str) -> CheckResult:
    """`@alias` points at the version whose training run has the highest `metric`."""
    name = ctx.settings.model_name
    current = ctx.alias_version(alias)
    if current is None:
        return CheckResult(False, f"{name!r} has no '@{alias}' alias")
    scores = {
        v["version"]: ctx.registry.run_metrics(v.get("run_id", "")).get(metric) for v in ctx.registry.versions(name)
    }
    known = {v: s for v, s in scores.items() if s is not None}
    if scores.get(current) is None:
        return CheckResult(False, f"'@{alias}' is version {current}, whose run logged no {metric!r}")
    best = max(known, key=lambda v: known[v])
    if known[current] < known[best]:
        return CheckResult(
            False,
            f"'@{alias}' is version {current} ({metric}={known[current]:.4f}), "
            f"but version {best} scores {known[best]:.4f}",
        )
    return CheckResult(True, f"'@{alias}' is version {current}, the best on {metric} ({known[current]:.4f})")


@check
def service_serves(ctx: CheckContext, alias: str) -> CheckResult:
    """The model service is serving the version that `@alias` points at."""
    wanted = ctx.alias_version(alias)
    served = ctx.service_model()
    if served is None:
        return CheckResult(False, f"the model service does not answer at {ctx.settings.service_url}")
    if wanted is None:
        return CheckResult(False, f"no '@{alias}' alias to serve")
    if served.get(alias) != wanted:
        return CheckResult(False, f"the service serves version {served.get(alias)}, '@{alias}' is {wanted}")
    return CheckResult(True, f"the service serves version {wanted} as {alias}")


@check
def predictions_served(ctx: CheckContext, alias: str, min_count: int) -> CheckResult:
    """At least `min_count` predictions by the `@alias` version were logged since the lab started."""
    version = ctx.alias_version(alias)
    if version is None:
        return CheckResult(False, f"no '@{alias}' alias yet")
    log = PredictionLog(ctx.settings.prediction_log_path)
    try:
        count = log.count(since=ctx.lab_started_at, model_version=version)
    finally:
        log.close()
    return CheckResult(
        count >= min_count, f"{count} prediction(s) by version {version} since the lab started, {min_count} needed"
    )


def run_check(name: str, ctx: CheckContext, args: dict[str, Any]) -> CheckResult:
    """Run one check; a failure to reach a service is a failed check with the reason, not a crash."""
    try:
        return CATALOG[name](ctx, **args)
    except LabError as exc:
        return CheckResult(False, str(exc))
    except Exception as exc:  # a check reads live services: any failure there fails the step, with the reason
        return CheckResult(False, f"could not check: {type(exc).__name__}: {exc}")
