"""Each learner as `lab hub status` shows them, from what the hub says of their server, what their sandbox says
through the hub's proxy, and the record of why their server last failed to start."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Server = Literal["running", "starting", "stopped", "failed", "unknown"]
Sandbox = Literal["healthy", "unhealthy", "starting", "-"]


@dataclass(frozen=True)
class LearnerState:
    learner: str
    server: Server
    sandbox: Sandbox
    unhealthy: list[str] = field(default_factory=list)  # the sandbox's services that are not healthy
    reason: str | None = None  # why the server failed to start (image, limits, port ...)
    url: str | None = None  # the learner's JupyterLab, under the hub

    @property
    def ready(self) -> bool:
        return self.server == "running" and self.sandbox == "healthy"


def learner_state(
    name: str, user: dict[str, Any] | None, sandbox: dict[str, Any] | None, failure: tuple[str, float] | None
) -> LearnerState:
    """`user`: the hub's model of the learner (None: unknown to the hub); `sandbox`: their server's
    /lab-sandbox/status (None: no answer); `failure`: why and when their last start failed, if it did."""
    if user is None:
        return LearnerState(name, "unknown", "-", reason="the hub does not know this learner")
    server = (user.get("servers") or {}).get("")
    if server is None:
        reason = failure[0] if failure else None
        return LearnerState(name, "failed" if reason else "stopped", "-", reason=reason)
    url = server.get("url")
    if not server.get("ready"):
        return LearnerState(name, "starting", "-", url=url)
    if sandbox is None:
        return LearnerState(name, "running", "starting", url=url)
    services = sandbox.get("services") or []
    unhealthy = sorted(s["name"] for s in services if not s.get("healthy"))
    if not services:
        return LearnerState(name, "running", "starting", url=url)
    return LearnerState(name, "running", "unhealthy" if unhealthy else "healthy", unhealthy, url=url)
