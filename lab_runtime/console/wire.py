"""What a sandbox's agent and the console send each other (pure): signed requests, journal events as JSON, drill
orders and the `lab` command each one runs.

Every agent request carries its token (`Authorization: Bearer`) and an HMAC-SHA256 of method, path and body under
that token (`X-Lab-Signature`): the console files events under the token's learner only, and a body changed on
the way is refused.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lab_runtime.journal import Event

SIGNATURE_HEADER = "X-Lab-Signature"
EVENTS_PATH = "/api/agent/events"
ORDERS_PATH = "/api/agent/orders"
BATCH = 500  # events in one request at most
ORDER_WAIT = 20.0  # seconds the console holds an order poll open when it has no order


def signature(token: str, method: str, path: str, body: bytes) -> str:
    """The request's HMAC-SHA256 under `token`, in hex."""
    return hmac.new(token.encode(), f"{method.upper()} {path}\n".encode() + body, hashlib.sha256).hexdigest()


def signed(token: str, given: str | None, method: str, path: str, body: bytes) -> bool:
    return given is not None and hmac.compare_digest(signature(token, method, path, body), given)


def headers(token: str, method: str, path: str, body: bytes) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        SIGNATURE_HEADER: signature(token, method, path, body),
        "Content-Type": "application/json",
    }


class WireEvent(BaseModel):
    """One journal event as it travels; `id` is its place in the sandbox's journal."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: int = Field(ge=1)
    ts: float
    source: str = Field(max_length=100)
    kind: str = Field(max_length=100)
    payload: dict[str, Any]
    learner: str | None = Field(None, max_length=64)
    run_id: str | None = Field(None, max_length=100)
    began: float | None = None

    @classmethod
    def of(cls, e: Event) -> WireEvent:
        return cls(
            id=e.id, ts=e.ts, source=e.source, kind=e.kind, payload=e.payload,
            learner=e.learner, run_id=e.run_id, began=e.began,
        )  # fmt: skip

    def event(self) -> Event:
        return Event(self.id, self.ts, self.source, self.kind, self.payload, self.learner, self.run_id, self.began)


class SandboxState(BaseModel):
    """What the agent says of its sandbox with every batch: runtime, each service's health, the drills it has."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    runtime: str = Field(max_length=20)
    learner: str = Field(max_length=64)
    services: dict[str, bool] = {}
    drills: list[dict[str, Any]] = Field(default_factory=list, max_length=500)


class Batch(BaseModel):
    """Events after the console's cursor `after`, in journal order."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    after: int = Field(ge=0)
    events: list[WireEvent] = Field(max_length=BATCH)
    state: SandboxState | None = None

    @model_validator(mode="after")
    def _in_order(self) -> Batch:
        last = self.after
        for e in self.events:
            if e.id <= last:
                raise ValueError(f"event {e.id} is not after {last}: a batch's events come in journal order")
            last = e.id
        return self


Action = Literal["drill", "gameday", "abort"]


class Order(BaseModel):
    """An instructor's order for one sandbox: run a drill, run a game day, or abort the running drill."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: int = 0
    action: Action
    drill: str | None = Field(None, max_length=100)
    drills: list[str] = Field(default_factory=list, max_length=20)
    seed: int | None = None
    blind: bool = False
    between: tuple[str, str] | None = None

    @model_validator(mode="after")
    def _complete(self) -> Order:
        if self.action == "drill" and not self.drill:
            raise ValueError("a drill order names its drill")
        if self.action == "gameday" and (not self.drills or self.between is None):
            raise ValueError("a game day order names its drills and the delay range before each (between)")
        return self

    def argv(self) -> list[str]:
        """The `lab` command that carries the order out and returns at once (its runner goes on in the
        background)."""
        if self.action == "abort":
            return ["drill", "abort"]
        extra = (["--seed", str(self.seed)] if self.seed is not None else []) + (["--blind"] if self.blind else [])
        if self.action == "drill":
            assert self.drill is not None
            span = ["--between", *self.between] if self.between else []
            return ["drill", "run", self.drill, "--detach", *span, *extra]
        assert self.between is not None
        return ["drill", "gameday", "--drills", ",".join(self.drills), "--between", *self.between, "--detach", *extra]


OrderState = Literal["pending", "taken", "started", "refused"]


class OrderResult(BaseModel):
    """The sandbox's answer to an order: started (the runner is on its way) or refused, with its reason."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    state: Literal["started", "refused"]
    message: str = Field(max_length=2000)
