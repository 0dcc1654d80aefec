"""What every fault is: validated parameters, a plan (the undo record, written before anything changes),
`inject()` and `revert()`. Faults act only through the runtime's interfaces (backend, release store, service
admin, registry), so the same drill works on every runtime backend."""

from __future__ import annotations

import builtins
import random
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from lab_runtime.backends.base import Backend
from lab_runtime.journal import Journal
from lab_runtime.settings import Settings

REVERTED, ALREADY_CLEARED = "reverted", "already cleared"


class Params(BaseModel):
    """A fault's arguments; unknown ones are refused when the drill file is validated."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class FaultContext:
    """What a fault may touch. `rng` is seeded per drill run and fault, so a replay makes the same choices."""

    settings: Settings
    backend: Backend
    journal: Journal  # the drill's journal (source "drill"): changes made through shared code paths land here
    rng: random.Random
    run_id: str
    fault_id: str  # unique per run and fault: names what the fault leaves in the service or pipeline
    expires_at: float  # wall time by which faults held by a service end on their own
    scale: float = 1.0  # the drill time scale: multiplies durations in fault arguments


class Fault:
    """One kind of failure. Subclasses set `type`, `params` and the three steps below."""

    type: ClassVar[str]
    params: ClassVar[builtins.type[Params]]
    summary: ClassVar[str]
    runtimes: ClassVar[tuple[str, ...]] = ("local", "compose")  # the runtime backends it can act on
    expires: ClassVar[bool] = False  # whether what it puts in place ends on its own at the fault's `expires_at`

    def __init__(self, args: Params) -> None:
        self.args = args

    def plan(self, ctx: FaultContext) -> dict[str, Any]:
        """Choose the seeded details and record what `revert` needs (JSON); may prepare (e.g. train), never break."""
        return {}

    def inject(self, ctx: FaultContext, plan: dict[str, Any]) -> dict[str, Any]:
        """Put the fault in place; returns once the service behaves differently. Returns details for the journal."""
        raise NotImplementedError

    def revert(self, ctx: FaultContext, plan: dict[str, Any]) -> str:
        """Remove the fault if it is still there: REVERTED, or ALREADY_CLEARED when someone removed it first."""
        raise NotImplementedError

    def tick(self, ctx: FaultContext, plan: dict[str, Any], since_injected: float) -> str | None:
        """Called at every probe while the fault is active; returns a line to journal when it did something."""
        return None

    def in_force(self, ctx: FaultContext, plan: dict[str, Any]) -> bool | None:
        """Whether what the fault put in place is still there (the release, the alias, the service's fault table),
        read at every probe: a learner's fix shows here within a second. None: it cannot tell (the default)."""
        return None
