"""What a sandbox's agent and the console send each other (pure): signed requests, journal events as JSON, drill
orders and the `lab` command each one runs.

An agent request names its token by id (`X-Lab-Token`) and carries the time it was made (`X-Lab-Time`) and an
HMAC-SHA256 of method, path with query, time and body (`X-Lab-Signature`) keyed by the token's SHA-256 digest,
which the console keeps: the token itself never travels, a request changed on the way or replayed minutes later
is refused, and the console files events under the token's learner only.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lab_runtime.journal import Event

SIGNATURE_HEADER = "X-Lab-Signature"
TOKEN_HEADER = "X-Lab-Token"
TIME_HEADER = "X-Lab-Time"
MAX_SKEW = 300.0  # seconds a signed request's time may be off the console's clock
MAX_ID = 2**63 - 1  # SQLite's largest integer
DRILL_ID = r"^[a-z0-9][a-z0-9-]{0,99}$"  # a catalog drill's id (never a file path)
EVENTS_PATH = "/api/agent/events"
ORDERS_PATH = "/api/agent/orders"
BATCH = 500  # events in one request at most
ORDER_WAIT = 20.0  # seconds the console holds an order poll open when it has no order


def digest(token: str) -> str:
    """A token's SHA-256 in hex: what the console keeps of it, and the key agent requests are signed with."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_id(token: str) -> str:
    """The id a token is named by on the wire (its digest's first 16 hex digits)."""
    return digest(token)[:16]


def signature(key: str, method: str, target: str, at: str, body: bytes) -> str:
    """The HMAC-SHA256 (hex) of a request to `target` (path and query) made at `at`, keyed by `key`."""
    message = f"{method.upper()} {target}\n{at}\n".encode() + body
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def signed(key: str, given: str | None, method: str, target: str, at: str | None, body: bytes, now: float) -> bool:
    """Whether `given` signs this request under `key`, made within MAX_SKEW of `now`."""
    try:
        fresh = at is not None and abs(float(at) - now) <= MAX_SKEW
    except ValueError:
        return False
    if not fresh or given is None or not given.isascii():
        return False
    return hmac.compare_digest(signature(key, method, target, str(at), body).encode(), given.encode())


def headers(token: str, method: str, target: str, body: bytes, now: float) -> dict[str, str]:
    at = f"{now:.3f}"
    return {
        TOKEN_HEADER: token_id(token),
        TIME_HEADER: at,
        SIGNATURE_HEADER: signature(digest(token), method, target, at, body),
        "Content-Type": "application/json",
    }


class WireEvent(BaseModel):
    """One journal event as it travels; `id` is its place in the sandbox's journal."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    id: int = Field(ge=1, le=MAX_ID)
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


class DrillChoice(BaseModel):
    """A drill a sandbox can be ordered to run (`lab drill list --json`)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    id: str = Field(pattern=DRILL_ID)
    title: str = Field("", max_length=200)
    kind: str = Field("", max_length=40)
    runtimes: list[str] = Field(default_factory=list, max_length=5)


class SandboxState(BaseModel):
    """What the agent says of its sandbox every few seconds: runtime, each service's health, the drills it has."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    runtime: str = Field(max_length=20)
    learner: str = Field(max_length=64)
    services: dict[str, bool] = Field(default_factory=dict, max_length=20)
    drills: list[DrillChoice] = Field(default_factory=list, max_length=500)


class Batch(BaseModel):
    """Events after the console's cursor `after`, in journal order."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    journal: str = Field(pattern=r"^[0-9a-f]{32}$")  # the journal's own id: a re-created sandbox starts anew
    after: int = Field(ge=0, le=MAX_ID)
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
    id: int = Field(0, ge=0, le=MAX_ID)
    action: Action
    drill: str | None = Field(None, pattern=DRILL_ID)
    drills: list[Annotated[str, Field(pattern=DRILL_ID)]] = Field(default_factory=list, max_length=20)
    seed: int | None = Field(None, ge=0, le=MAX_ID)
    blind: bool = False
    between: tuple[Annotated[str, Field(max_length=20)], Annotated[str, Field(max_length=20)]] | None = None

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
