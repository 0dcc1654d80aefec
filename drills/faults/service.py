"""Faults held by the model service itself (its fault table): added latency, error answers and an overload, each
with an expiry."""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field, field_validator

from drills.faults.base import ALREADY_CLEARED, REVERTED, Fault, FaultContext, Params
from lab_runtime.errors import RuntimeNotReady
from lab_runtime.modeling.population import check_numeric
from lab_runtime.service.admin_client import ServiceAdmin
from lab_runtime.service.faults import MAX_LATENCY_MS, ServiceFault, Variant


class LatencyParams(Params):
    latency_ms: float = Field(gt=0, le=MAX_LATENCY_MS)
    jitter_ms: float = Field(0.0, ge=0, le=MAX_LATENCY_MS)
    share: float = Field(1.0, gt=0, le=1, description="share of requests slowed")
    variant: Variant = "any"


class ErrorsParams(Params):
    status: int = Field(500, ge=500, le=599)
    share: float = Field(1.0, gt=0, le=1, description="share of requests answered with an error")
    variant: Variant = "any"


class OverloadParams(Params):
    capacity: float = Field(gt=0, le=10, description="model requests a second it serves well, times the pipeline rate")
    latency_ms: float = Field(gt=0, le=MAX_LATENCY_MS, description="added to each model request over capacity")
    jitter_ms: float = Field(0.0, ge=0, le=MAX_LATENCY_MS)
    degraded: list[str] = Field(min_length=1, description="numeric features scored as 0 over capacity")

    @field_validator("degraded")
    @classmethod
    def _numeric(cls, degraded: list[str]) -> list[str]:
        check_numeric(degraded)
        return degraded


class _ServiceFault(Fault):
    expires = True  # the service's fault table drops it at its expiry

    def service_fault(self, ctx: FaultContext, ttl: float) -> ServiceFault:
        raise NotImplementedError

    def inject(self, ctx: FaultContext, plan: dict[str, Any]) -> dict[str, Any]:
        ttl = max(ctx.expires_at - time.time(), 1.0)
        expires_at = ServiceAdmin(ctx.settings).put(ctx.fault_id, self.service_fault(ctx, ttl))
        return {"service_fault": ctx.fault_id, "expires_at": expires_at}

    def in_force(self, ctx: FaultContext, plan: dict[str, Any]) -> bool | None:
        try:
            return ctx.fault_id in ServiceAdmin(ctx.settings, timeout=1.0).list()
        except RuntimeNotReady:
            return None  # not answering: restarting (a new process holds no faults), or hung

    def revert(self, ctx: FaultContext, plan: dict[str, Any]) -> str:
        try:
            return REVERTED if ServiceAdmin(ctx.settings).delete(ctx.fault_id) else ALREADY_CLEARED
        except RuntimeNotReady:
            if any(s.name == "model-service" and s.running for s in ctx.backend.status()):
                raise  # alive but not answering: the fault may still be there (it expires on its own)
            return ALREADY_CLEARED  # a dead process holds no faults, and a restarted one starts with none


class Latency(_ServiceFault):
    type = "latency"
    params = LatencyParams
    summary = "the model service answers slowly: added latency with jitter on a share of requests"
    args: LatencyParams

    def service_fault(self, ctx: FaultContext, ttl: float) -> ServiceFault:
        a = self.args
        return ServiceFault(
            kind="latency", share=a.share, latency_ms=a.latency_ms, jitter_ms=a.jitter_ms, variant=a.variant, ttl=ttl
        )


class Errors(_ServiceFault):
    type = "errors"
    params = ErrorsParams
    summary = "the model service answers a share of requests with a 5xx error"
    args: ErrorsParams

    def service_fault(self, ctx: FaultContext, ttl: float) -> ServiceFault:
        a = self.args
        return ServiceFault(kind="errors", share=a.share, status=a.status, variant=a.variant, ttl=ttl)


class Overload(_ServiceFault):
    type = "overload"
    params = OverloadParams
    summary = "over capacity the model answers slowly and scores some features as 0 (a lookup timing out)"
    args: OverloadParams

    def service_fault(self, ctx: FaultContext, ttl: float) -> ServiceFault:
        a = self.args
        return ServiceFault(
            kind="overload",
            capacity=a.capacity * ctx.settings.pipeline_rate,
            latency_ms=a.latency_ms,
            jitter_ms=a.jitter_ms,
            degraded=tuple(a.degraded),
            ttl=ttl,
        )
