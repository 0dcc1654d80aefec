"""Faults a drill injects into the model service (latency, errors, overload), each ending on its own at its expiry.

Pure logic: the caller passes the clock (`now`, wall-clock seconds) and the random source, so the table is
tested without sleeping. Every fault carries a `ttl`: if the drill runner dies, the fault still ends.
"""

from __future__ import annotations

import random
import re
import threading
from collections import deque
from dataclasses import dataclass
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lab_runtime.modeling.population import check_numeric
from lab_runtime.service.switch import FALLBACK

MAX_TTL = 6 * 3600.0  # a forgotten fault ends within a working day's session
MAX_LATENCY_MS = 60_000.0  # beyond a minute every client has given up; a bigger number is a typo
FAULT_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
FAULT_ID_RULE = "a fault id is 1-64 characters of a-z, 0-9, '.', '_', '-', starting with a letter or digit"

Variant = Literal["any", "champion", "challenger"]
LOAD_WINDOW = 2.0  # seconds over which an overload fault measures the requests that reach the model


class ServiceFault(BaseModel):
    """One fault. `latency`: each affected request waits `latency_ms ± jitter_ms` (never below 0) before scoring.
    `errors`: each affected request is answered with `status` instead of a prediction.
    `overload`: while more than `capacity` requests a second reach the model (over the last `LOAD_WINDOW` s), each
    of them waits `latency_ms ± jitter_ms` and is scored with the `degraded` features read as 0 (a feature lookup
    that times out under load, its missing value taken for zero); the fallback's requests never count nor suffer.
    `share` of the requests of `variant` are affected, each drawn independently; the fault ends `ttl` s after it
    was put. Fields of another kind are refused unless left at their defaults.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    kind: Literal["latency", "errors", "overload"]
    share: Annotated[float, Field(ge=0, le=1, description="share of the requests affected")] = 1.0
    latency_ms: Annotated[float, Field(ge=0, le=MAX_LATENCY_MS)] = 0.0
    jitter_ms: Annotated[float, Field(ge=0, le=MAX_LATENCY_MS)] = 0.0
    status: Annotated[int, Field(ge=500, le=599, description="HTTP status of an errors fault")] = 500
    variant: Variant = "any"
    capacity: Annotated[float, Field(ge=0, le=10_000, description="overload: model requests a second served well")] = 0
    degraded: tuple[str, ...] = Field((), description="overload: numeric features scored as 0")
    ttl: Annotated[float, Field(gt=0, le=MAX_TTL, description="seconds until the fault ends on its own")]

    @field_validator("degraded")
    @classmethod
    def _numeric(cls, degraded: tuple[str, ...]) -> tuple[str, ...]:
        check_numeric(degraded)
        return degraded

    @model_validator(mode="after")
    def _fields_match_kind(self) -> Self:
        if self.kind != "errors" and self.status != 500:
            raise ValueError(f"status applies to errors faults only; leave it out of a {self.kind} fault")
        if self.kind != "overload" and (self.capacity or self.degraded):
            raise ValueError(f"capacity and degraded apply to overload faults; leave them out of a {self.kind} fault")
        if self.kind == "errors" and (self.latency_ms or self.jitter_ms):
            raise ValueError("latency_ms and jitter_ms apply to latency and overload faults, not to an errors fault")
        if self.kind == "latency" and self.latency_ms == 0:
            raise ValueError("a latency fault needs latency_ms > 0")
        if self.kind == "overload" and self.capacity == 0:
            raise ValueError("an overload fault needs capacity > 0 (model requests a second it serves well)")
        return self

    def delay_ms(self, rng: random.Random) -> float:
        return max(0.0, self.latency_ms + rng.uniform(-self.jitter_ms, self.jitter_ms))

    def applies_to(self, variant: str) -> bool:
        return self.variant == "any" or self.variant == variant


@dataclass(frozen=True, slots=True)
class Decision:
    """What the faults do to one request: wait `delay_s` seconds, then answer `status` (None: serve normally), with
    the `degraded` features read as 0."""

    delay_s: float = 0.0
    status: int | None = None
    degraded: frozenset[str] = frozenset()


NO_FAULT = Decision()


def check_fault_id(fault_id: str) -> str:
    """`fault_id` if it is a valid id, else ValueError saying what one looks like."""
    if not FAULT_ID.fullmatch(fault_id):
        raise ValueError(f"invalid fault id {fault_id!r}: {FAULT_ID_RULE}")
    return fault_id


class FaultTable:
    """The active faults by id, each with its expiry (wall-clock seconds). Thread-safe; expired faults are dropped
    whenever the table is read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, tuple[ServiceFault, float]] = {}
        self._model_load: deque[float] = deque()  # when each request that reached the model came, while overloaded

    def put(self, fault_id: str, fault: ServiceFault, now: float) -> float:
        """Add `fault`, or replace the one with the same id (its expiry restarts); returns its expiry."""
        check_fault_id(fault_id)
        expires_at = now + fault.ttl
        with self._lock:
            self._faults[fault_id] = (fault, expires_at)
        return expires_at

    def remove(self, fault_id: str) -> bool:
        """Remove a fault; False when there was none by that id."""
        with self._lock:
            return self._faults.pop(fault_id, None) is not None

    def clear(self) -> int:
        """Remove every fault; returns how many there were (expired ones included)."""
        with self._lock:
            count = len(self._faults)
            self._faults.clear()
        return count

    def active(self, now: float) -> dict[str, tuple[ServiceFault, float]]:
        """The faults not expired at `now`, by id in id order, with their expiry."""
        with self._lock:
            for fault_id in [i for i, (_, expires_at) in self._faults.items() if expires_at <= now]:
                del self._faults[fault_id]
            return dict(sorted(self._faults.items()))

    def _load(self, variant: str, now: float) -> float:
        """Requests a second that reached the model over the last `LOAD_WINDOW` s, this one included."""
        with self._lock:
            if variant != FALLBACK:
                self._model_load.append(now)
            while self._model_load and self._model_load[0] < now - LOAD_WINDOW:
                self._model_load.popleft()
            return len(self._model_load) / LOAD_WINDOW

    def decide(self, variant: str, now: float, rng: random.Random) -> Decision:
        """The combined effect on one request served by `variant`: the delays of the latency and overload faults
        that hit add up; the first errors fault (by id) that hits sets the status; an overload that hits degrades
        its features. Each fault's share is its own draw."""
        faults = self.active(now)
        if not faults:  # the common case costs no draw
            return NO_FAULT
        load = self._load(variant, now) if any(f.kind == "overload" for f, _ in faults.values()) else 0.0
        delay_ms, status, degraded = 0.0, None, set[str]()
        for fault, _ in faults.values():
            if not fault.applies_to(variant) or rng.random() >= fault.share:
                continue
            if fault.kind == "latency":
                delay_ms += fault.delay_ms(rng)
            elif fault.kind == "overload":
                if variant != FALLBACK and load > fault.capacity:
                    delay_ms += fault.delay_ms(rng)
                    degraded.update(fault.degraded)
            elif status is None:
                status = fault.status
        return Decision(delay_ms / 1000, status, frozenset(degraded))
