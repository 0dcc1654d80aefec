"""The alias history MLflow does not keep: which version held each alias when, and how each change was made.

Pure functions over journal events. The registry watcher journals every change it sees
(`registry.alias_changed`); a lab command journals a request (`registry.alias_requested`) just before it moves an
alias. A change is credited to the oldest unused request for the same model, alias and version made shortly
before it; a change nobody requested was made outside the lab's commands (the MLflow UI, a script, a drill's fault).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lab_runtime.events import ALIAS_CHANGED, AliasChanged
from lab_runtime.journal import Event
from lab_runtime.registry.rest import AliasChange

OUTSIDE = "outside the lab commands (MLflow UI or API)"
REQUEST_LIFETIME = 10.0  # seconds a request may wait for the watcher's read (a write fails within 5 s), beyond its poll


def attribute(
    change: AliasChange, requests: Iterable[Event], used: set[int], now: float, lifetime: float = REQUEST_LIFETIME
) -> Event | None:
    """The request that explains `change` (added to `used`), or None when no unused request of the last `lifetime`
    seconds does. The watcher's lifetime is REQUEST_LIFETIME plus its slowest poll: a change it reads late,
    without a webhook, is still the request's."""
    for request in requests:
        p = request.payload
        if (
            request.id not in used
            and now - lifetime <= request.ts <= now
            and (p.get("model"), p.get("alias"), p.get("version")) == (change.model, change.alias, change.after)
        ):
            used.add(request.id)
            return request
    return None


def change_payload(change: AliasChange, request: Event | None) -> AliasChanged:
    """The `registry.alias_changed` payload for `change`, saying how it was made."""
    via = str(request.payload.get("via") or "a lab command") if request else OUTSIDE
    payload = AliasChanged(model=change.model, alias=change.alias, before=change.before, after=change.after, via=via)
    if request is not None:
        payload["requested_by"] = request.learner
        payload["requested_at"] = request.ts
    return payload


@dataclass(frozen=True)
class AliasEntry:
    """One alias change as the history shows it."""

    ts: float
    model: str
    alias: str
    before: str | None
    after: str | None
    via: str
    learner: str | None

    @property
    def what(self) -> str:
        if self.after is None:
            return f"@{self.alias} removed (was version {self.before})"
        if self.before is None:
            return f"@{self.alias} set to version {self.after}"
        return f"@{self.alias} moved from version {self.before} to {self.after}"


def history(events: Iterable[Event], *, model: str | None = None, alias: str | None = None) -> list[AliasEntry]:
    """The alias changes among `events`, oldest first, optionally of one model and one alias."""
    entries = []
    for event in events:
        if event.kind != ALIAS_CHANGED:
            continue
        p: Mapping[str, Any] = event.payload
        if (model is not None and p.get("model") != model) or (alias is not None and p.get("alias") != alias):
            continue
        via, learner = p.get("via", OUTSIDE), p.get("requested_by")
        entries.append(AliasEntry(event.ts, p["model"], p["alias"], p.get("before"), p.get("after"), via, learner))
    return entries
