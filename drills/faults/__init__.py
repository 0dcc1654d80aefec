"""The fault catalog: every fault type a drill may name, with its parameters."""

from __future__ import annotations

from drills.faults.base import ALREADY_CLEARED, REVERTED, Fault, FaultContext, Params
from drills.faults.container import ContainerLimits, NetworkLatency
from drills.faults.model import BadModel
from drills.faults.pipeline import ConceptDrift, CovariateDrift, FeedbackOutage, SchemaSkew, SourceMeaning, Surge
from drills.faults.process import DependencyOutage, ServiceCrash
from drills.faults.service import Errors, Latency, Overload

FAULTS: dict[str, type[Fault]] = {
    f.type: f
    for f in (
        CovariateDrift,
        SchemaSkew,
        ConceptDrift,
        Latency,
        Errors,
        BadModel,
        DependencyOutage,
        ServiceCrash,
        FeedbackOutage,
        NetworkLatency,
        ContainerLimits,
        SourceMeaning,
        Surge,
        Overload,
    )
}

__all__ = ["ALREADY_CLEARED", "FAULTS", "REVERTED", "Fault", "FaultContext", "Params"]
