"""Faults of containers, through the backend's container control (the compose runtime only): a slow network, starved
resources."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from drills.faults.base import ALREADY_CLEARED, REVERTED, Fault, FaultContext, Params
from lab_runtime.backends.base import ContainerControl
from lab_runtime.errors import FaultInjectionFailed


def _containers(ctx: FaultContext, fault: str) -> ContainerControl:
    """The backend's container control, or a refusal naming the runtime that has one."""
    control = ctx.backend.container_control
    if control is None:
        raise FaultInjectionFailed(f"the {fault} fault acts on containers: it needs `lab up --runtime compose`")
    return control


class NetworkLatencyParams(Params):
    service: Literal["mlflow", "model-service"] = "mlflow"
    delay_ms: int = Field(1500, ge=1, le=10_000, description="added to every packet the container sends")
    jitter_ms: int = Field(0, ge=0, le=5_000)


class NetworkLatency(Fault):
    type = "network_latency"
    params = NetworkLatencyParams
    runtimes: ClassVar[tuple[str, ...]] = ("compose",)
    summary = "every packet a container sends is delayed (tc netem on its interface); a re-created container is clean"
    args: NetworkLatencyParams

    def inject(self, ctx: FaultContext, plan: dict[str, Any]) -> dict[str, Any]:
        _containers(ctx, self.type).delay(self.args.service, self.args.delay_ms, self.args.jitter_ms)
        return {"service": self.args.service, "delay_ms": self.args.delay_ms, "jitter_ms": self.args.jitter_ms}

    def revert(self, ctx: FaultContext, plan: dict[str, Any]) -> str:
        return REVERTED if _containers(ctx, self.type).undelay(self.args.service) else ALREADY_CLEARED


class ContainerLimitsParams(Params):
    service: Literal["mlflow", "model-service", "pipeline", "monitor"] = "model-service"
    cpus: float | None = Field(0.05, gt=0, le=64, description="CPU quota in cores")
    memory_mb: int | None = Field(None, ge=16, description="memory limit (swap included)")


class ContainerLimits(Fault):
    type = "container_limits"
    params = ContainerLimitsParams
    runtimes: ClassVar[tuple[str, ...]] = ("compose",)
    summary = "a container's CPU quota or memory limit is cut; a re-created container gets the compose file's"
    args: ContainerLimitsParams

    def plan(self, ctx: FaultContext) -> dict[str, Any]:
        control = _containers(ctx, self.type)
        return {"container": control.container_id(self.args.service), "previous": control.limits(self.args.service)}

    def inject(self, ctx: FaultContext, plan: dict[str, Any]) -> dict[str, Any]:
        _containers(ctx, self.type).limit(self.args.service, self.args.memory_mb, self.args.cpus)
        return {"service": self.args.service, "cpus": self.args.cpus, "memory_mb": self.args.memory_mb}

    def revert(self, ctx: FaultContext, plan: dict[str, Any]) -> str:
        control = _containers(ctx, self.type)
        if control.container_id(self.args.service) != plan["container"]:
            return ALREADY_CLEARED  # re-created (`lab restart`): the new container has the compose file's limits
        memory, cpu = self.args.memory_mb is not None, self.args.cpus is not None
        control.unlimit(self.args.service, plan["previous"], memory=memory, cpu=cpu)
        return REVERTED
