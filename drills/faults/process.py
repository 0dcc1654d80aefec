"""Faults of whole processes, through the runtime backend: a dependency stopped or paused, a service killed."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from drills.faults.base import ALREADY_CLEARED, REVERTED, Fault, FaultContext, Params
from lab_runtime.durations import Seconds


class DependencyOutageParams(Params):
    service: Literal["mlflow"] = "mlflow"
    mode: Literal["pause", "kill"] = Field("pause", description="pause: hangs (SIGSTOP); kill: gone")


class DependencyOutage(Fault):
    type = "dependency_outage"
    params = DependencyOutageParams
    summary = "the MLflow registry stops answering; the service keeps serving its loaded model"
    args: DependencyOutageParams

    def inject(self, ctx: FaultContext, plan: dict[str, Any]) -> dict[str, Any]:
        if self.args.mode == "pause":
            ctx.backend.pause(self.args.service)
        else:
            ctx.backend.kill(self.args.service)
        return {"service": self.args.service, "mode": self.args.mode}

    def revert(self, ctx: FaultContext, plan: dict[str, Any]) -> str:
        return REVERTED if ctx.backend.ensure_running(self.args.service) else ALREADY_CLEARED


class ServiceCrashParams(Params):
    service: Literal["model-service", "pipeline", "monitor"] = "model-service"
    restart: Literal["never", "always"] = Field("never", description="the restart policy while the drill runs")
    restart_after: Seconds = Field(30.0, description="with restart: always, the delay before the restart")


class ServiceCrash(Fault):
    type = "service_crash"
    params = ServiceCrashParams
    summary = "a sandbox process is killed; with restart: always it comes back on its own after a delay"
    args: ServiceCrashParams

    def inject(self, ctx: FaultContext, plan: dict[str, Any]) -> dict[str, Any]:
        ctx.backend.kill(self.args.service)
        return {"service": self.args.service, "restart": self.args.restart}

    def tick(self, ctx: FaultContext, plan: dict[str, Any], since_injected: float) -> str | None:
        if self.args.restart != "always" or since_injected < self.args.restart_after * ctx.scale:
            return None
        if ctx.backend.ensure_running(self.args.service):
            return f"{self.args.service} restarted by the restart policy"
        return None

    def revert(self, ctx: FaultContext, plan: dict[str, Any]) -> str:
        return REVERTED if ctx.backend.ensure_running(self.args.service) else ALREADY_CLEARED
